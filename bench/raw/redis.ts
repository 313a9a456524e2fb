/**
 * Raw limit: Redis pub/sub alone with ioredis, separate publish and subscribe connections (like the
 * app's alert fan-out), in one process. ~250-byte JSON alerts on per-sensor channels
 * `<prefix>:alerts:<key>` (50 keys), the subscriber pattern-subscribes `<prefix>:alerts:*`.
 *
 *  - raw.redis.latency  open loop at `rate` msg/s, the publishes of each tick in one pipeline: publish -> pmessage (JSON parsed).
 *  - raw.redis.rate     publish as fast as possible in pipelines of 1000 for ~3 s, deliveries/s at the subscriber.
 *
 * With `cluster` (a Redis Cluster's nodes, `--redis-cluster` of bench/run.ts): the same on sharded
 * pub/sub through the fan-out's cluster bus (fanout/redisBus.ts), SPUBLISH on the 16 partition-group
 * channels of fanout/alertFanout.ts (spread over the shards), the subscriber SSUBSCRIBEd to all of
 * them, one connection per master: figures `raw.redis-cluster.*`.
 *
 * Run alone: npx tsx bench/raw/redis.ts [--durationMs=10000] [--rate=10000] [--cluster]
 *   (--cluster: the nodes in REDIS_CLUSTER_NODES, else scripts/redis-cluster.sh's 127.0.0.1:17000-17005)
 */
import { Redis } from 'ioredis';
import { shardChannels } from '../../src/fanout/alertFanout.js';
import { connectRedisBus, type BusMessage, type RedisBus } from '../../src/fanout/redisBus.js';
import { createLogger } from '../../src/logger.js';
import { openLoop } from '../lib/openLoop.js';
import { Samples, nowMs, sleep, type Figure } from '../lib/stats.js';
import { isMain, runCli, runId, waitFor } from './common.js';

export interface RedisRawOptions {
  durationMs: number;
  /** Latency phase arrival rate, messages/s (default 10 000). */
  rate?: number;
  /** Length of the saturating phase (default 3000 ms; 0 skips it). */
  saturateMs?: number;
  url?: string;
  /** `host:port` of a Redis Cluster's nodes: sharded pub/sub through the cluster bus. */
  cluster?: readonly string[];
}

/** The local cluster of scripts/redis-cluster.sh. */
export const LOCAL_CLUSTER_NODES = [0, 1, 2, 3, 4, 5].map((i) => `127.0.0.1:${17000 + i}`);

/** Publish and receive, on one instance (raw ioredis, a pattern) or on a cluster (the cluster bus). */
interface PubSub {
  /** The channel of the n-th message. */
  channel(n: number): string;
  publish(batch: readonly BusMessage[]): Promise<number>;
  onMessage(handler: (message: string) => void): void;
  subscribe(): Promise<void>;
  drops(): number;
  close(): Promise<void>;
}

async function singlePubSub(url: string, prefix: string, keys: readonly string[]): Promise<PubSub> {
  const channels = keys.map((k) => prefix + k);
  const common = { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false };
  const pub = new Redis(url, { ...common, connectionName: 'bench-raw-pub' });
  const sub = new Redis(url, { ...common, connectionName: 'bench-raw-sub' });
  for (const c of [pub, sub]) c.on('error', (err: Error) => process.stderr.write(`[redis] ${err.message}\n`));
  let drops = 0;
  sub.on('close', () => drops++);
  await Promise.all([pub.connect(), sub.connect()]);
  return {
    channel: (n) => channels[n % channels.length]!,
    async publish(batch) {
      const p = pub.pipeline();
      for (const m of batch) p.publish(m.channel, m.message);
      const res = await p.exec();
      return (res ?? []).filter(([err]) => err).length;
    },
    onMessage(handler) {
      sub.on('pmessage', (_pattern: string, _channel: string, message: string) => handler(message));
    },
    subscribe: async () => void (await sub.psubscribe(`${prefix}*`)),
    drops: () => drops,
    async close() {
      await sub.punsubscribe().catch(() => undefined);
      await Promise.all([pub.quit().catch(() => pub.disconnect()), sub.quit().catch(() => sub.disconnect())]);
    },
  };
}

async function clusterPubSub(nodes: readonly string[], prefix: string): Promise<PubSub> {
  const bus: RedisBus = await connectRedisBus(
    { url: '', clusterNodes: nodes },
    'bench-raw',
    createLogger(process.env.LOG_LEVEL ?? 'warn'),
  );
  const { items } = shardChannels(prefix, 'alerts');
  let drops = 0;
  bus.onDelivery((state) => {
    if (state === 'lost') drops++;
  });
  return {
    channel: (n) => items[n % items.length]!,
    publish: async (batch) => (await bus.publish(batch)).failed,
    onMessage: (handler) => bus.onMessage((_channel, message) => handler(message)),
    subscribe: () => bus.subscribe(items),
    drops: () => drops,
    close: () => bus.dispose(),
  };
}

const KEYS = 50;
const PIPELINE = 1000;
/** Pipelines in flight during the saturating phase (keeps the socket busy without unbounded queues). */
const PIPELINES_IN_FLIGHT = 4;
/**
 * Most messages published but not yet delivered during the saturating phase. Without this bound the
 * publisher outruns the subscriber and Redis disconnects it (client-output-buffer-limit pubsub 32mb).
 */
const MAX_UNDELIVERED = 20_000;

