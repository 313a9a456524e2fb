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
import { eventually } from '../support/wait.js';

// One partition: its writes are the replica's (the interval is kept per partition).
const env = isolatedEnv('history-writes', { HISTORY_WRITE_INTERVAL: '6s', KAFKA_PARTITIONS: '1' });
let replica: ReplicaProcess;
let store: MongoStore;

/** The value of one sample of this replica's /metrics (0 when absent). */
async function metric(sample: string): Promise<number> {
  const text = await (await fetch(replica.url.replace('/graphql', '/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** Reading-history writes this replica made so far (iot_store_write_seconds{what="readings"}). */
const historyWrites = (): Promise<number> => metric('iot_store_write_seconds_count{what="readings"}');

/** Readings the alert path, which reads them as they come, has taken in so far. */
const takenInByAlertPath = (): Promise<number> => metric('iot_consumer_batch_messages_sum{group="alerts"}');

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
    const takenInBefore = await takenInByAlertPath();
    // Eight requests, each sent once the alert path has taken the one before in: they reach Kafka
    // apart, and written as they come, that is a write each.
    for (let k = 0; k < 8; k++) {
      const readings = sensors.map((sensorId, s) => ({
        sensorId,
        ts: new Date(start + k * 1000 + s).toISOString(),
        temperature: 30,
        humidity: 40,
        location: { lat: 1, lon: 2 },
      }));
      await replica.client.request(IngestReadingsDocument, { readings });
      await eventually(takenInByAlertPath, (n) => n >= takenInBefore + (k + 1) * sensors.length, {
        what: `request ${k + 1} taken in by the alert path`,
      });
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
