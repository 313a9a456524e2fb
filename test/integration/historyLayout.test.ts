/**
 * The bucket layout of reading history, against the real store (FerretDB here, MongoDB in production):
 *  - parity: on random data, written in random batches, out of order and with re-sent duplicates, it
 *    returns the same pages as the first layout (one document per reading) and as a brute-force model;
 *  - aggregates equal a brute-force computation, across hour and day edges and after late readings;
 *  - a replay after a crash (the writer's memory lost) adds nothing;
 *  - a query costs its window: the lookups it sends do not grow with what is stored;
 *  - retention removes whole expired days and nothing else, even with two purges at once;
 *  - no bulk command ever carries more than 99 statements (FerretDB hangs at 100).
 */
import fc from 'fast-check';
import { MongoClient, type CommandStartedEvent, type Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reading } from '../../src/domain/reading.js';
import { DAY_MS, INTERVAL_MS, SLICE_MS, type StatsInterval } from '../../src/domain/readingBuckets.js';
import { ensureSqliteIdIndexes } from '../../src/store/ferretSqlite.js';
import { LEGACY_READINGS, legacyReadings, type LegacyReadings } from '../../src/store/legacyReadings.js';
import {
  BUCKETS,
  DAYS,
  MAX_STATEMENTS_PER_COMMAND,
  SENSORS,
  createReadingHistory,
  type ReadingHistory,
  type ReadingWindow,
} from '../../src/store/readingHistory.js';
import { ferretSqliteDir, uniqueName } from '../support/env.js';

let client: MongoClient;
let db: Db;
let history: ReadingHistory;
let legacy: LegacyReadings;
const commands: CommandStartedEvent[] = [];
const statements = (e: CommandStartedEvent): number => {
  const c = e.command as Record<string, unknown[] | undefined>;
  return (c.updates ?? c.deletes ?? c.documents ?? []).length;
};

beforeAll(async () => {
  client = new MongoClient('mongodb://127.0.0.1:27017', { monitorCommands: true, maxPoolSize: 20 });
  client.on('commandStarted', (e) => commands.push(e));
  await client.connect();
  db = client.db(uniqueName('layout').replace(/-/g, '_'));
  await ensureSqliteIdIndexes(db, ferretSqliteDir(), [BUCKETS, DAYS, SENSORS, LEGACY_READINGS]);
  history = createReadingHistory(db);
  legacy = legacyReadings(db);
});
afterAll(async () => {
  await db?.dropDatabase().catch(() => undefined);
  await client?.close();
});

/** The brute-force model: every reading once (first one wins), filtered and sorted by scanning all. */
class Model {
  readonly bySensor = new Map<string, Map<number, Reading>>();
  add(readings: readonly Reading[]): void {
    for (const r of readings) {
      let m = this.bySensor.get(r.sensorId);
      if (!m) this.bySensor.set(r.sensorId, (m = new Map<number, Reading>()));
      if (!m.has(r.ts.getTime())) m.set(r.ts.getTime(), r);
    }
  }
  window(sensorId: string, from?: Date, to?: Date): Reading[] {
    return [...(this.bySensor.get(sensorId)?.values() ?? [])]
      .filter((r) => (!from || r.ts >= from) && (!to || r.ts <= to))
      .sort((a, b) => b.ts.getTime() - a.ts.getTime());
  }
  stats(sensorId: string, from: Date, to: Date, every: StatsInterval) {
    const width = INTERVAL_MS[every];
    const start = Math.floor(from.getTime() / width) * width;
    const points = new Map<number, Reading[]>();
    for (const r of this.bySensor.get(sensorId)?.values() ?? []) {
      const p = Math.floor(r.ts.getTime() / width) * width;
      if (p < start || p > to.getTime()) continue;
      points.set(p, [...(points.get(p) ?? []), r]);
    }
    return [...points]
      .sort((a, b) => a[0] - b[0])
      .map(([p, rs]) => ({
        start: p,
        n: rs.length,
        tMin: Math.min(...rs.map((r) => r.temperature)),
        tMax: Math.max(...rs.map((r) => r.temperature)),
        tSum: rs.reduce((s, r) => s + r.temperature, 0),
        hMin: Math.min(...rs.map((r) => r.humidity)),
        hMax: Math.max(...rs.map((r) => r.humidity)),
        hSum: rs.reduce((s, r) => s + r.humidity, 0),
      }));
  }
}

