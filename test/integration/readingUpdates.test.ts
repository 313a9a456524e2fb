/**
 * readingUpdates on the real Kafka and Redis: readings consumed by the alert path of one replica
 * reach a subscriber on another (which consumes nothing itself), filtered by sensorIds and by a
 * credential's scope; with maxPerSecond a burst is conflated and the last update is the last
 * reading sent; a maxPerSecond out of range is refused.
 *
 * Live readings are at most once, and a partition that reached nobody is skipped for up to a second
 * (fanout/readingFanout.ts): each test first sends probe readings until its subscribers hear them,
 * so what it then checks is the steady state, not that warm-up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IngestReadingsDocument,
  PipelineRequestError,
  ReadingUpdatesDocument,
  createPipelineClient,
  type PipelineClient,
  type ReadingUpdatesSubscription,
} from '../../client/index.js';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

type Update = ReadingUpdatesSubscription['readingUpdates'];

const sensors = {
  first: uniqueName('live-a'),
  second: uniqueName('live-b'),
  other: uniqueName('live-c'),
  burst: uniqueName('live-burst'),
};
const viewerSecret = uniqueName('viewer-secret');
const env = isolatedEnv('live', { API_KEYS: `viewer:${viewerSecret}:${sensors.first}` });
/** Consumes (the alert path and history). */
let a: InProcessReplica;
/** Consumes nothing: every reading its subscribers get came through Redis from A. */
let b: InProcessReplica;
let viewer: PipelineClient;

beforeAll(async () => {
  a = await startReplica(env);
  b = await startReplica({ ...env, KAFKA_CONSUMERS: 'none' });
  viewer = createPipelineClient(b.app.url(), { retryAttempts: 0, credential: viewerSecret });
});
afterAll(async () => {
  await viewer?.dispose();
  await Promise.all([a?.stop(), b?.stop()]);
});

interface Collector {
  readonly updates: Update[];
  readonly errors: unknown[];
  of(sensorId: string): Update[];
  stop(): void;
}

function collect(client: PipelineClient, variables: { sensorIds?: string[]; maxPerSecond?: number } = {}): Collector {
  const updates: Update[] = [];
  const errors: unknown[] = [];
  const stop = client.subscribe(ReadingUpdatesDocument, variables, {
    next: (d) => updates.push(d.readingUpdates),
    error: (err) => errors.push(err),
  });
  return { updates, errors, of: (id) => updates.filter((u) => u.sensorId === id), stop };
}

/** Reading times: probes in the past, then each test's readings after them (a sensor only moves forward). */
let clock = Date.now() - 120_000;
const nextTs = (): string => new Date((clock += 10)).toISOString();

function readingOf(sensorId: string, temperature: number) {
  return { sensorId, ts: nextTs(), temperature, humidity: 40, location: { lat: 48.1, lon: 11.6 } };
}

/**
 * Sends probe readings of each sensor until every subscriber named for it has heard one, then
 * waits for the last probe sent to reach them: after that, nothing of the warm-up is on its way.
 */
async function warmUp(wanted: { sensorId: string; by: Collector[] }[]): Promise<void> {
  const last = new Map<string, string>();
  await eventually(
    async () => {
      const cold = wanted.filter(({ sensorId, by }) => by.some((c) => c.of(sensorId).length === 0));
      if (cold.length > 0) {
        const probes = cold.map(({ sensorId }) => readingOf(sensorId, 10));
        for (const p of probes) last.set(p.sensorId, p.ts);
        await a.client.request(IngestReadingsDocument, { readings: probes });
      }
      return cold.length;
    },
    (n) => n === 0,
    { intervalMs: 300, what: 'every subscriber hearing its sensors' },
  );
  await eventually(
    () => wanted.every(({ sensorId, by }) => by.every((c) => c.of(sensorId).at(-1)?.ts === last.get(sensorId))),
    (ok) => ok,
    { what: 'the last probes' },
  );
}

