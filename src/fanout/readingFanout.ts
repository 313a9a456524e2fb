/**
 * Redis fan-out of live readings, as the alert path judges them, to every API replica (the
 * `readingUpdates` subscription). At-most-once: live telemetry, nothing stored for it, no resume.
 *
 * One message per consumed batch, on its partition's channel (`<prefix>:readings:<partition>`),
 * not one per reading: a batch of hundreds of readings is one PUBLISH. A replica with at least one
 * live-readings listener pattern-subscribes to every partition's channel and hands each reading to
 * the listeners of its sensor (and to those listening to every sensor); a replica without any
 * listens to none.
 *
 * Nearly free when nobody listens: PUBLISH returns how many connections received the message, and
 * a partition whose last message reached nobody is not published again for QUIET_MS (nor encoded).
 * So a new listener waits at most that long for its first readings, which live telemetry can afford.
 */
import type { Reading } from '../domain/reading.js';
import type { Logger } from '../logger.js';
import { commandClient, isCluster, type RedisTarget } from '../shared/redisTarget.js';

/** How long a partition whose readings reached nobody is not published. */
export const QUIET_MS = 1000;
/** How long a new listener waits for Redis to confirm its subscription before going on without it. */
const SUBSCRIBE_WAIT_MS = 2000;

export type ReadingListener = (reading: Reading) => void;

export interface ReadingFanout {
  /**
   * Publishes one batch's readings to every replica. Returns at once; never throws (a failure is
   * logged and counted: the readings are live telemetry, not retried).
   */
  publish(partition: number, readings: readonly Reading[]): void;
  /**
   * Listens to the readings of these sensors (every sensor when undefined). Resolves with the
   * function that stops listening once Redis confirmed the subscription, or after
   * SUBSCRIBE_WAIT_MS when it is down (readings then flow once it is back).
   */
  listen(sensorIds: readonly string[] | undefined, listener: ReadingListener): Promise<() => void>;
  isReady(): boolean;
  stats(): ReadingFanoutStats;
  dispose(): Promise<void>;
}

export interface ReadingFanoutStats {
  /** Batches published (each one PUBLISH). */
  published: number;
  /** Batches not published because their partition reached nobody lately. */
  skipped: number;
  publishFailures: number;
  /** Readings received from Redis while this replica had listeners. */
  received: number;
}

/**
 * A batch on the wire: a JSON array of readings, each `[sensorId, ts (epoch ms), temperature,
 * humidity, lat, lon]`, about half the bytes of the objects.
 */
type WireReading = [string, number, number, number, number, number];

export function encodeReadings(readings: readonly Reading[]): string {
  return JSON.stringify(
    readings.map((r): WireReading => [
      r.sensorId,
      r.ts.getTime(),
      r.temperature,
      r.humidity,
      r.location.lat,
      r.location.lon,
    ]),
  );
}

export function decodeReadings(text: string): Reading[] {
  const wire = JSON.parse(text) as unknown;
  if (!Array.isArray(wire)) throw new Error('not an array of readings');
  return wire.map((w: unknown) => {
    if (
      !Array.isArray(w) ||
      w.length !== 6 ||
      typeof w[0] !== 'string' ||
      !w.slice(1).every((n: unknown) => typeof n === 'number' && Number.isFinite(n))
    )
      throw new Error('not a reading');
    const [sensorId, ts, temperature, humidity, lat, lon] = w as WireReading;
    return { sensorId, ts: new Date(ts), temperature, humidity, location: { lat, lon } };
  });
}

