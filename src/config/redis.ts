/** Redis: the alerts' fan-out to every replica, and the shared rate limits. */
import { HOST_PORT, list, NAME, text, url, type Declarations, type Parsed } from './values.js';

export const REDIS_VARIABLES = {
  REDIS_URL: { schema: url('redis://127.0.0.1:6379', ['redis:', 'rediss:']), doc: 'fan-out and rate limits' },
  REDIS_CHANNEL_PREFIX: { schema: text('iot', NAME), doc: 'prefix of every Redis channel and key' },
  REDIS_CLUSTER_NODES: {
    schema: list([], HOST_PORT),
    doc: 'comma-separated host:port of some Redis Cluster nodes: sharded pub/sub, REDIS_URL unused',
  },
} as const satisfies Declarations;

export interface RedisSettings {
  readonly url: string;
  /** `host:port` of some Redis Cluster nodes (sharded pub/sub); empty: the single instance at `url`. */
  readonly clusterNodes: readonly string[];
  /** Prefix of every Redis channel, so several deployments can share one Redis. */
  readonly channelPrefix: string;
}

export function redisSettings(e: Parsed<typeof REDIS_VARIABLES>): RedisSettings {
  return { url: e.REDIS_URL, channelPrefix: e.REDIS_CHANNEL_PREFIX, clusterNodes: e.REDIS_CLUSTER_NODES };
}
