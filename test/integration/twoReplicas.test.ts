/**
 * (c) Two API processes share one consumer group. A subscriber on each receives every critical
 * reading exactly once, and each is stored once, whichever replica consumed it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AlertsCursorDocument,
  IngestReadingsDocument,
  SensorsDocument,
  SpawnSensorsDocument,
  StopSensorsDocument,
} from '../../client/index.js';
import { connectMongoStore, type MongoStore } from '../../src/store/mongoStore.js';
import { createLogger } from '../../src/logger.js';
import { collectAlerts } from '../support/alertCollector.js';
import { isolatedEnv, uniqueName, storeOptionsFrom } from '../support/env.js';
import { spawnReplica, type ReplicaProcess } from '../support/pipeline.js';
import { eventually, sleep } from '../support/wait.js';

const env = isolatedEnv('replicas', { KAFKA_PARTITIONS: '6' });
let a: ReplicaProcess;
let b: ReplicaProcess;
let store: MongoStore;

beforeAll(async () => {
  [a, b] = await Promise.all([spawnReplica(env), spawnReplica(env)]);
  store = await connectMongoStore({ ...storeOptionsFrom(env), logger: createLogger('silent') });
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await store?.dispose();
});

describe('two API replicas', () => {
  it('delivers every critical reading to a subscriber on each replica exactly once, and stores it once', async () => {
    const { alertsCursor } = await a.client.request(AlertsCursorDocument, {});
    const onA = collectAlerts(a.client, { after: alertsCursor });
    const onB = collectAlerts(b.client, { after: alertsCursor });

    const sensors = Array.from({ length: 12 }, (_, i) => `${uniqueName('unit')}-${i}`);
    const now = Date.now() - 60_000;
    const readings = sensors.flatMap((sensorId, s) =>
      Array.from({ length: 10 }, (_, i) => ({
        sensorId,
        ts: new Date(now + i * 1000 + s).toISOString(),
        temperature: i % 2 === 0 ? 81 + i : 40, // 5 critical per sensor
        humidity: 20,
        location: { lat: 10, lon: 10 },
      })),
    );
    const critical = readings.filter((r) => r.temperature > 80).length;
    // Half pushed through each replica.
    await Promise.all([
      a.client.request(IngestReadingsDocument, { readings: readings.slice(0, 60) }),
      b.client.request(IngestReadingsDocument, { readings: readings.slice(60) }),
    ]);

    await eventually(
      () => onA.alerts.length,
      (n) => n >= critical,
      { what: `alerts on replica A (${critical})` },
    );
    await eventually(
      () => onB.alerts.length,
      (n) => n >= critical,
      { what: `alerts on replica B (${critical})` },
    );
    await sleep(1000);

    for (const subscriber of [onA, onB]) {
      expect(subscriber.errors).toEqual([]);
      expect(subscriber.alerts).toHaveLength(critical);
      expect(new Set(subscriber.alerts.map((x) => x.id)).size).toBe(critical);
    }
    expect(await store.readings.count(sensors)).toBe(readings.length);
    expect(await store.alerts.count(sensors)).toBe(critical);
    onA.stop();
    onB.stop();
  });

  it('lists and stops sensors from whichever replica receives the request', async () => {
    const { spawnSensors } = await a.client.request(SpawnSensorsDocument, { input: { count: 2, intervalMs: 200 } });
    const ids = spawnSensors.sensors.map((s) => s.id);
    const listedOnB = await b.client.request(SensorsDocument, { first: 1000 });
    expect(listedOnB.sensors.nodes.filter((s) => ids.includes(s.id)).map((s) => s.status)).toEqual([
      'RUNNING',
      'RUNNING',
    ]);

    const { stopSensors } = await b.client.request(StopSensorsDocument, { ids });
    expect(stopSensors).toBe(2);
    const again = await b.client.request(StopSensorsDocument, { ids });
    expect(again.stopSensors).toBe(0);

    // The owning replica notices and stops producing.
    await sleep(1500);
    const counts = await Promise.all(ids.map((sensorId) => store.readings.count([sensorId])));
    await sleep(1000);
    const later = await Promise.all(ids.map((sensorId) => store.readings.count([sensorId])));
    expect(later).toEqual(counts);
  });

  it('hands the sensors of a killed replica over to the survivor, which keeps them producing', async () => {
    const { spawnSensors } = await a.client.request(SpawnSensorsDocument, { input: { count: 3, intervalMs: 200 } });
    const ids = spawnSensors.sensors.map((s) => s.id);
    a.child.kill('SIGKILL');

    const adopted = await eventually(
      async () =>
        (await b.client.request(SensorsDocument, { first: 1000 })).sensors.nodes.filter((s) => ids.includes(s.id)),
      (sensors) => sensors.length === 3 && sensors.every((s) => s.replicaId === b.replicaId && s.status === 'RUNNING'),
      { timeoutMs: 30_000, intervalMs: 500, what: 'sensors adopted by replica B' },
    );
    expect(adopted).toHaveLength(3);
    const before = await store.readings.count(ids);
    await eventually(
      () => store.readings.count(ids),
      (n) => n > before + 10,
      { what: 'readings from adopted sensors' },
    );
    await b.client.request(StopSensorsDocument, { ids });
  });
});
