/**
 * Raw limit: Redis pub/sub alone with ioredis, separate publish and subscribe connections (like the
 * app's alert fan-out), in one process. ~250-byte JSON alerts on per-sensor channels
 * `<prefix>:alerts:<key>` (50 keys), the subscriber pattern-subscribes `<prefix>:alerts:*`.
 *
 *  - raw.redis.latency  open loop at `rate` msg/s, the publishes of each tick in one pipeline: publish -> pmessage (JSON parsed).
 *  - raw.redis.rate     publish as fast as possible in pipelines of 1000 for ~3 s, deliveries/s at the subscriber.
 *
 * Run alone: npx tsx bench/raw/redis.ts [--durationMs=10000] [--rate=10000]
 */
import { Redis } from 'ioredis';
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
  const prefix = `bench:raw-${runId()}:alerts:`;
  const keys = Array.from({ length: KEYS }, (_, i) => `sensor-${String(i).padStart(4, '0')}`);
  const channels = keys.map((k) => prefix + k);
  const common = { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false };
  const pub = new Redis(url, { ...common, connectionName: 'bench-raw-pub' });
  const sub = new Redis(url, { ...common, connectionName: 'bench-raw-sub' });
  for (const c of [pub, sub]) c.on('error', (err: Error) => process.stderr.write(`[redis] ${err.message}\n`));

  const samples = new Samples();
  let phase: 'warm' | 'latency' | 'saturate' = 'warm';
  let received = 0;
  let satReceived = 0;
  let satFirstAt = 0;
  let satLastAt = 0;
  let subDrops = 0;
  sub.on('close', () => subDrops++);
  try {
    await Promise.all([pub.connect(), sub.connect()]);
    sub.on('pmessage', (_pattern: string, _channel: string, message: string) => {
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
    await sub.psubscribe(`${prefix}*`);

    // Warm-up, out of the measurement.
    for (let i = 0; i < 200; i++) await pub.publish(channels[i % KEYS]!, alertPayload(i, keys[i % KEYS]!, nowMs()));
    await waitFor(() => received >= 200, 5000);
    received = 0;

    phase = 'latency';
    let seq = 0;
    let failures = 0;
    const load = await openLoop(rate, opts.durationMs, (n) => {
      const t = nowMs();
      const p = pub.pipeline();
      for (let i = 0; i < n; i++, seq++) p.publish(channels[seq % KEYS]!, alertPayload(seq, keys[seq % KEYS]!, t));
      p.exec().then(
        (res) => {
          for (const [err] of res ?? []) if (err) failures++;
        },
        () => {
          failures += n;
        },
      );
    });
    await waitFor(() => received + failures >= load.issued, 5000);
    const latencyFigure: Figure = {
      name: 'raw.redis.latency',
      latency: samples.percentiles(),
      unit: 'ms',
      notes:
        `ioredis publish -> psubscribe pmessage alone (one process, separate connections), open loop ${rate}/s for ${opts.durationMs} ms ` +
        `(achieved ${load.achievedRate.toFixed(0)}/s), ~${Buffer.byteLength(alertPayload(0, keys[0]!, nowMs()))} B JSON on ${KEYS} channels, one pipeline per 5 ms tick; ` +
        `received ${received}/${load.issued}, failed publishes ${failures}`,
    };
    const figures = [latencyFigure];

    if (saturateMs > 0) {
      phase = 'saturate';
      // Pre-encoded payloads: the figure is Redis + ioredis, not JSON.stringify.
      const t = nowMs();
      const payloads = Array.from({ length: PIPELINE }, (_, i) => alertPayload(i, keys[i % KEYS]!, t));
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
          const p = pub.pipeline();
          for (let i = 0; i < PIPELINE; i++) p.publish(channels[i % KEYS]!, payloads[i]!);
          await p.exec();
          satPublished += PIPELINE;
        }
      };
      await Promise.all(Array.from({ length: PIPELINES_IN_FLIGHT }, publisher));
      const publishSeconds = (performance.now() - start) / 1000;
      await waitFor(() => satReceived >= satPublished, 10_000);
      const deliverSeconds = (satLastAt - start) / 1000;
      figures.push({
        name: 'raw.redis.rate',
        rate: satReceived / deliverSeconds,
        unit: 'msg/s',
        notes:
          `publish as fast as possible (pipelines of ${PIPELINE}, ${PIPELINES_IN_FLIGHT} in flight, at most ${MAX_UNDELIVERED} undelivered; throttled ${throttled}x) ` +
          `for ${saturateMs} ms: ${satPublished} published ` +
          `(${(satPublished / publishSeconds).toFixed(0)}/s), ${satReceived} delivered via pattern subscription (first after ${(satFirstAt - start).toFixed(1)} ms), ` +
          `rate = delivered / (last delivery - start); one process; subscriber connection drops: ${subDrops}`,
      });
    }
    return figures;
  } finally {
    await sub.punsubscribe().catch(() => undefined);
    await Promise.all([pub.quit().catch(() => pub.disconnect()), sub.quit().catch(() => sub.disconnect())]);
    await sleep(0);
  }
}

if (isMain(import.meta.url)) runCli<RedisRawOptions>(run, { saturateMs: true });