async function allPages(
  read: (w: ReadingWindow) => Promise<{ items: Reading[]; hasNextPage: boolean }>,
  w: Omit<ReadingWindow, 'beforeTs'>,
): Promise<Reading[]> {
  const out: Reading[] = [];
  let beforeTs: Date | undefined;
  for (let guard = 0; guard < 10_000; guard++) {
    const page = await read({ ...w, beforeTs });
    out.push(...page.items);
    if (!page.hasNextPage) return out;
    beforeTs = page.items.at(-1)!.ts;
  }
  throw new Error('paging did not end');
}

const plain = (r: Reading) => ({
  sensorId: r.sensorId,
  ts: r.ts.toISOString(),
  t: r.temperature,
  h: r.humidity,
  lat: r.location.lat,
  lon: r.location.lon,
});

/** Random readings around some hour and day edges, shuffled, with re-sent duplicates, in random batches. */
const BASE = Date.UTC(2026, 10, 20, 22, 0, 0); // 22:00 UTC: the data crosses midnight
const datasetArb = (run: string) =>
  fc
    .record({
      readings: fc.array(
        fc.record({
          sensor: fc.integer({ min: 0, max: 2 }),
          // near an edge (hour start, or a millisecond before it) or anywhere in 30 hours
          ts: fc.oneof(
            fc
              .integer({ min: 0, max: 30 })
              .chain((h) => fc.constantFrom(h * SLICE_MS, h * SLICE_MS - 1, h * SLICE_MS + 1)),
            fc.integer({ min: 0, max: 30 * SLICE_MS }),
          ),
          temperature: fc.double({ min: -60, max: 200, noNaN: true, noDefaultInfinity: true }),
          humidity: fc.double({ min: 0, max: 100, noNaN: true, noDefaultInfinity: true }),
        }),
        { minLength: 30, maxLength: 600 },
      ),
      resend: fc.array(fc.nat(), { maxLength: 40 }),
      cuts: fc.array(fc.integer({ min: 1, max: 150 }), { minLength: 1, maxLength: 10 }),
    })
    .map(({ readings, resend, cuts }) => {
      const rs: Reading[] = readings.map((r) => ({
        sensorId: `${run}-${r.sensor}`,
        ts: new Date(BASE + r.ts),
        temperature: r.temperature,
        humidity: r.humidity,
        location: { lat: 48.1 + r.sensor, lon: 11.5 },
      }));
      // Re-sent readings are the same reading again (identical values), as after a producer retry.
      const all = [...rs, ...resend.map((i) => rs[i % rs.length]!)];
      const batches: Reading[][] = [];
      let at = 0;
      for (let k = 0; at < all.length; k++) {
        const size = cuts[k % cuts.length]!;
        batches.push(all.slice(at, at + size));
        at += size;
      }
      return { batches, sensors: [0, 1, 2].map((s) => `${run}-${s}`), stamps: rs.map((r) => r.ts.getTime()) };
    });

/** A window edge: none, an arbitrary instant, or exactly at (or a millisecond off) a stored reading. */
const edgeArb = fc.oneof(
  fc.constant(null),
  fc.record({ kind: fc.constant('at' as const), index: fc.nat(), shift: fc.constantFrom(-1, 0, 1) }),
  fc.record({ kind: fc.constant('free' as const), offset: fc.integer({ min: -SLICE_MS, max: 31 * SLICE_MS }) }),
);
function pickEdge(
  edge: { kind: 'at'; index: number; shift: number } | { kind: 'free'; offset: number } | null,
  stamps: number[],
): Date | undefined {
  if (edge === null) return undefined;
  if (edge.kind === 'free') return new Date(BASE + edge.offset);
  return new Date(stamps[edge.index % stamps.length]! + edge.shift);
}