export async function connectReadingFanout(options: {
  url: string;
  /** Redis Cluster nodes (REDIS_CLUSTER_NODES): classic pub/sub on the cluster, which every node relays. */
  clusterNodes?: readonly string[];
  channelPrefix: string;
  logger: Logger;
  /** The clock, for tests. */
  now?: () => number;
}): Promise<ReadingFanout> {
  const log = options.logger.child({ module: 'fanout.readings' });
  const now = options.now ?? Date.now;
  const channelPrefix = `${options.channelPrefix}:readings:`;
  const pattern = `${channelPrefix}*`;
  // As the alert fan-out's connections (fanout/alertFanout.ts): publishes fail fast while Redis is
  // down, the subscriber connection queues its (un)subscribes and re-subscribes by itself.
  const redisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  };
  const target: RedisTarget = { url: options.url, clusterNodes: options.clusterNodes ?? [] };
  // On a cluster PUBLISH counts only the receivers on the node it reached: it cannot tell that nobody
  // listens, so every batch is published there.
  const mayGoQuiet = !isCluster(target);
  const pub = commandClient(target, { ...redisOptions, connectionName: 'readings-pub' });
  const sub = commandClient(target, {
    ...redisOptions,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    connectionName: 'readings-sub',
  });
  for (const [name, conn] of [
    ['pub', pub],
    ['sub', sub],
  ] as const) {
    conn.on('error', (err: Error) => log.warn({ connection: name, err: err.message }, 'redis error'));
  }
  await Promise.all([pub.connect(), sub.connect()]);

  const stats: ReadingFanoutStats = { published: 0, skipped: 0, publishFailures: 0, received: 0 };
  /** Per partition, until when it is not published (its last message reached nobody). */
  const quietUntil = new Map<number, number>();
  /** Failures are logged once until a publish succeeds again (Redis down: one per batch otherwise). */
  let failing = false;

  const bySensor = new Map<string, Set<ReadingListener>>();
  const everything = new Set<ReadingListener>();
  let listeners = 0;
  /** The pattern subscription in flight or confirmed, while there are listeners. */
  let subscribed: Promise<void> | undefined;

  sub.on('pmessage', (_pattern: string, channel: string, message: string) => {
    if (listeners === 0) return;
    let readings: Reading[];
    try {
      readings = decodeReadings(message);
    } catch (err) {
      log.error({ channel, err: (err as Error).message }, 'undecodable live readings on redis');
      return;
    }
    stats.received += readings.length;
    for (const reading of readings) {
      const own = bySensor.get(reading.sensorId);
      if (own) for (const l of own) deliver(l, reading);
      for (const l of everything) deliver(l, reading);
    }
  });
  const deliver = (listener: ReadingListener, reading: Reading): void => {
    try {
      listener(reading);
    } catch (err) {
      log.error({ err }, 'live reading listener threw');
    }
  };
  const quietly = (fn: () => Promise<unknown>): Promise<void> =>
    fn().then(
      () => undefined,
      (err: Error) => log.warn({ err: err.message }, 'redis subscribe change failed (re-applied on reconnect)'),
    );

  return {
    publish(partition, readings) {
      if (readings.length === 0) return;
      const t = now();
      if ((quietUntil.get(partition) ?? 0) > t) {
        stats.skipped++;
        return;
      }
      let message: string;
      try {
        message = encodeReadings(readings);
      } catch (err) {
        stats.publishFailures++;
        log.error({ err: (err as Error).message, partition }, 'live readings not encodable');
        return;
      }
      pub.publish(channelPrefix + String(partition), message).then(
        (receivers) => {
          stats.published++;
          failing = false;
          if (receivers === 0 && mayGoQuiet) quietUntil.set(partition, now() + QUIET_MS);
          else quietUntil.delete(partition);
        },
        (err: Error) => {
          stats.publishFailures++;
          // Tried again after the quiet time, not for every batch while Redis is away.
          quietUntil.set(partition, now() + QUIET_MS);
          if (!failing) log.warn({ err: err.message, partition }, 'live readings not published (Redis); dropped');
          failing = true;
        },
      );
    },
    async listen(sensorIds, listener) {
      if (sensorIds === undefined) everything.add(listener);
      else
        for (const id of new Set(sensorIds)) {
          let set = bySensor.get(id);
          if (!set) bySensor.set(id, (set = new Set()));
          set.add(listener);
        }
      listeners++;
      subscribed ??= quietly(() => sub.psubscribe(pattern));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        subscribed,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, SUBSCRIBE_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
      let stopped = false;
      return () => {
        if (stopped) return;
        stopped = true;
        if (sensorIds === undefined) everything.delete(listener);
        else
          for (const id of new Set(sensorIds)) {
            const set = bySensor.get(id);
            if (set?.delete(listener) && set.size === 0) bySensor.delete(id);
          }
        listeners--;
        if (listeners === 0) {
          subscribed = undefined;
          void quietly(() => sub.punsubscribe(pattern));
        }
      };
    },
    isReady: () => pub.status === 'ready' && sub.status === 'ready',
    stats: () => ({ ...stats }),
    async dispose() {
      await Promise.allSettled([pub.quit(), sub.quit()]);
      pub.disconnect();
      sub.disconnect();
    },
  };
}
