/**
 * The fan-out's Redis: publish and subscribe, on one instance or on a Redis Cluster, behind one
 * small interface (chosen once from config: REDIS_CLUSTER_NODES).
 *
 * - One instance: PUBLISH / SUBSCRIBE / PSUBSCRIBE, a publish and a subscribe connection.
 * - Redis Cluster: sharded pub/sub (SPUBLISH / SSUBSCRIBE, Redis 7), so each message travels within
 *   the shard that owns its channel's slot instead of being broadcast to every node as PUBLISH is.
 *   There are no sharded patterns: the caller lays its channels out so that a fixed set covers
 *   everything (fanout/alertFanout.ts). Publishing goes through ioredis's Cluster client (it follows
 *   redirections and failovers). Subscribing is done here, one connection per master holding
 *   subscribed channels, because the bus must know the moment delivery may have lost something:
 *   that connection closing, or Redis unsubscribing it because the channel's slot moved (a
 *   failover, a resharding), or the topology (checked every TOPOLOGY_CHECK_MS) showing a channel's
 *   slot served by another master. Each of those is a `lost`; once every channel is subscribed
 *   again where its slot now lives, `restored`.
 *
 * Both keep a publisher's order per channel, and on the cluster among channels of one slot (one
 * connection per node on either side): what the fan-out's joins rely on.
 */
import { Redis, type Cluster } from 'ioredis';
import type { Logger } from '../logger.js';
import { commandClient, isCluster, keySlot, type RedisTarget } from '../shared/redisTarget.js';

export interface BusMessage {
  readonly channel: string;
  readonly message: string;
}

/** `lost`: messages may be missed from now on; `restored`: every subscription is confirmed again. */
export type DeliveryState = 'lost' | 'restored';

export interface RedisBus {
  /** Sharded pub/sub (a Redis Cluster): no patterns, and channels spread over shards by slot. */
  readonly sharded: boolean;
  /** Publishes in order (per channel). Never throws: resolves with how many failed, and the first error. */
  publish(messages: readonly BusMessage[]): Promise<{ failed: number; error: string | undefined }>;
  /** Resolves once Redis confirmed the subscription (kept and renewed across reconnections). */
  subscribe(channels: readonly string[]): Promise<void>;
  unsubscribe(channels: readonly string[]): Promise<void>;
  /** One instance only (`sharded` false). */
  psubscribe(pattern: string): Promise<void>;
  punsubscribe(pattern: string): Promise<void>;
  onMessage(listener: (channel: string, message: string, viaPattern: boolean) => void): void;
  /** `lost` and `restored` alternate, starting with `lost`. */
  onDelivery(listener: (state: DeliveryState) => void): void;
  isReady(): boolean;
  dispose(): Promise<void>;
}

/** How often the cluster bus compares where its channels are subscribed with the cluster's slots. */
const TOPOLOGY_CHECK_MS = 1000;
/** An SSUBSCRIBE not answered in this long is retried (ioredis never settles one answered by MOVED). */
const SSUBSCRIBE_WAIT_MS = 2000;

const commonOptions = {
  lazyConnect: true,
  // Never queue while disconnected: a publish fails fast and the consumer moves on.
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
};

/** `name` names the connections (CLIENT LIST) and the log lines. */
export async function connectRedisBus(target: RedisTarget, name: string, logger: Logger): Promise<RedisBus> {
  const log = logger.child({ module: 'fanout.bus', bus: name });
  return isCluster(target) ? connectClusterBus(target, name, log) : connectSingleBus(target, name, log);
}

function emitter<A extends unknown[]>(): {
  on: (l: (...args: A) => void) => void;
  emit: (...args: A) => void;
} {
  const listeners: ((...args: A) => void)[] = [];
  return {
    on: (l) => void listeners.push(l),
    emit: (...args) => {
      for (const l of listeners) l(...args);
    },
  };
}