describe('reading history in buckets', () => {
  it('returns the same pages as the first layout and the brute-force model, on random data', async () => {
    let runNo = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer().chain((seed) => datasetArb(`parity${runNo++}x${Math.abs(seed % 1000)}`)),
        fc.array(
          fc.record({
            sensor: fc.integer({ min: 0, max: 2 }),
            from: edgeArb,
            to: edgeArb,
            first: fc.integer({ min: 1, max: 60 }),
          }),
          { minLength: 3, maxLength: 6 },
        ),
        async ({ batches, sensors, stamps }, windows) => {
          const model = new Model();
          for (const batch of batches) {
            await history.insert(batch);
            await legacy.insert(batch);
            model.add(batch);
          }
          for (const w of windows) {
            let from = pickEdge(w.from, stamps);
            let to = pickEdge(w.to, stamps);
            if (from && to && from > to) [from, to] = [to, from];
            const query = { sensorId: sensors[w.sensor]!, from, to, first: w.first };
            const expected = model.window(query.sensorId, from, to).map(plain);
            const fromBuckets = (await allPages((q) => history.page(q), query)).map(plain);
            const fromLegacy = (await allPages((q) => legacy.page(q), query)).map(plain);
            expect(fromBuckets).toEqual(expected);
            expect(fromLegacy).toEqual(expected);
          }
          expect(await history.count(sensors)).toBe([...model.bySensor.values()].reduce((n, m) => n + m.size, 0));
        },
      ),
      { numRuns: 8, seed: 20261128 },
    );
  });

  it('computes MINUTE, HOUR and DAY aggregates equal to brute force, across edges, late readings and duplicates', async () => {
    let runNo = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer().chain((seed) => datasetArb(`stats${runNo++}x${Math.abs(seed % 1000)}`)),
        fc.constantFrom<StatsInterval>('MINUTE', 'HOUR', 'DAY'),
        fc.integer({ min: -2 * SLICE_MS, max: 20 * SLICE_MS }),
        fc.integer({ min: 0, max: 24 * SLICE_MS }),
        async ({ batches, sensors }, every, fromOffset, span) => {
          const model = new Model();
          // Written newest batch first: everything arrives late relative to what is stored.
          for (const batch of [...batches].reverse()) {
            await history.insert(batch);
            model.add(batch);
          }
          const from = new Date(BASE + fromOffset);
          let to = new Date(from.getTime() + (every === 'MINUTE' ? Math.min(span, 6 * SLICE_MS) : span));
          // Half the time the window ends exactly on an interval start: that interval is included.
          if (span % 2 === 0) to = new Date(Math.floor(to.getTime() / INTERVAL_MS[every]) * INTERVAL_MS[every]);
          for (const sensorId of sensors) {
            const got = await history.stats({ sensorId, from, to, every });
            const want = model.stats(sensorId, from, to, every);
            expect(got.map((p) => p.start.getTime())).toEqual(want.map((p) => p.start));
            got.forEach((p, i) => {
              const w = want[i]!;
              expect([p.summary.n, p.summary.tMin, p.summary.tMax, p.summary.hMin, p.summary.hMax]).toEqual([
                w.n,
                w.tMin,
                w.tMax,
                w.hMin,
                w.hMax,
              ]);
              expect(p.summary.tSum).toBeCloseTo(w.tSum, 6);
              expect(p.summary.hSum).toBeCloseTo(w.hSum, 6);
            });
          }
        },
      ),
      { numRuns: 16, seed: 1128 },
    );
  });

  it('puts a reading exactly on an hour boundary in that hour only', async () => {
    const sensorId = uniqueName('edge');
    const hour = Date.UTC(2026, 10, 25, 10);
    await history.insert([
      { sensorId, ts: new Date(hour), temperature: 30, humidity: 40, location: { lat: 1, lon: 2 } },
      { sensorId, ts: new Date(hour - 1), temperature: 10, humidity: 40, location: { lat: 1, lon: 2 } },
    ]);
    const stats = await history.stats({
      sensorId,
      from: new Date(hour - SLICE_MS),
      to: new Date(hour + SLICE_MS),
      every: 'HOUR',
    });
    expect(stats.map((p) => [p.start.getTime(), p.summary.n, p.summary.tMax])).toEqual([
      [hour - SLICE_MS, 1, 10],
      [hour, 1, 30],
    ]);
  });

  it('lands a reading that arrives days late in its own day and hour, and updates their summaries', async () => {
    const sensorId = uniqueName('late');
    const now = Date.UTC(2026, 10, 28, 12, 30);
    const r = (ts: number, temperature: number): Reading => ({
      sensorId,
      ts: new Date(ts),
      temperature,
      humidity: 50,
      location: { lat: 1, lon: 2 },
    });
    await history.insert([r(now, 20), r(now + 1000, 22)]);
    await history.insert([r(now - 3 * DAY_MS, 90)]);
    const days = await history.stats({ sensorId, from: new Date(now - 4 * DAY_MS), to: new Date(now), every: 'DAY' });
    expect(days.map((p) => [p.start.toISOString().slice(0, 10), p.summary.n, p.summary.tMax])).toEqual([
      ['2026-11-25', 1, 90],
      ['2026-11-28', 2, 22],
    ]);
    const page = await history.page({ sensorId, first: 10 });
    expect(page.items.map((x) => x.temperature)).toEqual([22, 20, 90]);
  });

  it('adds nothing when a batch is replayed after the writer lost its memory (a crash)', async () => {
    const sensorId = uniqueName('replay');
    const start = Date.UTC(2026, 10, 27, 5, 59);
    // 2,500 readings in one hour: three parts, so the replay crosses full and open parts.
    const batch: Reading[] = Array.from({ length: 2500 }, (_, i) => ({
      sensorId,
      ts: new Date(start + 60_000 + i * 100),
      temperature: 20 + (i % 7),
      humidity: 50,
      location: { lat: 1, lon: 2 },
    }));
    expect(await history.insert(batch)).toBe(2500);
    const before = await history.stats({
      sensorId,
      from: new Date(start),
      to: new Date(start + 2 * SLICE_MS),
      every: 'MINUTE',
    });
    history.forget();
    expect(await history.insert([...batch].reverse())).toBe(0);
    expect(await history.count([sensorId])).toBe(2500);
    expect(
      await history.stats({ sensorId, from: new Date(start), to: new Date(start + 2 * SLICE_MS), every: 'MINUTE' }),
    ).toEqual(before);
    const pages = await allPages((q) => history.page(q), { sensorId, first: 700 });
    expect(pages.map((x) => x.ts.getTime())).toEqual(batch.map((x) => x.ts.getTime()).reverse());
  });

  it('loses nothing when a sensor’s partition moves to another writer and back, each forgetting its cache at the move', async () => {
    const sensorId = uniqueName('moved');
    const start = Date.UTC(2026, 10, 27, 7, 0);
    const readings = (from: number): Reading[] =>
      Array.from({ length: 10 }, (_, i) => ({
        sensorId,
        ts: new Date(start + (from + i) * 1000),
        temperature: 20,
        humidity: 50,
        location: { lat: 1, lon: 2 },
      }));
    const other = createReadingHistory(db); // the replica the partition moves to
    expect(await history.insert(readings(0))).toBe(10);
    other.forget();
    expect(await other.insert(readings(10))).toBe(10);
    // Back to the first writer (the history consumer forgets at every rebalance): its cached part
    // would otherwise be written over the other's.
    history.forget();
    expect(await history.insert(readings(20))).toBe(10);
    expect(await history.count([sensorId])).toBe(30);
  });

  it('reads only what the window needs: the lookups of a one-hour query do not grow with stored days', async () => {
    const sensorId = uniqueName('cost');
    const end = Date.UTC(2026, 10, 28, 0, 0);
    const lookupsFor = async (w: ReadingWindow): Promise<number> => {
      const before = commands.length;
      await history.page(w);
      return commands.slice(before).filter((c) => c.commandName === 'find').length;
    };
    const day = (d: number): Reading[] =>
      Array.from({ length: 24 * 60 }, (_, i) => ({
        sensorId,
        ts: new Date(end - (d + 1) * DAY_MS + i * 60_000),
        temperature: 21,
        humidity: 40,
        location: { lat: 1, lon: 2 },
      }));
    await history.insert(day(0));
    const window = { sensorId, from: new Date(end - 5 * SLICE_MS), to: new Date(end - 4 * SLICE_MS), first: 100 };
    const small = await lookupsFor(window);
    for (let d = 1; d <= 6; d++) await history.insert(day(d));
    const large = await lookupsFor(window);
    expect(small).toBeGreaterThan(0);
    expect(large).toBe(small);
    // Every read of buckets and days is a bare `_id` lookup: the only filter FerretDB serves from an index.
    const finds = commands.filter(
      (c) =>
        c.commandName === 'find' &&
        (c.command.find === BUCKETS || c.command.find === DAYS || c.command.find === SENSORS),
    );
    expect(finds.length).toBeGreaterThan(100);
    for (const f of finds) expect(Object.keys(f.command.filter as object)).toEqual(['_id']);
  });

  it('removes expired days whole, and nothing newer, even when two purges run at once', async () => {
    const sensorId = uniqueName('retention');
    const now = Date.UTC(2026, 10, 28, 12);
    const at = (daysAgo: number, i: number): Reading => ({
      sensorId,
      ts: new Date(now - daysAgo * DAY_MS + i * 1000),
      temperature: 20,
      humidity: 40,
      location: { lat: 1, lon: 2 },
    });
    for (const daysAgo of [45, 40, 31, 29, 1])
      await history.insert(Array.from({ length: 50 }, (_, i) => at(daysAgo, i)));
    const other = createReadingHistory(db);
    const cutoff = new Date(now - 30 * DAY_MS);
    await Promise.all([history.purgeBefore(cutoff), other.purgeBefore(cutoff)]);
    expect(await history.count([sensorId])).toBe(100);
    const left = await history.stats({ sensorId, from: new Date(now - 50 * DAY_MS), to: new Date(now), every: 'DAY' });
    expect(left.map((p) => p.summary.n)).toEqual([50, 50]);
    expect((await allPages((q) => history.page(q), { sensorId, first: 1000 })).length).toBe(100);
    // The documents are gone, not only hidden.
    expect(await db.collection(BUCKETS).countDocuments({ sensorId })).toBe(2);
    expect(await db.collection(DAYS).countDocuments({ sensorId })).toBe(2);
    const again = await history.purgeBefore(cutoff);
    expect(again.days).toBe(0);
  });

  it(`never sends a bulk command of more than 99 statements (here at most ${MAX_STATEMENTS_PER_COMMAND})`, () => {
    const bulk = commands.filter((c) => c.commandName === 'update' || c.commandName === 'delete');
    expect(bulk.length).toBeGreaterThan(50);
    const largest = Math.max(...bulk.map(statements));
    expect(largest).toBeGreaterThan(1);
    expect(largest).toBeLessThanOrEqual(MAX_STATEMENTS_PER_COMMAND);
  });
});
