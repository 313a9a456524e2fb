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
import { alertsCaughtUp, historyCaughtUp } from '../support/consumerLag.js';
import { sentinelReadings, untilSentinelsArrive, withoutSentinels } from '../support/sentinels.js';
import { eventually } from '../support/wait.js';

const env = isolatedEnv('replicas', { KAFKA_PARTITIONS: '6' });
let a: ReplicaProcess;
let b: ReplicaProcess;
let store: MongoStore;

/** Simulated sensors running on replica `r` (its iot_simulated_sensors gauge). */
async function simulated(r: ReplicaProcess): Promise<number> {
  const text = await (await fetch(r.url.replace('/graphql', '/metrics'))).text();
  return Number(/^iot_simulated_sensors (\d+)$/m.exec(text)?.[1] ?? NaN);
}

/** Resolves once `replicaId` has renewed its lease after `at` (a reconcile round that renewed it). */
async function leaseRenewedAfter(replicaId: string, at: number): Promise<void> {
  const until = async (): Promise<number> =>
    (await store.fleet.leases()).find((l) => l._id === replicaId)?.until.getTime() ?? 0;
  const first = await until();
  await eventually(until, (t) => t > first && t > at, { what: `a renewal of the lease of ${replicaId}` });
}

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
    // A duplicate would arrive before each sensor's sentinel; and once both groups have committed
    // everything, all that will be stored is.
    const sentinels = sentinelReadings(sensors);
    await a.client.request(IngestReadingsDocument, { readings: sentinels });
    await untilSentinelsArrive(() => onA.alerts, sentinels, { what: 'the sentinels on replica A' });
    await untilSentinelsArrive(() => onB.alerts, sentinels, { what: 'the sentinels on replica B' });
    await Promise.all([alertsCaughtUp(env), historyCaughtUp(env)]);

    for (const subscriber of [onA, onB]) {
      const alerts = withoutSentinels(subscriber.alerts, sentinels);
      expect(subscriber.errors).toEqual([]);
      expect(alerts).toHaveLength(critical);
      expect(new Set(alerts.map((x) => x.id)).size).toBe(critical);
    }
    expect(await store.readings.count(sensors)).toBe(readings.length + sentinels.length);
    expect(await store.alerts.count(sensors)).toBe(critical + sentinels.length);
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

    await eventually(
      () => simulated(a),
      (n) => n === 2,
      { what: 'replica A to run them' },
    );
    // Each has produced and stored a reading before it is stopped: the first tick comes one interval
    // after the start, and a stop inside that interval would leave a sensor with no history at all.
    await eventually(
      () => Promise.all(ids.map((sensorId) => store.readings.count([sensorId]))),
      (counts) => counts.every((n) => n > 0),
      { timeoutMs: 30_000, what: 'a stored reading from each sensor' },
    );
    const { stopSensors } = await b.client.request(StopSensorsDocument, { ids });
    expect(stopSensors).toBe(2);
    const again = await b.client.request(StopSensorsDocument, { ids });
    expect(again.stopSensors).toBe(0);

    // The owning replica notices: it runs them no more.
    const noticedAt = await eventually(
      async () => ((await simulated(a)) === 0 ? Date.now() : 0),
      (at) => at > 0,
      { what: 'replica A to stop simulating them' },
    );
    // And they stay stopped: through a renewal of A's lease (a few reconcile rounds later), and once
    // everything produced is stored, none has a reading taken after that (one tick of slack).
    await leaseRenewedAfter(a.replicaId, noticedAt);
    await historyCaughtUp(env);
    const late = await Promise.all(
      ids.map(
        async (sensorId) => (await store.readings.page({ sensorId, from: new Date(noticedAt + 200), first: 1 })).items,
      ),
    );
    expect(late.flat()).toEqual([]);
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
