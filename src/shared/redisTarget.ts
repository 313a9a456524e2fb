/**
 * Where Redis is: one instance (`url`), or a Redis Cluster (`clusterNodes`, some of its nodes: the
 * rest is discovered). Chosen once from config (REDIS_URL, REDIS_CLUSTER_NODES); the fan-out's bus
 * (fanout/redisBus.ts) and the rate limiter connect through here.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

export interface RedisTarget {
  readonly url: string;
  /** `host:port` of some cluster nodes; empty: the single instance at `url`. */
  readonly clusterNodes: readonly string[];
}

export const isCluster = (target: RedisTarget): boolean => target.clusterNodes.length > 0;

export function clusterStartupNodes(target: RedisTarget): { host: string; port: number }[] {
  return target.clusterNodes.map((node) => {
    const cut = node.lastIndexOf(':');
    return { host: node.slice(0, cut), port: Number(node.slice(cut + 1)) };
  });
}

/**
 * A command connection: one Redis, or a Cluster client that sends each command to the master of its
 * key's slot (and follows failovers). `options` apply to every node connection.
 */
export function commandClient(target: RedisTarget, options: RedisOptions): Redis | Cluster {
  if (!isCluster(target)) return new Redis(target.url, options);
  // Node connections are not retried one by one: the cluster client finds masters again itself.
  const { lazyConnect, enableOfflineQueue, retryStrategy: _perNodeRetry, ...perNode } = options;
  const clusterOptions: ClusterOptions = {
    lazyConnect,
    enableOfflineQueue,
    redisOptions: perNode,
    // Commands issued in one tick go out as one write per node (a cluster pipeline must stay on one node).
    enableAutoPipelining: true,
    // After a failover the new master is found from the redirections; retry while the cluster settles.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    clusterRetryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  };
  return new Cluster(clusterStartupNodes(target), clusterOptions);
}

/** CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), the checksum Redis Cluster hashes keys with. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

export const CLUSTER_SLOTS = 16384;

/**
 * The cluster slot of a key or sharded channel: of its hash tag (what is between the first `{` and
 * the first `}` after it, when not empty), else of the whole name.
 */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key, 'utf8')) % CLUSTER_SLOTS;
}
