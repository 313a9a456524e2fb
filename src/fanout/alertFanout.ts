/**
 * Redis fan-out of overheat alerts to every API replica.
 *
 * One channel per sensor (`<prefix>:alerts:<sensorId>`), so a replica subscribes only to the
 * sensors its clients asked for; a client with no filter makes its replica pattern-subscribe.
 * Separate publish and subscribe connections. Redis pub/sub is at-most-once: what it drops
 * while down is recovered from MongoDB through subscription cursors (see alertFeed).
 *
 * Resync, in two phases. `hold` starts the moment live delivery may have lost an alert (this
 * replica's subscriber connection dropped, or a new subscription was not confirmed in time): from
 * then on subscriptions keep live alerts aside, since delivering one would move a cursor past the
 * lost one. `replay` comes once delivery is whole again (connection back and re-subscribed, or the
 * late confirmation arrived): subscriptions replay from their cursor and release what they held.
 * A `resync` message on `<prefix>:control` is a bare `replay`: a replica whose publish failed sends
 * it once it can publish again (it publishes nothing in between).
 *
 * Published before stored: an overheat alert goes out the moment it is detected, before it is
 * stored. Each such item carries its place in its partition's chains (ChainLink: `prev`, the offset
 * of the item published before it on the partition, and `sensorPrev`, that of its sensor's item
 * published before it there), and once the partition's watermark has moved past it the
 * publisher sends a progress notice on `<prefix>:<stream>-progress` (the watermark, and the offset of
 * the last item published). That is what subscriptions join live and stored items by
 * (fanout/alertFeed.ts). Items published after they are stored (incident updates) carry neither.
 *
 * On a Redis Cluster (sharded pub/sub, fanout/redisBus.ts) there are no patterns, and what the joins
 * rely on, a notice arriving after every item published before it on its partition, holds only
 * among channels of one slot. So the channels are per partition group, not per sensor: partition p
 * goes on group p % SHARD_GROUPS, whose item channel `<prefix>:<stream>:{<tag>}` and progress channel
 * `<prefix>:<stream>-progress:{<tag>}` share the tag, hence the slot, hence the shard and connection.
 * The tags are chosen so that the groups' slots are spread evenly over 0..16383: any split of the
 * slots among masters shares the traffic out. Every replica subscribes to every group from the
 * start and picks the sensors its listeners asked for; each replica so receives every item of the
 * stream (what a pattern subscriber gets on one instance), and each shard carries only its groups.
 */
import type { ChainLink, OverheatAlert } from '../domain/alert.js';
import type { Logger } from '../logger.js';
import { SpanKind, traceOf, traceparentOf, type Span, type Tracing } from '../observability/tracing.js';
import type { RedisTarget } from '../shared/redisTarget.js';
import type { AlertFanout, Fanout, LiveListener, ResyncPhase, StreamCodec, StreamProgress } from './fanoutContract.js';
import { connectRedisBus, type BusMessage, type RedisBus } from './redisBus.js';
import {
  CHAINED,
  decodeLink,
  decodeProgress,
  deserializeAlert,
  encodeLink,
  encodeProgress,
  serializeAlert,
  SHARD_GROUPS,
  shardChannels,
} from './wireFormat.js';

/** How long a new listener waits for Redis to confirm its subscription before going on without it. */
const SUBSCRIBE_WAIT_MS = 2000;
export type {
  AlertFanout,
  AlertListener,
  Fanout,
  LiveListener,
  ResyncPhase,
  StreamCodec,
  StreamProgress,
} from './fanoutContract.js';
export { deserializeAlert, serializeAlert, SHARD_GROUPS, shardChannels } from './wireFormat.js';

