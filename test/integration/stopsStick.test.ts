/**
 * Stops stick. 1,000 simulated sensors on two replicas (own processes); each replica stops sensors
 * running on the other, one replica is SIGKILLed in the middle, more are stopped while it is dead,
 * and the survivor adopts its sensors. Afterwards exactly the sensors never stopped are running,
 * all on the survivor, and no stopped sensor produces again, over many lease renewals and
 * reconcile rounds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SensorsDocument, SpawnSensorsDocument, StopSensorsDocument, type SensorsQuery } from '../../client/index.js';
import { connectMongoStore, type MongoStore } from '../../src/store/mongoStore.js';
import { createLogger } from '../../src/logger.js';
import { isolatedEnv, storeOptionsFrom } from '../support/env.js';
import { spawnReplica, type ReplicaProcess } from '../support/pipeline.js';
import { historyCaughtUp } from '../support/consumerLag.js';
import { eventually } from '../support/wait.js';

const env = isolatedEnv('stops', { LIMIT_MAX_SPAWN: '1000' });
let a: ReplicaProcess;
let b: ReplicaProcess;
let store: MongoStore;

async function simulated(r: ReplicaProcess): Promise<number> {
  const text = await (await fetch(r.url.replace('/graphql', '/metrics'))).text();
  return Number(/^iot_simulated_sensors (\d+)$/m.exec(text)?.[1] ?? NaN);
}

async function runningIds(r: ReplicaProcess): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  for (;;) {
    const { sensors }: SensorsQuery = await r.client.request(SensorsDocument, { status: 'RUNNING', first: 300, after });
    ids.push(...sensors.nodes.map((s) => s.id));
    if (!sensors.pageInfo.hasNextPage) return ids.sort();
    after = sensors.pageInfo.endCursor;
  }
}

beforeAll(async () => {
  [a, b] = await Promise.all([spawnReplica(env), spawnReplica(env)]);
  store = await connectMongoStore({ ...storeOptionsFrom(env), logger: createLogger('silent') });
});
afterAll(async () => {
  await a?.stop();
  await b?.stop('SIGKILL').catch(() => undefined);
  await store?.dispose();
});

describe('stopping sensors', () => {
  it('never lets a stopped sensor run again, through stops from both replicas, a kill and an adoption', async () => {
    const onA = (
      await a.client.request(SpawnSensorsDocument, { input: { count: 500, intervalMs: 1000 } })
    ).spawnSensors.sensors.map((s) => s.id);
    const onB = (
      await b.client.request(SpawnSensorsDocument, { input: { count: 500, intervalMs: 1000 } })
    ).spawnSensors.sensors.map((s) => s.id);
    await eventually(
      async () => [await simulated(a), await simulated(b)],
      ([x, y]) => x === 500 && y === 500,
      { what: '500 sensors on each replica' },
    );

    // Each replica stops half of the other's sensors, at the same time; B is killed right after.
    const stoppedByB = onA.slice(0, 250);
    const stoppedByA = onB.slice(0, 250);
    await Promise.all([
      b.client.request(StopSensorsDocument, { ids: stoppedByB }),
      a.client.request(StopSensorsDocument, { ids: stoppedByA }),
    ]);
    b.child.kill('SIGKILL');
    // More stops while B is dead and its sensors not yet adopted.
    const stoppedWhileDead = onB.slice(250, 350);
    expect((await a.client.request(StopSensorsDocument, { ids: stoppedWhileDead })).stopSensors).toBe(100);

    const stopped = new Set([...stoppedByB, ...stoppedByA, ...stoppedWhileDead]);
    const survivors = [...onA, ...onB].filter((id) => !stopped.has(id)).sort();
    await eventually(
      () => simulated(a),
      (n) => n === survivors.length,
      { timeoutMs: 45_000, intervalMs: 500, what: `the ${survivors.length} unstopped sensors running on A` },
    );
    expect(await runningIds(a)).toEqual(survivors);

    // Over many reconcile rounds and lease renewals, nothing stopped comes back: A keeps running
    // exactly the survivors while it renews its lease twice (a renewal is a reconcile round, every
    // third or so), and once everything produced is stored, no stopped sensor has a reading taken
    // after the fleet settled (one tick of slack for a tick under way at that moment).
    const settledAt = Date.now();
    const leaseOfA = async (): Promise<number> =>
      (await store.fleet.leases()).find((l) => l._id === a.replicaId)?.until.getTime() ?? 0;
    const renewals: number[] = [await leaseOfA()];
    await eventually(
      async () => {
        expect(await simulated(a)).toBe(survivors.length);
        const until = await leaseOfA();
        if (until > renewals.at(-1)!) renewals.push(until);
        return renewals.length - 1;
      },
      (renewed) => renewed >= 2,
      { timeoutMs: 45_000, intervalMs: 500, what: 'two renewals of the lease of A' },
    );
    await historyCaughtUp(env);
    const producedAgain: string[] = [];
    for (const sensorId of stopped) {
      const page = await store.readings.page({ sensorId, from: new Date(settledAt + 1000), first: 1 });
      if (page.items.length > 0) producedAgain.push(sensorId);
    }
    expect(producedAgain).toEqual([]);
    expect(await runningIds(a)).toEqual(survivors);
    await a.client.request(StopSensorsDocument, {});
    await eventually(
      () => simulated(a),
      (n) => n === 0,
      { what: 'all stopped' },
    );
  }, 180_000);
});
