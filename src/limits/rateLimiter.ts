/**
 * Per-credential rate limits, shared by every replica through Redis: one fixed window per
 * (bucket, principal), counted by a Lua script so that the check and the count are one step.
 * A refused request does not count. While Redis is unreachable each replica applies the same
 * limits on its own (so the limit holds per replica instead of across them) and logs it once.
 * On a Redis Cluster the credential is the key's hash tag (`<prefix>:rate:{<principal>}:<bucket>`):
 * every key of one credential lives in one slot, so a script may ever touch several of them.
 *
 * Stopping sensors has a bucket of its own (rateBucketOf): a stop sheds load, so a burst of other
 * mutations (starts, thresholds) must never leave a credential unable to stop what it started.
 */
import { GraphQLError, OperationTypeNode } from 'graphql';
import { ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { commandClient, type RedisTarget } from '../shared/redisTarget.js';

export interface RateLimit {
  /** Units allowed per window (requests, or readings for ingestion). */
  readonly limit: number;
  readonly windowMs: number;
}

export type RateBucket = 'mutations' | 'stops' | 'ingest' | 'subscriptions';

/** Root fields that only stop sensors: an operation made of these alone takes from `stops`. */
const STOP_FIELDS: ReadonlySet<string> = new Set(['stopSensors', '__typename']);

/**
 * The bucket an operation takes one unit from at admission, or none (queries are not rate-limited;
 * ingestion counts its readings in the resolver). A mutation whose root fields all stop sensors
 * takes from `stops`, which no other mutation touches; a mutation that also does anything else
 * takes from `mutations`, so a stop cannot carry a start past the limit.
 */
export function rateBucketOf(
  operation: OperationTypeNode,
  rootFields: () => readonly string[],
): RateBucket | undefined {
  if (operation === OperationTypeNode.SUBSCRIPTION) return 'subscriptions';
  if (operation !== OperationTypeNode.MUTATION) return undefined;
  const fields = rootFields();
  return fields.some((f) => f !== '__typename') && fields.every((f) => STOP_FIELDS.has(f)) ? 'stops' : 'mutations';
}

export interface RateLimiter {
  /** Takes `units` from the principal's bucket, or throws RATE_LIMITED with a retry-after. */
  take(bucket: RateBucket, principalId: string, units?: number): Promise<void>;
  dispose(): Promise<void>;
}

// KEYS[1] window key; ARGV: units, limit, window ms. Returns {allowed (1/0), ms left in the window}.
const TAKE = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local units = tonumber(ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = tonumber(ARGV[3]) end
if used + units > tonumber(ARGV[2]) then return {0, ttl} end
redis.call('INCRBY', KEYS[1], units)
if used == 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, ttl}
`;

export function rateLimited(bucket: RateBucket, limit: RateLimit, retryAfterMs: number): GraphQLError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new GraphQLError(
    `Rate limit for ${bucket} reached (${limit.limit} per ${limit.windowMs / 1000} s for this credential); retry in ${seconds} s`,
    {
      extensions: {
        code: ErrorCode.RATE_LIMITED,
        bucket,
        limit: limit.limit,
        windowMs: limit.windowMs,
        retryAfterMs,
        http: { status: 429, headers: new Map([['retry-after', String(seconds)]]) },
      },
    },
  );
}

/** The same windows in this process: used while Redis is unreachable, and by unit tests. */
export function localWindows(): (key: string, units: number, limit: RateLimit) => [boolean, number] {
  const windows = new Map<string, { used: number; endsAt: number }>();
  return (key, units, limit) => {
    const now = Date.now();
    let w = windows.get(key);
    if (!w || w.endsAt <= now) {
      if (windows.size > 100_000) for (const [k, v] of windows) if (v.endsAt <= now) windows.delete(k);
      w = { used: 0, endsAt: now + limit.windowMs };
      windows.set(key, w);
    }
    if (w.used + units > limit.limit) return [false, w.endsAt - now];
    w.used += units;
    return [true, w.endsAt - now];
  };
}

/** The Redis key of a credential's window in a bucket: the credential is the hash tag (module comment). */
export function rateKey(prefix: string, bucket: RateBucket, principalId: string): string {
  return `${prefix}:rate:{${principalId}}:${bucket}`;
}

export async function connectRateLimiter(o: {
  redis: RedisTarget;
  prefix: string;
  limits: Readonly<Record<RateBucket, RateLimit>>;
  logger: Logger;
}): Promise<RateLimiter> {
  const log = o.logger.child({ module: 'limits.rate' });
  const redis = commandClient(o.redis, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectionName: 'rate-limits',
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  });
  redis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis error'));
  redis.defineCommand('takeRate', { numberOfKeys: 1, lua: TAKE });
  await redis
    .connect()
    .catch((err: Error) =>
      log.warn({ err: err.message }, 'rate-limit store unreachable at start; limiting per replica until it is back'),
    );
  const local = localWindows();
  let degraded = false;

  return {
    async take(bucket, principalId, units = 1) {
      const limit = o.limits[bucket];
      if (units > limit.limit) throw rateLimited(bucket, limit, limit.windowMs);
      const key = rateKey(o.prefix, bucket, principalId);
      let allowed: boolean;
      let retryAfterMs: number;
      try {
        const [ok, ttl] = await (
          redis as unknown as { takeRate(k: string, u: number, l: number, w: number): Promise<[number, number]> }
        ).takeRate(key, units, limit.limit, limit.windowMs);
        allowed = ok === 1;
        retryAfterMs = ttl;
        if (degraded) log.info('rate-limit store back; limits are shared across replicas again');
        degraded = false;
      } catch (err) {
        if (!degraded) log.warn({ err: (err as Error).message }, 'rate-limit store unreachable; limiting per replica');
        degraded = true;
        [allowed, retryAfterMs] = local(key, units, limit);
      }
      if (!allowed) throw rateLimited(bucket, limit, retryAfterMs);
    },
    async dispose() {
      await redis.quit().catch(() => undefined);
      redis.disconnect();
    },
  };
}
