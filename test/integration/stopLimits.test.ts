/**
 * Stops are never blocked by the mutation rate limit: a replica with the Redis-backed limiter, an
 * admin who starts sensors until the mutation limit refuses the next start, then stops every one of
 * them, one call per sensor, and finally everything at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolatedEnv } from '../support/env.js';
import { codesOf, postGraphQL } from '../support/graphqlCalls.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';

const STARTS = 33;
const env = isolatedEnv('stop-limits', {
  // The mutation limit is reached by the starts; stops keep the default bucket of their own.
  RATE_LIMIT_MUTATIONS: `${STARTS}/1m`,
  RATE_LIMIT_STOPS: '',
});
let replica: InProcessReplica;

const call = (query: string) => postGraphQL(replica.app.url(), { query });

beforeAll(async () => {
  replica = await startReplica(env);
});
afterAll(async () => {
  await replica?.stop();
});

describe('stopping sensors after the mutation limit is reached', () => {
  it('stops each sensor an admin started, though every other mutation is RATE_LIMITED', async () => {
    const ids: string[] = [];
    for (let i = 0; i < STARTS; i++) {
      const out = await call('mutation { spawnSensors(input: { count: 1, intervalMs: 60000 }) { sensors { id } } }');
      expect(codesOf(out)).toEqual([]);
      ids.push(...(out.data!.spawnSensors as { sensors: { id: string }[] }).sensors.map((s) => s.id));
    }
    const refused = await call('mutation { spawnSensors(input: { count: 1, intervalMs: 60000 }) { sensors { id } } }');
    expect(refused.status).toBe(429);
    expect(codesOf(refused)).toEqual(['RATE_LIMITED']);
    expect(refused.errors![0]!.extensions).toMatchObject({ bucket: 'mutations', limit: STARTS });
    expect(
      codesOf(await call(`mutation { setThreshold(sensorIds: ["${ids[0]}"], thresholdC: 90) { sensorId } }`)),
    ).toEqual(['RATE_LIMITED']);

    for (const id of ids) {
      const out = await call(`mutation { stopSensors(ids: ["${id}"]) }`);
      expect(codesOf(out), id).toEqual([]);
      expect(out.data!.stopSensors, id).toBe(1);
    }
    const running = await call(`{ sensors(status: RUNNING, first: 100) { nodes { id } } }`);
    expect((running.data!.sensors as { nodes: unknown[] }).nodes).toEqual([]);
    // Stopping everything (admin only) is a stop too: still admitted, with nothing left to stop.
    const all = await call('mutation { stopSensors }');
    expect(codesOf(all)).toEqual([]);
    expect(all.data!.stopSensors).toBe(0);
  });
});