export async function connectAlertFanout(options: {
  redis: RedisTarget;
  channelPrefix: string;
  logger: Logger;
  /** On: a traced alert's publish gets a span, and its payload that span's `traceparent`. */
  tracing?: Tracing;
}): Promise<AlertFanout> {
  const tracing = options.tracing?.enabled ? options.tracing : undefined;
  if (!tracing)
    return connectFanout({ ...options, stream: 'alerts', codec: { encode: serializeAlert, decode: deserializeAlert } });
  /** The `traceparent` each traced alert's payload carries: its publish span's. */
  const onWire = new WeakMap<OverheatAlert, string>();
  const fanout = await connectFanout({
    ...options,
    stream: 'alerts',
    codec: { encode: (a) => serializeAlert(a, onWire.get(a)), decode: deserializeAlert },
  });
  const publish = fanout.publish.bind(fanout);
  return Object.assign(fanout, {
    async publish(items: readonly OverheatAlert[], links?: readonly ChainLink[]): Promise<void> {
      const spans: Span[] = [];
      for (const alert of items) {
        const parent = traceOf(alert);
        if (parent === undefined) continue;
        const span = tracing.start('publish alert', parent, {
          kind: SpanKind.PRODUCER,
          attributes: { 'messaging.system': 'redis', 'alert.id': alert.id },
        });
        spans.push(span);
        const traceparent = traceparentOf(span);
        if (traceparent !== undefined) onWire.set(alert, traceparent);
      }
      try {
        await publish(items, links);
      } finally {
        for (const span of spans) span.end();
      }
    },
  });
}

/**
 * One stream's fan-out: channels `<prefix>:<stream>:<sensorId>` (on a cluster, per partition group:
 * the module comment), its own bus (two connections, or the cluster's). Every stream shares the
 * control channel, so a resync replays all of them (a replay is harmless).
 */
export async function connectFanout<
  T extends { readonly sensorId: string; readonly position: { readonly partition: number } },