async function connectSingleBus(target: RedisTarget, name: string, log: Logger): Promise<RedisBus> {
  const pub = new Redis(target.url, { ...commonOptions, connectionName: `${name}-pub` });
  const sub = new Redis(target.url, {
    ...commonOptions,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    connectionName: `${name}-sub`,
  });
  for (const [role, conn] of [
    ['pub', pub],
    ['sub', sub],
  ] as const) {
    conn.on('error', (err: Error) => log.warn({ connection: role, err: err.message }, 'redis error'));
  }
  await Promise.all([pub.connect(), sub.connect()]);
  const messages = emitter<[string, string, boolean]>();
  const delivery = emitter<[DeliveryState]>();
  const channels = new Set<string>();
  const patterns = new Set<string>();
  let wasReady = true;
  sub.on('message', (channel: string, message: string) => messages.emit(channel, message, false));
  sub.on('pmessage', (_pattern: string, channel: string, message: string) => messages.emit(channel, message, true));
  sub.on('close', () => {
    if (!wasReady) return;
    wasReady = false;
    delivery.emit('lost');
  });
  sub.on('ready', () => {
    if (wasReady) return;
    wasReady = true;
    // ioredis re-subscribes by itself; subscribing again (idempotent in Redis) gives an ack that
    // arrives after those, so `restored` comes only once Redis delivers to us again.
    void Promise.all([
      channels.size > 0 ? sub.subscribe(...channels) : undefined,
      patterns.size > 0 ? sub.psubscribe(...patterns) : undefined,
    ])
      .catch((err: Error) => log.warn({ err: err.message }, 're-subscribe after reconnect failed'))
      .finally(() => delivery.emit('restored'));
  });

  return {
    sharded: false,
    async publish(list) {
      try {
        const pipeline = pub.pipeline();
        for (const m of list) pipeline.publish(m.channel, m.message);
        const results = (await pipeline.exec()) ?? [];
        const errors = results.filter(([err]) => err).map(([err]) => (err as Error).message);
        return { failed: results.length === list.length ? errors.length : list.length, error: errors[0] };
      } catch (err) {
        return { failed: list.length, error: (err as Error).message };
      }
    },
    async subscribe(list) {
      for (const c of list) channels.add(c);
      if (list.length > 0) await sub.subscribe(...list);
    },
    async unsubscribe(list) {
      for (const c of list) channels.delete(c);
      if (list.length > 0) await sub.unsubscribe(...list);
    },
    async psubscribe(pattern) {
      patterns.add(pattern);
      await sub.psubscribe(pattern);
    },
    async punsubscribe(pattern) {
      patterns.delete(pattern);
      await sub.punsubscribe(pattern);
    },
    onMessage: messages.on,
    onDelivery: delivery.on,
    isReady: () => pub.status === 'ready' && sub.status === 'ready',
    async dispose() {
      await Promise.allSettled([pub.quit(), sub.quit()]);
      pub.disconnect();
      sub.disconnect();
    },
  };
}

/** One subscriber connection, to one master. */
interface NodeSubscriber {
  readonly key: string;
  readonly conn: Redis;
  /** Channels confirmed subscribed on it. */
  readonly channels: Set<string>;
  /** Closed by the bus because nothing is subscribed there any more (its close is no loss). */
  retired: boolean;
}

/** Slot ranges of a CLUSTER SLOTS reply, with their master's `host:port`. */
type SlotOwners = (slot: number) => string | undefined;

function parseClusterSlots(reply: unknown): SlotOwners {
  const ranges: { from: number; to: number; master: string }[] = [];
  for (const entry of reply as unknown[][]) {
    const [from, to, master] = entry as [number, number, [string, number]];
    if (master?.[0]) ranges.push({ from: Number(from), to: Number(to), master: `${master[0]}:${master[1]}` });
  }
  return (slot) => ranges.find((r) => slot >= r.from && slot <= r.to)?.master;
}

