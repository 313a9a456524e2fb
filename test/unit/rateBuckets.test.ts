/**
 * Which rate bucket a request takes from, checked through the front door's admission with the
 * limiter's in-process windows. test/integration/stopLimits.test.ts does the same on a replica with
 * the Redis-backed limiter.
 */
import 'reflect-metadata';
import { OperationTypeNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/credentials.js';
import { createAdmission } from '../../src/http/admission.js';
import type { OperationLimits } from '../../src/limits/operationLimits.js';
import {
  localWindows,
  rateBucketOf,
  rateLimited,
  type RateBucket,
  type RateLimit,
  type RateLimiter,
} from '../../src/limits/rateLimiter.js';
import { buildAppSchema } from '../../src/resolvers/buildSchema.js';

const LIMITS: OperationLimits = {
  maxDepth: 10,
  maxAliases: 20,
  maxDirectives: 10,
  maxCost: 25_000,
  maxOperationNameLength: 100,
  maxVariablesDepth: 8,
  maxTokens: 5000,
  defaultListSize: 50,
};
const admin: Principal = { id: 'test:admin', role: 'admin', sensors: undefined, expiresAt: undefined };

/** The limiter's own windows, in this process, with what each request took. */
function inProcessLimiter(limits: Record<RateBucket, RateLimit>): RateLimiter & { taken: RateBucket[] } {
  const take = localWindows();
  const taken: RateBucket[] = [];
  return {
    taken,
    take(bucket, principalId, units = 1) {
      const [allowed, retryAfterMs] = take(`${bucket}:${principalId}`, units, limits[bucket]);
      if (!allowed) return Promise.reject(rateLimited(bucket, limits[bucket], retryAfterMs));
      taken.push(bucket);
      return Promise.resolve();
    },
    dispose: () => Promise.resolve(),
  };
}

const SPAWN = 'mutation { spawnSensors(input: { count: 1 }) { sensors { id } } }';
const STOP = 'mutation { stopSensors(ids: ["sensor-1"]) }';
const STOP_ALL = 'mutation { stopSensors }';

async function admissionWith(limits: Record<RateBucket, RateLimit>) {
  const limiter = inProcessLimiter(limits);
  const admission = createAdmission({
    schema: await buildAppSchema(),
    limits: LIMITS,
    introspection: true,
    rateLimiter: limiter,
  });
  const codeOf = async (query: string): Promise<unknown> => {
    const out = await admission.admit(admin, { query });
    return out.ok ? 'admitted' : out.error.extensions.code;
  };
  return { limiter, codeOf };
}

const window = (limit: number): RateLimit => ({ limit, windowMs: 60_000 });

describe('rate buckets', () => {
  it('puts a mutation made only of stopSensors in the stops bucket, anything else in mutations', () => {
    const fields =
      (...names: string[]) =>
      () =>
        names;
    expect(rateBucketOf(OperationTypeNode.MUTATION, fields('stopSensors'))).toBe('stops');
    expect(rateBucketOf(OperationTypeNode.MUTATION, fields('stopSensors', '__typename'))).toBe('stops');
    expect(rateBucketOf(OperationTypeNode.MUTATION, fields('stopSensors', 'spawnSensors'))).toBe('mutations');
    expect(rateBucketOf(OperationTypeNode.MUTATION, fields('setThreshold'))).toBe('mutations');
    expect(rateBucketOf(OperationTypeNode.MUTATION, fields('__typename'))).toBe('mutations');
    expect(rateBucketOf(OperationTypeNode.SUBSCRIPTION, fields('overheatAlerts'))).toBe('subscriptions');
    expect(rateBucketOf(OperationTypeNode.QUERY, fields('alerts'))).toBeUndefined();
  });

  it('still admits stops after a burst of starts used up the mutation limit', async () => {
    const { limiter, codeOf } = await admissionWith({
      mutations: window(3),
      stops: window(300),
      ingest: window(100),
      subscriptions: window(100),
    });
    for (let i = 0; i < 3; i++) expect(await codeOf(SPAWN)).toBe('admitted');
    expect(await codeOf(SPAWN)).toBe('RATE_LIMITED');
    expect(await codeOf(STOP)).toBe('admitted');
    expect(await codeOf(STOP_ALL)).toBe('admitted');
    // Through a fragment too: the bucket follows the root fields, not the text.
    expect(await codeOf('mutation { ...S } fragment S on Mutation { stopSensors(ids: ["sensor-2"]) }')).toBe(
      'admitted',
    );
    expect(limiter.taken).toEqual(['mutations', 'mutations', 'mutations', 'stops', 'stops', 'stops']);
  });

  it('does not let a stop carry another mutation past the mutation limit', async () => {
    const { codeOf } = await admissionWith({
      mutations: window(1),
      stops: window(300),
      ingest: window(100),
      subscriptions: window(100),
    });
    expect(await codeOf(SPAWN)).toBe('admitted');
    expect(
      await codeOf(`mutation { stopSensors(ids: ["sensor-1"]) spawnSensors(input: { count: 1 }) { sensors { id } } }`),
    ).toBe('RATE_LIMITED');
  });

  it('limits stops by their own bucket, which starts never drain', async () => {
    const { codeOf } = await admissionWith({
      mutations: window(100),
      stops: window(2),
      ingest: window(100),
      subscriptions: window(100),
    });
    expect(await codeOf(STOP)).toBe('admitted');
    expect(await codeOf(STOP)).toBe('admitted');
    expect(await codeOf(STOP)).toBe('RATE_LIMITED');
    expect(await codeOf(SPAWN)).toBe('admitted');
  });
});
