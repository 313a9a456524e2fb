/**
 * The first layout of reading history: one document per reading, `_id` = `sensorId|tsMs`, in the
 * `readings` collection. Kept only to migrate it (scripts/migrate-readings.ts) and as the reference
 * the bucket layout is checked against (test/integration/historyLayout.test.ts). Its queries filter
 * on `sensorId` and `ts`, which FerretDB evaluates by decoding every document.
 */
import { MongoBulkWriteError, type Collection, type Db } from 'mongodb';
import { readingKey, type Location, type Reading } from '../domain/reading.js';
import { MAX_STATEMENTS_PER_COMMAND, type ReadingPage, type ReadingWindow } from './readingHistory.js';

export const LEGACY_READINGS = 'readings';

interface LegacyReadingDoc {
  _id: string;
  sensorId: string;
  ts: Date;
  temperature: number;
  humidity: number;
  location: Location;
}

export interface LegacyReadings {
  insert(readings: readonly Reading[]): Promise<number>;
  page(window: ReadingWindow): Promise<ReadingPage>;
  /** Every stored reading, in batches, in the store's natural order (one pass, no sort). */
  batches(size: number): AsyncGenerator<{ ids: string[]; readings: Reading[] }>;
  remove(ids: readonly string[]): Promise<void>;
  estimatedCount(): Promise<number>;
}

const toReading = (d: LegacyReadingDoc): Reading => ({
  sensorId: d.sensorId,
  ts: d.ts,
  temperature: d.temperature,
  humidity: d.humidity,
  location: { lat: d.location.lat, lon: d.location.lon },
});

export function legacyReadings(db: Db): LegacyReadings {
  const col: Collection<LegacyReadingDoc> = db.collection(LEGACY_READINGS);
  return {
    async insert(batch) {
      if (batch.length === 0) return 0;
      const docs = batch.map((r) => ({
        _id: readingKey(r.sensorId, r.ts),
        sensorId: r.sensorId,
        ts: r.ts,
        temperature: r.temperature,
        humidity: r.humidity,
        location: { lat: r.location.lat, lon: r.location.lon },
      }));
      try {
        return (await col.insertMany(docs, { ordered: false })).insertedCount;
      } catch (err) {
        if (err instanceof MongoBulkWriteError && [err.writeErrors].flat().every((e) => e.code === 11000))
          return err.insertedCount;
        throw err;
      }
    },
    async page(q) {
      const ts: Record<string, Date> = {};
      if (q.from) ts.$gte = q.from;
      if (q.to) ts.$lte = q.to;
      if (q.beforeTs && (!q.to || q.beforeTs.getTime() <= q.to.getTime())) {
        delete ts.$lte;
        ts.$lt = q.beforeTs;
      }
      const filter = Object.keys(ts).length > 0 ? { sensorId: q.sensorId, ts } : { sensorId: q.sensorId };
      const docs = await col
        .find(filter)
        .sort({ ts: -1 })
        .limit(q.first + 1)
        .toArray();
      return { items: docs.slice(0, q.first).map(toReading), hasNextPage: docs.length > q.first };
    },
    async *batches(size) {
      const cursor = col.find({}).batchSize(size);
      let ids: string[] = [];
      let readings: Reading[] = [];
      try {
        for await (const d of cursor) {
          ids.push(d._id);
          readings.push(toReading(d));
          if (ids.length >= size) {
            yield { ids, readings };
            ids = [];
            readings = [];
          }
        }
        if (ids.length > 0) yield { ids, readings };
      } finally {
        await cursor.close();
      }
    },
    async remove(ids) {
      for (let i = 0; i < ids.length; i += MAX_STATEMENTS_PER_COMMAND) {
        await col.bulkWrite(
          ids.slice(i, i + MAX_STATEMENTS_PER_COMMAND).map((_id) => ({ deleteOne: { filter: { _id } } })),
          { ordered: false },
        );
      }
    },
    estimatedCount: () => col.estimatedDocumentCount(),
  };
}