describe('readingUpdates', () => {
  it('delivers every reading consumed on another replica, of the sensors named only', async () => {
    expect(b.parts.consumer).toBeUndefined();
    const named = collect(b.client, { sensorIds: [sensors.first, sensors.second] });
    const everything = collect(b.client);
    await warmUp([
      { sensorId: sensors.first, by: [named, everything] },
      { sensorId: sensors.second, by: [named, everything] },
      { sensorId: sensors.other, by: [everything] },
    ]);
    const seen = named.updates.length;

    const sent = [sensors.first, sensors.second, sensors.other].flatMap((id, s) =>
      Array.from({ length: 10 }, (_, i) => readingOf(id, 20 + s * 10 + i / 10)),
    );
    await a.client.request(IngestReadingsDocument, { readings: sent });
    const lastOf = (id: string) => sent.filter((r) => r.sensorId === id).at(-1)!;
    await eventually(
      () =>
        [sensors.first, sensors.second].every((id) => named.of(id).at(-1)?.ts === lastOf(id).ts) &&
        everything.of(sensors.other).at(-1)?.ts === lastOf(sensors.other).ts,
      (ok) => ok,
      { what: 'the last reading of each sensor' },
    );

    const got = named.updates.slice(seen);
    for (const id of [sensors.first, sensors.second])
      expect(got.filter((u) => u.sensorId === id).map((u) => [u.ts, u.temperature, u.skipped])).toEqual(
        sent.filter((r) => r.sensorId === id).map((r) => [r.ts, r.temperature, 0]),
      );
    expect(named.of(sensors.other)).toEqual([]);
    expect(got[0]).toMatchObject({ humidity: 40, location: { lat: 48.1, lon: 11.6 } });
    expect([...named.errors, ...everything.errors]).toEqual([]);
    named.stop();
    everything.stop();
  });

  it('keeps a scoped credential to its sensors: without sensorIds they are its filter, others are refused', async () => {
    const mine = collect(viewer);
    const everything = collect(b.client);
    await warmUp([
      { sensorId: sensors.first, by: [mine, everything] },
      { sensorId: sensors.second, by: [everything] },
    ]);
    const sent = [readingOf(sensors.second, 30), readingOf(sensors.first, 31)];
    await a.client.request(IngestReadingsDocument, { readings: sent });
    await eventually(
      () =>
        mine.of(sensors.first).at(-1)?.ts === sent[1]!.ts && everything.of(sensors.second).at(-1)?.ts === sent[0]!.ts,
      (ok) => ok,
      { what: 'both readings' },
    );
    expect(mine.of(sensors.second)).toEqual([]);

    const theirs = collect(viewer, { sensorIds: [sensors.second] });
    await eventually(
      () => theirs.errors.length,
      (n) => n > 0,
      { what: 'the refusal' },
    );
    expect((theirs.errors[0] as PipelineRequestError).code).toBe('FORBIDDEN');
    mine.stop();
    everything.stop();
  });

  it('conflates a burst to maxPerSecond, the last update being the last reading sent', async () => {
    const slow = collect(b.client, { sensorIds: [sensors.burst], maxPerSecond: 1 });
    await warmUp([{ sensorId: sensors.burst, by: [slow] }]);
    const seen = slow.updates.length;

    const burst = Array.from({ length: 50 }, (_, i) => readingOf(sensors.burst, 40 + i / 10));
    await a.client.request(IngestReadingsDocument, { readings: burst });
    await eventually(
      () => slow.updates.at(-1)?.ts,
      (ts) => ts === burst.at(-1)!.ts,
      { what: 'the last reading of the burst' },
    );

    const got = slow.updates.slice(seen);
    expect(got.at(-1)!.temperature).toBe(burst.at(-1)!.temperature);
    expect(got.length).toBeLessThan(10);
    // Every reading of the burst was sent or counted as skipped, once.
    expect(got.reduce((n, u) => n + 1 + u.skipped, 0)).toBe(burst.length);
    expect(slow.errors).toEqual([]);
    slow.stop();
  });

  it('refuses a maxPerSecond outside 1..100 with BAD_USER_INPUT', async () => {
    for (const maxPerSecond of [0, 101]) {
      const refused = collect(b.client, { maxPerSecond });
      await eventually(
        () => refused.errors.length,
        (n) => n > 0,
        { what: `the refusal of ${maxPerSecond}` },
      );
      const err = refused.errors[0] as PipelineRequestError;
      expect(err.code).toBe('BAD_USER_INPUT');
      expect(err.errors[0]!.extensions?.field).toBe('maxPerSecond');
    }
  });
});
