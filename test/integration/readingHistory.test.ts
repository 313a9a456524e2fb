/**
 * (b) `readings` returns what was produced, newest first; paging with first/after has no gaps and
 * no duplicates; from/to bound the window; bad arguments get BAD_USER_INPUT naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IngestReadingsDocument,
  PipelineRequestError,
  ReadingHistoryDocument,
  ReadingStatsDocument,
  type ReadingHistoryQuery,
} from '../../client/index.js';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { startReplica, type InProcessReplica } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

let replica: InProcessReplica;
const sensorId = uniqueName('history');
const count = 157;
const start = Date.now() - 3600_000;
const produced = Array.from({ length: count }, (_, i) => ({
  sensorId,
  ts: new Date(start + i * 15_000).toISOString(),
  temperature: 20 + (i % 10),
  humidity: 50,
  location: { lat: 48.85, lon: 2.35 },
}));

async function allPages(pageSize: number, window: { from?: string; to?: string } = {}): Promise<string[]> {
  const seen: string[] = [];
  let after: string | null = null;
  for (;;) {
    const page: ReadingHistoryQuery = await replica.client.request(ReadingHistoryDocument, {
      sensorId,
      first: pageSize,
      after,
      ...window,
    });
    seen.push(...page.readings.edges.map((e) => e.node.ts));
    if (!page.readings.pageInfo.hasNextPage) return seen;
    after = page.readings.pageInfo.endCursor;
  }
}

beforeAll(async () => {
  replica = await startReplica(isolatedEnv('history'));
  // Sent in two requests, the second overlapping the first: duplicates must be absorbed.
  await replica.client.request(IngestReadingsDocument, { readings: produced.slice(0, 100) });
  await replica.client.request(IngestReadingsDocument, { readings: produced.slice(80) });
  await eventually(
    () => replica.parts.store.readings.count([sensorId]),
    (n) => n >= count,
    { what: 'all readings stored' },
  );
});
afterAll(async () => {
  await replica?.stop();
});

describe('readings history', () => {
  const newestFirst = produced.map((r) => r.ts).reverse();

  it('stores each produced reading exactly once, even when re-sent', async () => {
    expect(await replica.parts.store.readings.count([sensorId])).toBe(count);
  });

  it.each([1, 7, 50, 200])(
    'pages through everything with first=%i, newest first, without gaps or duplicates',
    async (pageSize) => {
      expect(await allPages(pageSize)).toEqual(newestFirst);
    },
  );

  it('returns the values that were produced', async () => {
    const page = await replica.client.request(ReadingHistoryDocument, { sensorId, first: 1 });
    const newest = produced.at(-1)!;
    expect(page.readings.edges[0]!.node).toEqual(newest);
  });

  it('bounds the window with from and to (inclusive)', async () => {
    const from = produced[20]!.ts;
    const to = produced[59]!.ts;
    expect(await allPages(9, { from, to })).toEqual(
      produced
        .slice(20, 60)
        .map((r) => r.ts)
        .reverse(),
    );
  });

  it('refuses bad arguments with BAD_USER_INPUT naming the field', async () => {
    const attempt = (vars: Record<string, unknown>) =>
      replica.client.request(ReadingHistoryDocument, { sensorId, ...vars }).then(
        () => undefined,
        (e: unknown) => e as PipelineRequestError,
      );
    const badCursor = await attempt({ after: 'not-a-cursor' });
    expect(badCursor?.code).toBe('BAD_USER_INPUT');
    expect(badCursor?.errors[0]?.extensions?.field).toBe('after');
    const badFirst = await attempt({ first: 0 });
    expect(badFirst?.errors[0]?.extensions?.field).toBe('first');
    const badWindow = await attempt({ from: produced[10]!.ts, to: produced[0]!.ts });
    expect(badWindow?.errors[0]?.extensions?.field).toBe('from');
  });

  it('summarises the readings per hour with readingStats, oldest first, from stored summaries', async () => {
    const { readingStats } = await replica.client.request(ReadingStatsDocument, {
      sensorId,
      from: new Date(start - 3600_000).toISOString(),
      to: new Date().toISOString(),
      every: 'HOUR',
    });
    expect(readingStats.reduce((n, p) => n + p.count, 0)).toBe(count);
    const starts = readingStats.map((p) => Date.parse(p.start));
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
    for (const p of readingStats) {
      const inHour = produced.filter((r) => Math.floor(Date.parse(r.ts) / 3600_000) * 3600_000 === Date.parse(p.start));
      expect(p.count).toBe(inHour.length);
      expect(p.temperature.min).toBe(Math.min(...inHour.map((r) => r.temperature)));
      expect(p.temperature.max).toBe(Math.max(...inHour.map((r) => r.temperature)));
      expect(p.temperature.avg).toBeCloseTo(inHour.reduce((t, r) => t + r.temperature, 0) / inHour.length, 9);
    }
  });

  it('refuses a readingStats window of more points than the limit with LIMIT_EXCEEDED', async () => {
    const error = await replica.client
      .request(ReadingStatsDocument, {
        sensorId,
        from: '2026-01-01T00:00:00Z',
        to: '2026-03-01T00:00:00Z',
        every: 'MINUTE',
      })
      .then(
        () => undefined,
        (e: unknown) => e as PipelineRequestError,
      );
    expect(error?.code).toBe('LIMIT_EXCEEDED');
    expect(error?.errors[0]?.extensions?.limit).toBe(1500);
  });
});
