/**
 * The fan-out on a Redis Cluster (3 masters, 3 replicas, scripts/redis-cluster.sh), sharded pub/sub:
 * two API replicas (child processes) with REDIS_CLUSTER_NODES, readings produced to the shared Kafka,
 * subscribers on both replicas, to all sensors and to some. Delivery stays exact (each alert once,
 * in order per sensor) while a master is failed over mid-stream, gracefully (CLUSTER FAILOVER) and
 * hard (SIGKILL: its replica takes over after the cluster node timeout), and the subscribers keep
 * their subscriptions: the replicas hold and resync by themselves. The pauses are printed, not asserted.
 *
 * Run: npm run test:cluster (starts the cluster if it is not up, and stops it after if it started it).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AlertsCursorDocument,
  IngestReadingsDocument,
  OverheatAlertsDocument,
  type PipelineClient,
} from '../../client/index.js';
import { shardChannels } from '../../src/fanout/alertFanout.js';
import { keySlot } from '../../src/shared/redisTarget.js';
import type { ReceivedAlert } from '../support/alertCollector.js';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { spawnReplica, type ReplicaProcess } from '../support/pipeline.js';
import { recentReading } from '../support/readings.js';
import { eventually, sleep } from '../support/wait.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const clusterScript = (action: 'start' | 'stop' | 'env' | 'reset') =>
  run('bash', ['scripts/redis-cluster.sh', action], { cwd: root, timeout: 120_000 });
const PORTS = [17000, 17001, 17002, 17003, 17004, 17005];
const NODES = PORTS.map((p) => `127.0.0.1:${p}`).join(',');

const env = isolatedEnv('rcluster', {
  KAFKA_PARTITIONS: '6',
  REDIS_CLUSTER_NODES: NODES,
  LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
});
const kafka = new Kafka({ clientId: 'redis-cluster-test', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
const producer = kafka.producer({
  idempotent: true,
  maxInFlightRequests: 1,
  createPartitioner: Partitioners.DefaultPartitioner,
});
let a: ReplicaProcess;
let b: ReplicaProcess;
let startedCluster = false;

async function clusterUp(): Promise<boolean> {
  const probe = new Redis({ port: PORTS[0], lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return /cluster_state:ok/.test(String(await probe.cluster('INFO')));
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** Master and replica ports of the shard serving `slot` now. */
async function shardOf(slot: number): Promise<{ master: number; replica: number | undefined }> {
  for (const port of PORTS) {
    const r = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    r.on('error', () => undefined);
    try {
      await r.connect();
      const slots = await r.cluster('SLOTS');
      const entry = slots.find(([from, to]) => slot >= from && slot <= to);
      if (entry?.[2]) return { master: entry[2][1], replica: entry[3]?.[1] };
    } catch {
      // that node is down: ask another
    } finally {
      r.disconnect();
    }
  }
  throw new Error(`no node knows slot ${slot}`);
}

interface Recorder {
  readonly name: string;
  readonly alerts: (ReceivedAlert & { at: number })[];
  /** Errors and completions: a subscription that ended by itself. */
  readonly ends: unknown[];
  stop(): void;
}

function record(name: string, client: PipelineClient, variables: { sensorIds?: string[]; after: string }): Recorder {
  const alerts: Recorder['alerts'] = [];
  const ends: unknown[] = [];
  const stop = client.subscribe(OverheatAlertsDocument, variables, {
    next: (data) => alerts.push({ ...data.overheatAlerts, at: Date.now() }),
    error: (err) => ends.push(err),
    complete: () => ends.push('complete'),
  });
  return { name, alerts, ends, stop };
}

/** Longest gap between two alerts a subscriber received in [from, from + windowMs]: the pause a fault caused. */
function longestPause(r: Recorder, from: number, windowMs: number): number {
  const times = [from, ...r.alerts.map((x) => x.at).filter((t) => t > from && t <= from + windowMs)];
  return Math.max(0, ...times.slice(1).map((t, i) => t - times[i]!));
}

