/**
 * Fault injection on the real services: nothing lost, nothing doubled.
 *
 * While a known set of N readings (M critical) flows through Kafka, the suite kills a replica with
 * SIGKILL, restarts Redis, stops and restarts the MongoDB-protocol server, and forces consumer
 * rebalances (a replica joins, another leaves). At the end MongoDB holds exactly N readings and M
 * alerts, each subscriber that resumed with its cursor received exactly the alerts of its filter,
 * in order, once each, and the incidents are exactly those the lifecycle gives for each sensor's
 * readings: none opened twice, no clear missed.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertsCursorDocument } from '../../client/index.js';
import type { Incident } from '../../src/domain/incident.js';
import { createLogger } from '../../src/logger.js';
import { connectMongoStore, type MongoStore } from '../../src/store/mongoStore.js';
import { ferretSqliteDir, isolatedEnv, uniqueName, storeOptionsFrom } from '../support/env.js';
import { lifecycleOf } from '../support/incidentModel.js';
import { spawnReplica, type ReplicaProcess } from '../support/pipeline.js';
import { resumableSubscriber, type ResumableSubscriber } from '../support/resumableSubscriber.js';
import { services } from '../support/services.js';
import { alertsCaughtUp, historyCaughtUp } from '../support/consumerLag.js';
import { sentinelReadings, untilSentinelsArrive, withoutSentinels } from '../support/sentinels.js';
import { eventually, sleep } from '../support/wait.js';

// Incident documents rewritten on every change, so the store can be compared with the model exactly.
const env = isolatedEnv('faults', {
  KAFKA_PARTITIONS: '6',
  KAFKA_SESSION_TIMEOUT_MS: '6000',
  INCIDENT_REFRESH_INTERVAL: '0s',
  // Warnings and errors are kept (test/support/pipeline.ts) and printed if recovery stalls.
  LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
});
/** Each named replica keeps its port across restarts (assigned on first start). */
const ports: Partial<Record<'a' | 'b' | 'c', number>> = {};
const replicas = new Map<string, ReplicaProcess>();
const kafka = new Kafka({ clientId: 'fault-test', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
const producer = kafka.producer({
  idempotent: true,
  maxInFlightRequests: 1,
  createPartitioner: Partitioners.DefaultPartitioner,
});
let store: MongoStore | undefined;

const SENSORS = Array.from({ length: 20 }, (_, i) => `${uniqueName('machine')}-${i}`);
const STEPS = 200;
const base = Date.now() - 600_000;
const readings = Array.from({ length: STEPS }, (_, step) =>
  SENSORS.map((sensorId, s) => ({
    sensorId,
    ts: new Date(base + step * 1000 + s).toISOString(),
    // Hot spells of 8 readings every 40 (an incident each, cleared 3 readings later), offset per sensor:
    // a replay inside a spell would count its readings twice.
    temperature: (step + s * 3) % 40 < 8 ? 85 + ((step * 7 + s) % 10) : 30 + (s % 5),
    humidity: 40,
    location: { lat: 45, lon: 7 },
  })),
);
const all = readings.flat();
const critical = all.filter((r) => r.temperature > 80);
const evenSensors = SENSORS.filter((_, i) => i % 2 === 0);
/** Sent after everything (test/support/sentinels.ts): once a subscriber has them, nothing more is coming. */
const sentinels = sentinelReadings(SENSORS, new Date(base + STEPS * 1000));

/** The incidents each sensor's readings give (the fleet defaults), by the pure lifecycle. */
function expectedIncidents(
  sensorId: string,
): Pick<Incident, 'id' | 'status' | 'criticalReadings' | 'peakC' | 'clearedAt'>[] {
  const readingsOf = [...all, ...sentinels]
    .filter((r) => r.sensorId === sensorId)
    .map((r) => ({ ...r, ts: new Date(r.ts) }));
  return lifecycleOf(readingsOf, { thresholdC: 80, hysteresisC: 2 }, { clearReadings: 3, clearAfterMs: 0 }).map(
    ({ id, status, criticalReadings, peakC, clearedAt }) => ({ id, status, criticalReadings, peakC, clearedAt }),
  );
}

const alive = (): string[] =>
  [...replicas.values()].filter((r) => r.child.exitCode === null && r.child.signalCode === null).map((r) => r.url);
let rr = 0;
const pickUrl = (preferred: string) => (): string => {
  const urls = alive();
  if (urls.includes(preferred)) return preferred;
  return urls[rr++ % urls.length] ?? preferred;
};

async function start(name: keyof typeof ports): Promise<void> {
  const replica = await spawnReplica(env, ports[name]);
  ports[name] = replica.port;
  replicas.set(name, replica);
}

/** A sample of a replica's /metrics (0 when absent). */
async function metric(replica: ReplicaProcess, sample: string): Promise<number> {
  const text = await (await fetch(replica.url.replace('/graphql', '/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** What a stalled recovery needs for its diagnosis: who is behind, and what the replicas said. */
async function reportStall(): Promise<void> {
  const perSensor = await Promise.all(
    SENSORS.map(async (sensorId) => [sensorId, await store!.readings.count([sensorId]).catch(() => -1)] as const),
  );
  console.error(JSON.stringify({ storedPerSensor: Object.fromEntries(perSensor) }));
  for (const [name, replica] of replicas) {
    const lines = replica.recentOutput().trim().split('\n').slice(-60);
    console.error(
      `--- replica ${name} (${replica.replicaId}, exit ${replica.child.exitCode ?? replica.child.signalCode ?? 'running'}) ---`,
    );
    console.error(lines.join('\n'));
  }
  const ferretLog = join(ferretSqliteDir(), '..', 'ferretdb.log');
  const tail = await readFile(ferretLog, 'utf8').catch((err: Error) => err.message);
  console.error(`--- ${ferretLog} ---\n${tail.trim().split('\n').slice(-40).join('\n')}`);
}

beforeAll(async () => {
  await Promise.all([start('a'), start('b')]);
  await producer.connect();
});

afterAll(async () => {
  // Whatever happened, leave the services running for the next suite.
  await services('start', 'redis').catch(() => undefined);
  await services('start', 'ferretdb').catch(() => undefined);
  await producer.disconnect().catch(() => undefined);
  await Promise.all([...replicas.values()].map((r) => r.stop('SIGKILL').catch(() => undefined)));
  await store?.dispose();
});

describe('under faults', () => {
  it('stores exactly N readings and M alerts, and resumed subscribers get each of their alerts once, in order', async () => {
    const { alertsCursor } = await replicas.get('a')!.client.request(AlertsCursorDocument, {});
    const subscribers: {
      name: string;
      sub: ResumableSubscriber;
      expected: typeof critical;
      sentinels: typeof sentinels;
    }[] = [
      {
        name: 'all sensors, on A',
        sub: resumableSubscriber(pickUrl(replicas.get('a')!.url), { after: alertsCursor }),
        expected: critical,
        sentinels,
      },
      {
        name: 'even sensors, on B',
        sub: resumableSubscriber(pickUrl(replicas.get('b')!.url), { after: alertsCursor, sensorIds: evenSensors }),
        expected: critical.filter((r) => evenSensors.includes(r.sensorId)),
        sentinels: sentinels.filter((r) => evenSensors.includes(r.sensorId)),
      },
      {
        // Filtered subscriptions follow their sensors' chains, not the store: through a kill of
        // their replica and Redis and store restarts they too get each alert once, in order.
        name: 'even sensors, on A',
        sub: resumableSubscriber(pickUrl(replicas.get('a')!.url), { after: alertsCursor, sensorIds: evenSensors }),
        expected: critical.filter((r) => evenSensors.includes(r.sensorId)),
        sentinels: sentinels.filter((r) => evenSensors.includes(r.sensorId)),
      },
      {
        name: 'one sensor, on B',
        sub: resumableSubscriber(pickUrl(replicas.get('b')!.url), { after: alertsCursor, sensorIds: [SENSORS[1]!] }),
        expected: critical.filter((r) => r.sensorId === SENSORS[1]),
        sentinels: sentinels.filter((r) => r.sensorId === SENSORS[1]),
      },
    ];
    // Every subscription is open on its replica before the faults begin (two on each).
    for (const name of ['a', 'b'] as const) {
      await eventually(
        () => metric(replicas.get(name)!, 'iot_subscriptions'),
        (n) => n >= 2,
        { what: `the subscriptions open on replica ${name.toUpperCase()}` },
      );
    }

    const faultNames: Record<number, string> = {
      30: 'SIGKILL replica A',
      60: 'restart replica A (rebalance)',
      90: 'restart Redis',
      120: 'stop FerretDB until the replicas see it down, start it',
      150: 'replica C joins (rebalance)',
      180: 'replica C leaves on SIGTERM (rebalance)',
    };
    const faults: Record<number, () => Promise<void>> = {
      30: async () => {
        replicas.get('a')!.child.kill('SIGKILL'); // mid-batch, no goodbye
      },
      60: async () => start('a'), // rejoins: rebalance
      90: async () => services('restart', 'redis'),
      120: async () => {
        await services('stop', 'ferretdb');
        // Down until every replica alive has seen it down (its readiness probe failed).
        await eventually(
          () =>
            Promise.all(
              alive().map(async (url) => {
                const res = await fetch(url.replace('/graphql', '/readyz')).catch(() => undefined);
                const report = (await res?.json().catch(() => undefined)) as
                  { checks?: { mongodb?: string } } | undefined;
                return report?.checks?.mongodb;
              }),
            ),
          (states) => states.length > 0 && states.every((state) => state === 'down'),
          { what: 'every replica to see the store down' },
        );
        await services('start', 'ferretdb');
      },
      150: async () => start('c'), // joins: rebalance
      180: async () => {
        await replicas.get('c')!.stop('SIGTERM'); // leaves gracefully: rebalance
      },
    };

    // Faults run one after another, alongside production. After each, the suite times how long
    // until everything produced so far is stored (recovery), for the report printed at the end.
    store = await connectMongoStore({ ...storeOptionsFrom(env), logger: createLogger('silent') });
    const report: { fault: string; tookMs: number; caughtUpMs: number }[] = [];
    let produced = 0;
    let productionOver = false;
    const timed = (name: string, fault: () => Promise<void>) => async () => {
      const t0 = Date.now();
      await fault();
      const t1 = Date.now();
      // Include readings sent after the fault, e.g. to the partitions a killed replica held: the
      // next step of production (or its end).
      const producedAtFault = produced;
      await eventually(
        () => produced > producedAtFault || productionOver,
        (after) => after,
        { what: `production to go on after ${name}` },
      );
      const target = produced;
      await eventually(
        () => store!.readings.count(SENSORS).catch(() => 0),
        (n) => n >= target,
        {
          timeoutMs: 120_000,
          intervalMs: 100,
          what: `catch-up after ${name}`,
        },
      ).catch(async (err: Error) => {
        await reportStall();
        throw err;
      });
      report.push({ fault: name, tookMs: t1 - t0, caughtUpMs: Date.now() - t1 });
    };
    let faultChain: Promise<void> = Promise.resolve();
    for (let step = 0; step < STEPS; step++) {
      await producer.send({
        topic: env.KAFKA_READINGS_TOPIC!,
        acks: -1,
        messages: readings[step]!.map((r) => ({ key: r.sensorId, value: JSON.stringify(r) })),
      });
      const fault = faults[step];
      produced += readings[step]!.length;
      if (fault) faultChain = faultChain.then(timed(faultNames[step]!, fault));
      // The pace of production (10 steps a second), so that the faults fall in the middle of it:
      // the load's rate, not a wait for something to happen.
      await sleep(100);
    }
    productionOver = true;
    await faultChain;

    await eventually(
      () => store!.readings.count(SENSORS),
      (n) => n >= all.length,
      { timeoutMs: 120_000, what: `${all.length} readings stored` },
    );
    await eventually(
      () => store!.alerts.count(SENSORS),
      (n) => n >= critical.length,
      { timeoutMs: 60_000, what: `${critical.length} alerts stored` },
    );
    for (const { sub, expected, name } of subscribers) {
      await eventually(
        () => sub.alerts.length,
        (n) => n >= expected.length,
        { timeoutMs: 60_000, what: `alerts for subscriber "${name}"` },
      ).catch((err: Error) => {
        // Say which alerts are missing, and when they were stored: the report a gap needs.
        const got = new Set(sub.alerts.map((a) => `${a.sensorId}|${Date.parse(a.ts)}`));
        const missing = expected.filter((r) => !got.has(`${r.sensorId}|${Date.parse(r.ts)}`));
        console.error(
          JSON.stringify({
            subscriber: name,
            resumes: sub.resumes(),
            missing: missing.map((r) => ({ sensorId: r.sensorId, ts: r.ts })),
          }),
        );
        throw err;
      });
    }
    // The sentinels, after everything: a subscriber that has its sensors' sentinels has all it will
    // ever get before them (a duplicate included). Then both groups have committed everything.
    await producer.send({
      topic: env.KAFKA_READINGS_TOPIC!,
      acks: -1,
      messages: sentinels.map((r) => ({ key: r.sensorId, value: JSON.stringify(r) })),
    });
    for (const { sub, name, sentinels: theirs } of subscribers) {
      await untilSentinelsArrive(() => sub.alerts, theirs, { what: `the sentinels of "${name}"`, timeoutMs: 60_000 });
    }
    await Promise.all([alertsCaughtUp(env), historyCaughtUp(env)]);

    expect(await store.readings.count(SENSORS)).toBe(all.length + sentinels.length);
    expect(await store.alerts.count(SENSORS)).toBe(critical.length + sentinels.length);

    for (const { sub, expected, name, sentinels: theirs } of subscribers) {
      const alerts = withoutSentinels(sub.alerts, theirs);
      const got = alerts.map((a) => a.id);
      expect.soft(got.length, `${name}: count`).toBe(expected.length);
      expect.soft(new Set(got).size, `${name}: no duplicates`).toBe(got.length);
      expect
        .soft(new Set(got), `${name}: exactly its alerts`)
        .toEqual(new Set(expected.map((r) => `${r.sensorId}|${Date.parse(r.ts)}`)));
      for (const sensorId of SENSORS) {
        const times = alerts.filter((a) => a.sensorId === sensorId).map((a) => Date.parse(a.ts));
        expect.soft(times, `${name}: ${sensorId} in order`).toEqual([...times].sort((x, y) => x - y));
      }
      await sub.stop();
    }
    console.info(
      JSON.stringify({
        readings: all.length,
        alerts: critical.length,
        subscribers: subscribers.map(({ name, sub }) => ({
          name,
          received: sub.alerts.length,
          resumes: sub.resumes(),
        })),
        faults: report,
      }),
    );
    // Incidents: exactly the lifecycle of each sensor's readings, whatever the faults replayed.
    for (const sensorId of SENSORS) {
      const expected = expectedIncidents(sensorId);
      const stored = async () =>
        (await store!.incidents.page({ sensorIds: [sensorId], first: 1000 })).items
          .map(({ id, status, criticalReadings, peakC, clearedAt }) => ({
            id,
            status,
            criticalReadings,
            peakC,
            clearedAt,
          }))
          .reverse();
      await eventually(stored, (got) => JSON.stringify(got) === JSON.stringify(expected), {
        timeoutMs: 30_000,
        what: `the incidents of ${sensorId}`,
      }).catch(() => undefined);
      expect.soft(await stored(), `incidents of ${sensorId}`).toEqual(expected);
    }
    expect(expectedIncidents(SENSORS[0]!).length).toBeGreaterThanOrEqual(5);

    // The subscriber on the killed replica had to resume elsewhere.
    expect(subscribers[0]!.sub.resumes()).toBeGreaterThanOrEqual(1);
  }, 300_000);
});
