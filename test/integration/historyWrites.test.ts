/**
 * Reading history is written at most every HISTORY_WRITE_INTERVAL per replica: readings arriving
 * meanwhile wait in Kafka and go into one write, so the store's work follows the interval and the
 * fleet, not the rate at which readings arrive. Nothing is lost by waiting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestReadingsDocument } from '../../client/index.js';
import { createLogger } from '../../src/logger.js';
import { connectMongoStore, type MongoStore } from '../../src/store/mongoStore.js';
import { isolatedEnv, storeOptionsFrom, uniqueName } from '../support/env.js';
import { spawnReplica, type ReplicaProcess } from '../support/pipeline.js';
import { eventually, sleep } from '../support/wait.js';

// One partition: its writes are the replica's (the interval is kept per partition).
const env = isolatedEnv('history-writes', { HISTORY_WRITE_INTERVAL: '6s', KAFKA_PARTITIONS: '1' });
let replica: ReplicaProcess;
let store: MongoStore;

/** Reading-history writes this replica made so far (iot_store_write_seconds{what="readings"}). */
async function historyWrites(): Promise<number> {
  const text = await (await fetch(replica.url.replace('/graphql', '/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith('iot_store_write_seconds_count{what="readings"}'));
  return line ? Number(line.split(' ')[1]) : 0;
}

beforeAll(async () => {
  replica = await spawnReplica(env);
  store = await connectMongoStore({ ...storeOptionsFrom(env), logger: createLogger('silent') });
});
afterAll(async () => {
  await replica?.stop();
  await store?.dispose();
});

describe('reading history with a write interval', () => {
  it('stores readings that arrive apart in one write per interval, every one of them', async () => {
    const sensors = Array.from({ length: 20 }, (_, i) => `${uniqueName('hw')}-${i}`);
    const start = Date.now() - 60_000;
    const before = await historyWrites();
    // Eight requests 400 ms apart: written as they come, that is a write each.
    for (let k = 0; k < 8; k++) {
      const readings = sensors.map((sensorId, s) => ({
        sensorId,
        ts: new Date(start + k * 1000 + s).toISOString(),
        temperature: 30,
        humidity: 40,
        location: { lat: 1, lon: 2 },
      }));
      await replica.client.request(IngestReadingsDocument, { readings });
      if (k < 7) await sleep(400);
    }
    await eventually(
      () => store.readings.count(sensors),
      (n) => n === 8 * sensors.length,
      { what: `${8 * sensors.length} readings stored` },
    );
    // The first request's readings go at once; the rest wait in Kafka for the interval, then go together.
    expect((await historyWrites()) - before).toBeLessThanOrEqual(2);
  });
});