>(options: {
  /** Where Redis is; or `bus`, a bus already connected (tests). */
  redis?: RedisTarget;
  bus?: RedisBus;
  channelPrefix: string;
  stream: string;
  codec: StreamCodec<T>;
  logger: Logger;
}): Promise<Fanout<T>> {
  const log = options.logger.child({ module: 'fanout.redis', stream: options.stream });
  const channelPrefix = `${options.channelPrefix}:${options.stream}:`;
  const pattern = `${channelPrefix}*`;
  let bus: RedisBus;
  if (options.bus) bus = options.bus;
  else if (options.redis) bus = await connectRedisBus(options.redis, options.stream, options.logger);
  else throw new Error('connectFanout needs `redis` or `bus`');
  const shards = bus.sharded ? shardChannels(options.channelPrefix, options.stream) : undefined;
  const shardProgress = new Set(shards?.progress);
  const itemChannel = (item: T): string =>
    shards ? shards.items[item.position.partition % SHARD_GROUPS]! : channelPrefix + item.sensorId;

  const controlChannel = `${options.channelPrefix}:control`;
  const progressChannel = `${options.channelPrefix}:${options.stream}-progress`;
  const bySensor = new Map<string, Set<LiveListener<T>>>();
  const everything = new Set<LiveListener<T>>();
  const resyncListeners = new Set<(phase: ResyncPhase) => void>();
  const progressListeners = new Set<(progress: StreamProgress) => void>();
  let published = 0;
  let publishFailures = 0;
  let received = 0;

  const dispatch = (channel: string, payload: string, viaPattern: boolean): void => {
    let targets: Set<LiveListener<T>> | undefined;
    if (shards) {
      // A partition group's channel carries every sensor: the listeners are picked once decoded.
      if (everything.size === 0 && bySensor.size === 0) return;
    } else {
      const specific = bySensor.get(channel.slice(channelPrefix.length));
      // A sensor may be reached both through its channel and the pattern: each path serves only its own listeners.
      targets = viaPattern ? everything : specific;
      if (!targets || targets.size === 0) return;
    }
    let item: T;
    let link: ChainLink | undefined;
    try {
      if (!payload.startsWith(CHAINED)) item = options.codec.decode(payload);
      else {
        const cut = payload.indexOf('\n');
        if (cut < 0) throw new Error('bad chain prefix');
        link = decodeLink(payload.slice(CHAINED.length, cut));
        item = options.codec.decode(payload.slice(cut + 1));
      }
    } catch (err) {
      log.error({ channel, err: (err as Error).message }, 'undecodable item on redis');
      return;
    }
    if (shards) {
      const specific = bySensor.get(item.sensorId);
      targets = specific && everything.size > 0 ? new Set([...everything, ...specific]) : (specific ?? everything);
      if (targets.size === 0) return;
    }
    received++;
    for (const listener of targets!) {
      try {
        listener(item, link);
      } catch (err) {
        log.error({ err }, 'alert listener threw');
      }
    }
  };
  const resyncAll = (why: string): void => {
    log.info({ why }, 'subscriptions resync from the store');
    for (const l of resyncListeners) l('replay');
  };
  /** Open holds; each is closed by exactly one `releaseHold`, which replays. */
  let holds = 0;
  const hold = (why: string): void => {
    holds++;
    log.info({ why, holds }, 'live alerts held until subscriptions resync');
    for (const l of resyncListeners) l('hold');
  };
  const releaseHold = (why: string): void => {
    holds = Math.max(0, holds - 1);
    resyncAll(why);
  };
  bus.onMessage((channel, message, viaPattern) => {
    if (channel === progressChannel || shardProgress.has(channel)) {
      const progress = decodeProgress(message);
      if (!progress) {
        log.error({ message }, 'undecodable progress notice on redis');
        return;
      }
      for (const l of progressListeners) l(progress);
      return;
    }
    if (channel === controlChannel) {
      if (message === 'resync') resyncAll('a replica could not publish some alerts');
      return;
    }
    dispatch(channel, message, viaPattern);
  });
  bus.onDelivery((state) => {
    // Alerts published from a loss until re-subscribed are lost to us; one delivered live before the
    // replay would move its subscriber's cursor past them. The bus re-subscribes by itself.
    if (state === 'lost') hold('subscriber connection lost');
    else releaseHold('subscriber connection restored');
  });

  await bus.subscribe(
    shards ? [controlChannel, ...shards.items, ...shards.progress] : [controlChannel, progressChannel],
  );
  // After a failed publish, nothing more is published until every replica has been told to resync:
  // an alert published after a lost one would move subscribers' cursors past it for good, while
  // alerts held back are all read again by the resync (they are stored before they are published).
  let owedResync = false;
  const resyncSender = setInterval(() => {
    if (!owedResync) return;
    void bus.publish([{ channel: controlChannel, message: 'resync' }]).then(({ failed }) => {
      if (failed === 0) owedResync = false;
    });
  }, 250);
  resyncSender.unref();

  // In-flight or settled SUBSCRIBE per channel (pattern included), so later listeners wait for the same ack.
  const confirmations = new Map<string, Promise<void>>();
  const subscribeQuietly = (fn: () => Promise<unknown>, what: string): Promise<void> =>
    fn().then(
      () => undefined,
      (err: Error) => log.warn({ err: err.message, what }, 'redis subscribe change failed (re-applied on reconnect)'),
    );
  /**
   * Waits for the subscriptions' acks, at most SUBSCRIBE_WAIT_MS. An ack that comes later (Redis
   * down, or a starved process) means the feed started before it could hear live alerts: subscriptions
   * hold live alerts from the timeout on, and replay from their cursor once the ack arrives. (Replaying
   * only then is not enough: a live alert in the same read as the ack would be delivered first.)
   */
  const confirmed = (keys: readonly string[]): Promise<void> => {
    const all = Promise.all(keys.map((k) => confirmations.get(k) ?? Promise.resolve())).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), SUBSCRIBE_WAIT_MS);
    });
    return Promise.race([all, timeout]).then((inTime) => {
      clearTimeout(timer);
      if (!inTime) {
        hold('a subscription was not confirmed in time');
        void all.then(() => releaseHold('a late subscription was confirmed'));
      }
    });
  };

  return {
    async publish(items, links) {
      if (items.length === 0) return;
      if (owedResync) {
        publishFailures += items.length;
        return;
      }
      let messages: BusMessage[];
      try {
        messages = items.map((item, i) => {
          const encoded = options.codec.encode(item);
          const link = links?.[i];
          return {
            channel: itemChannel(item),
            message: link ? `${CHAINED}${encodeLink(link)}\n${encoded}` : encoded,
          };
        });
      } catch (err) {
        publishFailures += items.length;
        owedResync = true;
        log.error({ err: (err as Error).message, items: items.length }, 'unencodable item; subscribers will resync');
        return;
      }
      const { failed, error } = await bus.publish(messages);
      published += items.length - failed;
      publishFailures += failed;
      if (failed > 0) {
        owedResync = true;
        log.warn(
          { err: error, failed, items: items.length },
          'publish failed; subscribers will recover from the store',
        );
      }
    },
    async publishProgress(progress) {
      // Like a failed publish, a notice not sent is made good by the resync (subscriptions waiting for
      // it also look at the watermarks now and then: alertFeed's PROGRESS_POLL_MS).
      if (owedResync) return;
      const { failed, error } = await bus.publish([
        {
          channel: shards ? shards.progress[progress.partition % SHARD_GROUPS]! : progressChannel,
          message: encodeProgress(progress),
        },
      ]);
      if (failed > 0) {
        owedResync = true;
        log.warn({ err: error }, 'progress notice not published; subscribers will resync');
      }
    },
    onProgress(listener) {
      progressListeners.add(listener);
      return () => progressListeners.delete(listener);
    },
    async listen(sensorIds, listener) {
      if (shards) {
        // Every group is subscribed from the start: nothing to wait for (a loss since holds).
        const ids = sensorIds === undefined ? undefined : [...new Set(sensorIds)];
        if (!ids) everything.add(listener);
        for (const id of ids ?? []) {
          const set = bySensor.get(id) ?? new Set();
          set.add(listener);
          bySensor.set(id, set);
        }
        return () => {
          if (!ids) everything.delete(listener);
          for (const id of ids ?? []) {
            const set = bySensor.get(id);
            if (set?.delete(listener) && set.size === 0) bySensor.delete(id);
          }
        };
      }
      if (sensorIds === undefined) {
        everything.add(listener);
        if (everything.size === 1)
          confirmations.set(
            pattern,
            subscribeQuietly(() => bus.psubscribe(pattern), pattern),
          );
        await confirmed([pattern]);
        return () => {
          if (everything.delete(listener) && everything.size === 0) {
            confirmations.delete(pattern);
            void subscribeQuietly(() => bus.punsubscribe(pattern), pattern);
          }
        };
      }
      const ids = [...new Set(sensorIds)];
      const fresh: string[] = [];
      for (const id of ids) {
        let set = bySensor.get(id);
        if (!set) {
          set = new Set();
          bySensor.set(id, set);
          fresh.push(id);
        }
        set.add(listener);
      }
      if (fresh.length > 0) {
        const ack = subscribeQuietly(() => bus.subscribe(fresh.map((id) => channelPrefix + id)), 'sensor channels');
        for (const id of fresh) confirmations.set(channelPrefix + id, ack);
      }
      await confirmed(ids.map((id) => channelPrefix + id));
      return () => {
        const gone: string[] = [];
        for (const id of ids) {
          const set = bySensor.get(id);
          if (set?.delete(listener) && set.size === 0) {
            bySensor.delete(id);
            gone.push(id);
          }
        }
        if (gone.length > 0) {
          for (const id of gone) confirmations.delete(channelPrefix + id);
          void subscribeQuietly(() => bus.unsubscribe(gone.map((id) => channelPrefix + id)), 'sensor channels');
        }
      };
    },
    onResync(listener) {
      resyncListeners.add(listener);
      return () => resyncListeners.delete(listener);
    },
    isHolding: () => holds > 0,
    isReady: () => bus.isReady(),
    stats: () => ({ published, publishFailures, received }),
    async dispose() {
      clearInterval(resyncSender);
      await bus.dispose();
    },
  };
}
