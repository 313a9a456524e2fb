/**
 * Raw limit: bare inserts into the store alone (mongodb driver 6 -> FerretDB), the app's readings
 * documents ({_id: `${sensorId}|${tsMs}`, sensorId, ts, temperature, humidity, location}) with the
 * app's index {sensorId: 1, ts: -1}, insertMany ordered:false, closed loop, in a fresh database
 * `bench_raw_<random>` dropped at the end.
 *
 *  - raw.store.insertRate / raw.store.insertLatency                    batches of 500, first half of durationMs.
 *  - raw.store.insertRate.batch100 / raw.store.insertLatency.batch100  batches of 100, second half.
 *
 * `concurrency` inserts are kept in flight (default 1; the app's consumer has up to 3 partitions'
 * batches in flight, so 3 is the app-like alternative). `rate` is ignored: this is a closed loop.
 *
 * Run alone: npx tsx bench/raw/store.ts [--durationMs=10000] [--concurrency=1]
 */
import { MongoClient, type Collection } from 'mongodb';
import { Samples, type Figure } from '../lib/stats.js';
import { isMain, runCli, runId } from './common.js';

export interface StoreRawOptions {
  durationMs: number;
  /** Unused (closed-loop maximum). */
  rate?: number;
  /** Inserts in flight at once (default 1). */
  concurrency?: number;
  url?: string;
}

interface ReadingDoc {
  _id: string;
  sensorId: string;
  ts: Date;
  temperature: number;
  humidity: number;
  location: { lat: number; lon: number };
}

const SENSORS = 1000;
const sensorIds = Array.from({ length: SENSORS }, (_, i) => `sensor-${String(i).padStart(4, '0')}`);

export async function run(opts: StoreRawOptions): Promise<Figure[]> {
  const concurrency = Math.max(1, opts.concurrency ?? 1);
  const dbName = `bench_raw_${runId()}`;
  const client = new MongoClient(opts.url ?? 'mongodb://127.0.0.1:27017', {
    serverSelectionTimeoutMS: 5000,
    retryWrites: true,
    maxPoolSize: 20,
    appName: 'bench-raw-store',
  });
  await client.connect();
  const db = client.db(dbName);
  try {
    const readings: Collection<ReadingDoc> = db.collection('readings');
    await readings.createIndex({ sensorId: 1, ts: -1 }, { name: 'sensor_ts' });
    // Unique keys across the whole run: every sensor's clock moves 1 ms per document it gets.
    let seq = 0;
    const base = Date.now();
    const makeBatch = (size: number): ReadingDoc[] => {
      const docs = new Array<ReadingDoc>(size);
      for (let i = 0; i < size; i++, seq++) {
        const sensorId = sensorIds[seq % SENSORS]!;
        const ts = new Date(base + Math.floor(seq / SENSORS));
        docs[i] = {
          _id: `${sensorId}|${ts.getTime()}`,
          sensorId,
          ts,
          temperature: 20 + (seq % 600) / 10,
          humidity: 35 + (seq % 400) / 10,
          location: { lat: 48.8566 + (seq % 100) / 1000, lon: 2.3522 + (seq % 77) / 1000 },
        };
      }
      return docs;
    };

    // Warm-up: connection pool and the collection's first pages, out of the measurement.
    await readings.insertMany(makeBatch(500), { ordered: false });

    const figures: Figure[] = [];
    const half = opts.durationMs / 2;
    for (const [batchSize, suffix] of [
      [500, ''],
      [100, '.batch100'],
    ] as const) {
      const samples = new Samples();
      let inserted = 0;
      const start = performance.now();
      const worker = async (): Promise<void> => {
        while (performance.now() - start < half) {
          const docs = makeBatch(batchSize);
          const t = performance.now();
          const res = await readings.insertMany(docs, { ordered: false });
          samples.add(performance.now() - t);
          inserted += res.insertedCount;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const seconds = (performance.now() - start) / 1000;
      const latency = samples.percentiles();
      const how = `insertMany ordered:false of ${batchSize} reading docs, ${concurrency} in flight, closed loop for ${seconds.toFixed(1)} s, index {sensorId:1, ts:-1}`;
      figures.push(
        {
          name: `raw.store.insertRate${suffix}`,
          rate: inserted / seconds,
          unit: 'docs/s',
          notes: `${how}; ${inserted} docs in ${latency.count} batches`,
        },
        { name: `raw.store.insertLatency${suffix}`, latency, unit: 'ms', notes: `per batch of ${batchSize}; ${how}` },
      );
    }
    return figures;
  } finally {
    await db.dropDatabase().catch(() => undefined);
    await client.close();
  }
}

if (isMain(import.meta.url)) runCli<StoreRawOptions>(run, { concurrency: true });