beforeAll(async () => {
  if (!(await clusterUp())) {
    // A fresh cluster: one kept from an earlier run may have come back with a master short of a
    // replica (a node killed by that run rejoins as it can), and the failovers below need one each.
    await clusterScript('reset');
    await clusterScript('start');
    startedCluster = true;
  }
  [a, b] = await Promise.all([spawnReplica(env), spawnReplica(env)]);
  await producer.connect();
});

afterAll(async () => {
  await producer.disconnect().catch(() => undefined);
  await Promise.all([a?.stop(), b?.stop()]);
  // A master killed by the test comes back (as a replica of the one that took over).
  await clusterScript('start').catch(() => undefined);
  if (startedCluster) await clusterScript('stop').catch(() => undefined);
});

describe('the fan-out on a Redis Cluster (sharded pub/sub)', () => {
  it('subscribes every replica to every partition group on the shard that owns it', async () => {
    const { items } = shardChannels(env.REDIS_CHANNEL_PREFIX!, 'alerts');
    for (const channel of [items[0]!, items[7]!, items[15]!]) {
      const { master } = await shardOf(keySlot(channel));
      const r = new Redis({ port: master });
      const [, subscribers] = (await r.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
      r.disconnect();
      expect(subscribers, channel).toBe(2);
    }
  });

  it('delivers each alert once, in order per sensor, while a master fails over gracefully and then is killed', async () => {
    const sensors = Array.from({ length: 12 }, (_, i) => `${uniqueName('press')}-${i}`);
    const STEPS = 150;
    const base = Date.now() - 600_000;
    // Each step 3 of the 12 sensors are hot: alerts flow all along, on every partition.
    const readings = Array.from({ length: STEPS }, (_, step) =>
      sensors.map((sensorId, s) => ({
        sensorId,
        ts: new Date(base + step * 1000 + s).toISOString(),
        temperature: (step + s) % 4 === 0 ? 85 + (step % 10) : 30,
        humidity: 40,
        location: { lat: 45, lon: 7 },
      })),
    );
    const critical = readings.flat().filter((r) => r.temperature > 80);
    const some = sensors.filter((_, i) => i % 3 === 0);

    const { alertsCursor } = await a.client.request(AlertsCursorDocument, {});
    const recorders = [
      { r: record('all sensors, on A', a.client, { after: alertsCursor }), expected: critical },
      { r: record('all sensors, on B', b.client, { after: alertsCursor }), expected: critical },
      {
        r: record('a third of the sensors, on A', a.client, { after: alertsCursor, sensorIds: some }),
        expected: critical.filter((x) => some.includes(x.sensorId)),
      },
      {
        r: record('one sensor, on B', b.client, { after: alertsCursor, sensorIds: [sensors[1]!] }),
        expected: critical.filter((x) => x.sensorId === sensors[1]),
      },
    ];

    // The shard of partition 0's channels: failed over at step 40, its new master killed at step 90.
    const slot = keySlot(shardChannels(env.REDIS_CHANNEL_PREFIX!, 'alerts').items[0]!);
    const faults: { name: string; at: number; done: number }[] = [];
    const graceful = async (): Promise<void> => {
      // A cluster just started lists a master's replica once it has linked and synced: wait for it.
      const { master, replica } = await eventually(
        () => shardOf(slot),
        (shard) => shard.replica !== undefined,
        { timeoutMs: 30_000, intervalMs: 250, what: 'a replica of the shard to fail over to' },
      );
      if (replica === undefined) throw new Error(`the master on ${master} has no replica to fail over to`);
      const at = Date.now();
      const r = new Redis({ port: replica });
      await r.cluster('FAILOVER');
      r.disconnect();
      await eventually(
        () => shardOf(slot),
        (s) => s.master === replica,
        { timeoutMs: 30_000, what: `${replica} serving slot ${slot}` },
      );
      faults.push({ name: `CLUSTER FAILOVER ${master} -> ${replica}`, at, done: Date.now() });
    };
    const kill = async (): Promise<void> => {
      const { master, replica } = await shardOf(slot);
      const pid = Number(await readFile(join(root, '.services', 'redis-cluster', String(master), 'redis.pid'), 'utf8'));
      const at = Date.now();
      process.kill(pid, 'SIGKILL');
      await eventually(
        () => shardOf(slot),
        (s) => s.master === replica,
        { timeoutMs: 60_000, intervalMs: 200, what: `${replica} taking over slot ${slot} from the killed ${master}` },
      );
      faults.push({ name: `SIGKILL master ${master} (${replica} takes over)`, at, done: Date.now() });
    };

    let faultChain: Promise<void> = Promise.resolve();
    for (let step = 0; step < STEPS; step++) {
      await producer.send({
        topic: env.KAFKA_READINGS_TOPIC!,
        acks: -1,
        messages: readings[step]!.map((x) => ({ key: x.sensorId, value: JSON.stringify(x) })),
      });
      if (step === 40) faultChain = faultChain.then(graceful);
      if (step === 90) faultChain = faultChain.then(kill);
      await sleep(100);
    }
    await faultChain;

    for (const { r, expected } of recorders) {
      await eventually(
        () => r.alerts.length,
        (n) => n >= expected.length,
        { timeoutMs: 90_000, what: `${expected.length} alerts for "${r.name}"` },
      ).catch((err: Error) => {
        const got = new Set(r.alerts.map((x) => x.id));
        const missing = expected.filter((x) => !got.has(`${x.sensorId}|${Date.parse(x.ts)}`));
        console.error(JSON.stringify({ subscriber: r.name, received: r.alerts.length, missing: missing.length }));
        console.error(
          `--- replica A ---\n${a.recentOutput().slice(-4000)}\n--- replica B ---\n${b.recentOutput().slice(-4000)}`,
        );
        throw err;
      });
    }
    await sleep(2000); // a duplicate would arrive now

    for (const { r, expected } of recorders) {
      const ids = r.alerts.map((x) => x.id);
      expect.soft(r.ends, `${r.name}: its subscription never ended`).toEqual([]);
      expect.soft(ids.length, `${r.name}: count`).toBe(expected.length);
      expect
        .soft(new Set(ids), `${r.name}: exactly its alerts`)
        .toEqual(new Set(expected.map((x) => `${x.sensorId}|${Date.parse(x.ts)}`)));
      for (const sensorId of sensors) {
        const times = r.alerts.filter((x) => x.sensorId === sensorId).map((x) => Date.parse(x.ts));
        expect.soft(times, `${r.name}: ${sensorId} in order`).toEqual([...times].sort((x, y) => x - y));
      }
      r.stop();
    }
    console.info(
      JSON.stringify({
        alerts: critical.length,
        faults: faults.map((f, i) => {
          // Longest gap in deliveries from the fault to the next one (at most 15 s), per subscriber: alerts flow every 100 ms.
          const window = Math.min(15_000, (faults[i + 1]?.at ?? Infinity) - f.at);
          return {
            fault: f.name,
            failoverMs: f.done - f.at,
            longestPauseMs: Object.fromEntries(recorders.map(({ r }) => [r.name, longestPause(r, f.at, window)])),
          };
        }),
      }),
    );
    expect(faults).toHaveLength(2);
    // The faults did reach the replicas' subscriptions (they held and resynced), not only the publisher.
    for (const replica of [a, b])
      expect(replica.recentOutput()).toContain('sharded subscriptions interrupted; subscribers hold and resync');
  });

  it('keeps the rate limits on the cluster, every window of a credential in one slot', async () => {
    await a.client.request(IngestReadingsDocument, { readings: [recentReading(uniqueName('calm'), 20)] });
    const keys: string[] = [];
    for (const port of PORTS) {
      const r = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      r.on('error', () => undefined);
      try {
        await r.connect();
        if (String(await r.role()).startsWith('master'))
          keys.push(...(await r.keys(`${env.REDIS_CHANNEL_PREFIX}:rate:*`)));
      } catch {
        // a node restarting
      } finally {
        r.disconnect();
      }
    }
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key).toMatch(/:rate:\{[^}]+\}:(mutations|ingest|subscriptions)$/);
  });
});
