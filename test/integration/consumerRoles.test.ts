/**
 * Replicas that join one consumer group each (KAFKA_CONSUMERS): the alert path on one, reading
 * history on the other. Together they are the whole pipeline, and each serves the whole API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertsCursorDocument, IngestReadingsDocument } from '../../client/index.js';
import { createLogger } from '../../src/logger.js';
import { connectMongoStore, type MongoStore } from '../../src/store/mongoStore.js';
import { collectAlerts } from '../support/alertCollector.js';
import { isolatedEnv, storeOptionsFrom, uniqueName } from '../support/env.js';
import { spawnReplica, type ReplicaProcess } from '../support/pipeline.js';
import { alertsCaughtUp, historyCaughtUp } from '../support/consumerLag.js';
import { sentinelReadings, untilSentinelsArrive, withoutSentinels } from '../support/sentinels.js';
import { eventually } from '../support/wait.js';

const env = isolatedEnv('roles', { KAFKA_PARTITIONS: '4' });
let alertsOnly: ReplicaProcess;
let historyOnly: ReplicaProcess;
let store: MongoStore;

/** A counter of one replica's /metrics (0 when absent). */
async function counter(replica: ReplicaProcess, name: string): Promise<number> {
  const text = await (await fetch(replica.url.replace('/graphql', '/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

beforeAll(async () => {
  [alertsOnly, historyOnly] = await Promise.all([
    spawnReplica({ ...env, KAFKA_CONSUMERS: 'alerts' }),
    spawnReplica({ ...env, KAFKA_CONSUMERS: 'history' }),
  ]);
  store = await connectMongoStore({ ...storeOptionsFrom(env), logger: createLogger('silent') });
});
afterAll(async () => {
  await Promise.all([alertsOnly?.stop(), historyOnly?.stop()]);
  await store?.dispose();
});

describe('replicas split by consumer group', () => {
  it('raise every alert on the alert replica, store every reading on the history replica, and serve both everywhere', async () => {
    const { alertsCursor } = await historyOnly.client.request(AlertsCursorDocument, {});
    // Subscribed on the replica that runs no alert path: alerts reach it through Redis.
    const subscriber = collectAlerts(historyOnly.client, { after: alertsCursor });
    const sensors = Array.from({ length: 8 }, (_, i) => `${uniqueName('role')}-${i}`);
    const start = Date.now() - 60_000;
    const readings = sensors.flatMap((sensorId, s) =>
      Array.from({ length: 6 }, (_, i) => ({
        sensorId,
        ts: new Date(start + i * 1000 + s).toISOString(),
        temperature: i % 3 === 0 ? 85 + i : 30, // 2 critical per sensor
        humidity: 40,
        location: { lat: 1, lon: 2 },
      })),
    );
    const critical = readings.filter((r) => r.temperature > 80).length;
    await alertsOnly.client.request(IngestReadingsDocument, { readings });

    await eventually(
      () => subscriber.alerts.length,
      (n) => n >= critical,
      { what: `${critical} alerts on the history replica's subscriber` },
    );
    await eventually(
      () => store.readings.count(sensors),
      (n) => n === readings.length,
      { what: `${readings.length} readings stored` },
    );
    // A sentinel per sensor: a duplicate would arrive before it. Then both groups have committed
    // everything: all that will be stored is.
    const sentinels = sentinelReadings(sensors);
    await alertsOnly.client.request(IngestReadingsDocument, { readings: sentinels });
    await untilSentinelsArrive(() => subscriber.alerts, sentinels);
    await Promise.all([alertsCaughtUp(env), historyCaughtUp(env)]);
    const alerts = withoutSentinels(subscriber.alerts, sentinels);
    expect(subscriber.errors).toEqual([]);
    expect(new Set(alerts.map((a) => a.id)).size).toBe(critical);
    expect(alerts).toHaveLength(critical);
    expect(await store.alerts.count(sensors)).toBe(critical + sentinels.length);
    expect(await store.readings.count(sensors)).toBe(readings.length + sentinels.length);
    // Each did only its own group's work.
    expect(await counter(alertsOnly, 'iot_readings_stored_total')).toBe(0);
    expect(await counter(historyOnly, 'iot_readings_stored_total')).toBeGreaterThanOrEqual(readings.length);
    expect(await counter(historyOnly, 'iot_alerts_raised_total')).toBe(0);
    expect(await counter(alertsOnly, 'iot_alerts_raised_total')).toBeGreaterThanOrEqual(critical);
    subscriber.stop();
  });
});