async function connectClusterBus(target: RedisTarget, name: string, log: Logger): Promise<RedisBus> {
  const pub = commandClient(target, { ...commonOptions, connectionName: `${name}-pub` }) as Cluster;
  pub.on('error', (err: Error) => log.warn({ connection: 'pub', err: err.message }, 'redis error'));
  await pub.connect();
  const messages = emitter<[string, string, boolean]>();
  const delivery = emitter<[DeliveryState]>();
  /** Channels asked for, and where each is confirmed subscribed now. */
  const wanted = new Set<string>();
  const placed = new Map<string, NodeSubscriber>();
  const nodes = new Map<string, NodeSubscriber>();
  let lost = false;
  let disposed = false;

  const markLost = (why: string): void => {
    if (lost || disposed) return;
    lost = true;
    log.warn({ why }, 'sharded subscriptions interrupted; subscribers hold and resync');
    delivery.emit('lost');
  };

  const dropNode = (node: NodeSubscriber, why: string): void => {
    if (nodes.get(node.key) !== node) return;
    nodes.delete(node.key);
    const had = node.channels.size > 0;
    for (const channel of node.channels) if (placed.get(channel) === node) placed.delete(channel);
    node.channels.clear();
    if (had && !node.retired) markLost(why);
    node.conn.disconnect();
    kick(0);
  };

  const nodeSubscriber = (key: string): NodeSubscriber => {
    const existing = nodes.get(key);
    if (existing) return existing;
    const cut = key.lastIndexOf(':');
    const conn = new Redis({
      host: key.slice(0, cut),
      port: Number(key.slice(cut + 1)),
      lazyConnect: true,
      // The bus re-subscribes where the topology says, not on this node again.
      retryStrategy: () => null,
      autoResubscribe: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      connectionName: `${name}-ssub`,
    });
    const node: NodeSubscriber = { key, conn, channels: new Set(), retired: false };
    conn.on('smessage', (channel: string, message: string) => messages.emit(channel, message, false));
    conn.on('error', (err: Error) => {
      // Redis unsubscribes sharded subscribers of a slot that moved; ioredis reports that unasked
      // SUNSUBSCRIBE as an error. The connection is of no use for that slot any more.
      if (err.message.includes('sunsubscribe')) dropNode(node, 'Redis unsubscribed a channel (its slot moved)');
      else log.debug({ node: key, err: err.message }, 'redis subscriber error');
    });
    conn.on('moved', () => dropNode(node, "a channel's slot moved"));
    conn.on('close', () => dropNode(node, 'subscriber connection to a shard lost'));
    nodes.set(key, node);
    return node;
  };

  /** Subscribes every wanted channel on the master of its slot; throws when some could not be. */
  const place = async (): Promise<void> => {
    if (wanted.size === 0 && nodes.size === 0) return;
    const owners = parseClusterSlots(await pub.cluster('SLOTS'));
    const byNode = new Map<string, string[]>();
    let missing = 0;
    for (const channel of wanted) {
      const owner = owners(keySlot(channel));
      const at = placed.get(channel);
      if (at && at.key === owner && nodes.get(at.key) === at) continue;
      if (at) {
        // Its slot is served elsewhere now: what was published there since is not heard here.
        markLost("a channel's slot moved to another master");
        placed.delete(channel);
        at.channels.delete(channel);
        void at.conn.sunsubscribe(channel).catch(() => undefined);
      }
      if (!owner) {
        missing++;
        continue;
      }
      byNode.set(owner, [...(byNode.get(owner) ?? []), channel]);
    }
    for (const node of [...nodes.values()]) {
      if (node.channels.size > 0 || byNode.has(node.key)) continue;
      node.retired = true;
      nodes.delete(node.key);
      node.conn.disconnect();
    }
    await Promise.all(
      [...byNode].map(async ([key, channels]) => {
        const node = nodeSubscriber(key);
        if (node.conn.status === 'wait') await node.conn.connect();
        const bySlot = new Map<number, string[]>();
        for (const c of channels) bySlot.set(keySlot(c), [...(bySlot.get(keySlot(c)) ?? []), c]);
        // One SSUBSCRIBE per slot: Redis refuses one naming channels of several slots.
        for (const group of bySlot.values()) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            node.conn.ssubscribe(...group),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error('SSUBSCRIBE not confirmed in time')), SSUBSCRIBE_WAIT_MS);
            }),
          ]).finally(() => clearTimeout(timer));
          if (nodes.get(key) !== node) throw new Error('subscriber connection lost while subscribing');
          for (const c of group) {
            if (!wanted.has(c)) continue;
            placed.set(c, node);
            node.channels.add(c);
          }
        }
      }),
    );
    if (missing > 0) throw new Error(`no master serves the slot of ${missing} channel(s)`);
    if (lost && [...wanted].every((c) => placed.has(c))) {
      lost = false;
      log.info('sharded subscriptions restored');
      delivery.emit('restored');
    }
  };

  let running: Promise<void> | undefined;
  let again = false;
  /** Runs `place` until nothing changed meanwhile; concurrent callers share the run. */
  const reconcile = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await place();
        } while (again && !disposed);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  /** Reconciles in `delayMs` (once, whoever asks meanwhile); a failure retries with backoff. */
  function kick(delayMs: number): void {
    if (disposed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      reconcile().then(
        () => (failures = 0),
        (err: Error) => {
          if (failures++ === 0) log.warn({ err: err.message }, 'sharded subscribe failed; retrying');
          kick(Math.min(100 * 2 ** failures, 1000));
        },
      );
    }, delayMs);
    timer.unref();
  }
  const topologyCheck = setInterval(() => kick(0), TOPOLOGY_CHECK_MS);
  topologyCheck.unref();

  return {
    sharded: true,
    async publish(list) {
      // One pipeline per channel (a cluster pipeline must stay on one node; a channel is in one slot),
      // all sent in the same tick: per channel in order, and far cheaper than a command each.
      const byChannel = new Map<string, string[]>();
      for (const m of list) byChannel.set(m.channel, [...(byChannel.get(m.channel) ?? []), m.message]);
      const results = await Promise.all(
        [...byChannel].map(async ([channel, batch]) => {
          const pipeline = pub.pipeline();
          for (const message of batch) pipeline.spublish(channel, message);
          try {
            const replies = (await pipeline.exec()) ?? [];
            const errors = replies.filter(([err]) => err).map(([err]) => (err as Error).message);
            return replies.length === batch.length ? errors : [...errors, 'pipeline cut short'].slice(0, batch.length);
          } catch (err) {
            return batch.map(() => (err as Error).message);
          }
        }),
      );
      const errors = results.flat();
      return { failed: errors.length, error: errors[0] };
    },
    async subscribe(list) {
      for (const c of list) wanted.add(c);
      await reconcile().catch((err: unknown) => {
        kick(100);
        throw err;
      });
      const unplaced = list.filter((c) => wanted.has(c) && !placed.has(c));
      if (unplaced.length > 0) throw new Error(`${unplaced.length} channel(s) not subscribed yet (retrying)`);
    },
    async unsubscribe(list) {
      const byNode = new Map<NodeSubscriber, string[]>();
      for (const c of list) {
        wanted.delete(c);
        const node = placed.get(c);
        if (!node) continue;
        placed.delete(c);
        node.channels.delete(c);
        byNode.set(node, [...(byNode.get(node) ?? []), c]);
      }
      await Promise.all(
        [...byNode].flatMap(([node, channels]) =>
          channels.map((c) => node.conn.sunsubscribe(c).catch(() => undefined)),
        ),
      );
    },
    psubscribe() {
      return Promise.reject(new Error('sharded pub/sub has no patterns'));
    },
    punsubscribe() {
      return Promise.reject(new Error('sharded pub/sub has no patterns'));
    },
    onMessage: messages.on,
    onDelivery: delivery.on,
    isReady: () => pub.status === 'ready' && !lost,
    async dispose() {
      disposed = true;
      clearInterval(topologyCheck);
      clearTimeout(timer);
      await running?.catch(() => undefined);
      for (const node of [...nodes.values()]) {
        node.retired = true;
        nodes.delete(node.key);
        node.conn.disconnect();
      }
      await pub.quit().catch(() => undefined);
      pub.disconnect();
    },
  };
}