/** An overheat-alert-like JSON (~250 bytes) with the publish time in `sentAt`. */
function alertPayload(seq: number, key: string, sentAt: number): string {
  const ts = new Date(Math.floor(sentAt)).toISOString();
  return JSON.stringify({
    id: `${key}|${Math.floor(sentAt)}|${seq}`,
    sensorId: key,
    temperature: 85.25 + (seq % 100) / 10,
    threshold: 80,
    ts,
    location: { lat: 48.8566 + (seq % 100) / 1000, lon: 2.3522 + (seq % 77) / 1000 },
    detectedAt: ts,
    partition: seq % 6,
    offset: seq,
    sentAt,
  });
}

export async function run(opts: RedisRawOptions): Promise<Figure[]> {
  const rate = opts.rate ?? 10_000;
  const saturateMs = opts.saturateMs ?? 3000;
  const url = opts.url ?? 'redis://127.0.0.1:6379';
  const keys = Array.from({ length: KEYS }, (_, i) => `sensor-${String(i).padStart(4, '0')}`);
  const id = runId();
  const cluster = opts.cluster && opts.cluster.length > 0 ? opts.cluster : undefined;
  const name = cluster ? 'raw.redis-cluster' : 'raw.redis';
  const bus = cluster
    ? await clusterPubSub(cluster, `bench:raw-${id}`)
    : await singlePubSub(url, `bench:raw-${id}:alerts:`, keys);
  const how = cluster
    ? `sharded pub/sub on a ${cluster.length}-node cluster through the fan-out's cluster bus (SPUBLISH, 16 partition-group channels, SSUBSCRIBE per master)`
    : `ioredis publish -> psubscribe pmessage, ${KEYS} channels`;

  const samples = new Samples();
  let phase: 'warm' | 'latency' | 'saturate' = 'warm';
  let received = 0;
  let satReceived = 0;
  let satFirstAt = 0;
  let satLastAt = 0;
  try {
    bus.onMessage((message) => {
      if (phase === 'saturate') {
        // Counting only: the figure is Redis + ioredis delivery, not JSON.parse.
        satLastAt = performance.now();
        if (satReceived++ === 0) satFirstAt = satLastAt;
        return;
      }
      const { sentAt } = JSON.parse(message) as { sentAt: number };
      received++;
      if (phase === 'latency') samples.add(nowMs() - sentAt);
    });
    await bus.subscribe();

    // Warm-up, out of the measurement.
    for (let i = 0; i < 200; i++)
      await bus.publish([{ channel: bus.channel(i), message: alertPayload(i, keys[i % KEYS]!, nowMs()) }]);
    await waitFor(() => received >= 200, 5000);
    received = 0;

    phase = 'latency';
    let seq = 0;
    let failures = 0;
    const load = await openLoop(rate, opts.durationMs, (n) => {
      const t = nowMs();
      const batch: BusMessage[] = [];
      for (let i = 0; i < n; i++, seq++)
        batch.push({ channel: bus.channel(seq), message: alertPayload(seq, keys[seq % KEYS]!, t) });
      bus.publish(batch).then(
        (failed) => {
          failures += failed;
        },
        () => {
          failures += n;
        },
      );
    });
    await waitFor(() => received + failures >= load.issued, 5000);
    const latencyFigure: Figure = {
      name: `${name}.latency`,
      latency: samples.percentiles(),
      unit: 'ms',
      notes:
        `${how} alone (one process, separate connections), open loop ${rate}/s for ${opts.durationMs} ms ` +
        `(achieved ${load.achievedRate.toFixed(0)}/s), ~${Buffer.byteLength(alertPayload(0, keys[0]!, nowMs()))} B JSON, one batch per 5 ms tick; ` +
        `received ${received}/${load.issued}, failed publishes ${failures}`,
    };
    const figures = [latencyFigure];

    if (saturateMs > 0) {
      phase = 'saturate';
      // Pre-encoded payloads: the figure is Redis + ioredis, not JSON.stringify.
      const t = nowMs();
      const payloads = Array.from({ length: PIPELINE }, (_, i) => ({
        channel: bus.channel(i),
        message: alertPayload(i, keys[i % KEYS]!, t),
      }));
      let satPublished = 0;
      const start = performance.now();
      let throttled = 0;
      const publisher = async (): Promise<void> => {
        while (performance.now() - start < saturateMs) {
          if (satPublished - satReceived > MAX_UNDELIVERED) {
            throttled++;
            await new Promise((r) => setImmediate(r));
            continue;
          }
          await bus.publish(payloads);
          satPublished += PIPELINE;
        }
      };
      await Promise.all(Array.from({ length: PIPELINES_IN_FLIGHT }, publisher));
      const publishSeconds = (performance.now() - start) / 1000;
      await waitFor(() => satReceived >= satPublished, 10_000);
      const deliverSeconds = (satLastAt - start) / 1000;
      figures.push({
        name: `${name}.rate`,
        rate: satReceived / deliverSeconds,
        unit: 'msg/s',
        notes:
          `publish as fast as possible (pipelines of ${PIPELINE}, ${PIPELINES_IN_FLIGHT} in flight, at most ${MAX_UNDELIVERED} undelivered; throttled ${throttled}x) ` +
          `for ${saturateMs} ms: ${satPublished} published ` +
          `(${(satPublished / publishSeconds).toFixed(0)}/s), ${satReceived} delivered (first after ${(satFirstAt - start).toFixed(1)} ms), ` +
          `rate = delivered / (last delivery - start); ${how}; one process; subscriber connection drops: ${bus.drops()}`,
      });
    }
    return figures;
  } finally {
    await bus.close();
    await sleep(0);
  }
}

if (isMain(import.meta.url)) {
  const cluster = process.argv.includes('--cluster')
    ? (process.env.REDIS_CLUSTER_NODES?.split(',').filter(Boolean) ?? LOCAL_CLUSTER_NODES)
    : undefined;
  runCli<RedisRawOptions>((o) => run({ ...o, cluster }), { saturateMs: true });
}
