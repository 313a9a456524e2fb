/**
 * The alert replay pages (store/alertPages.ts), against the real store:
 *  - on random alerts, written in random batches with re-sent duplicates, any range read returns
 *    what a brute-force scan returns, with the first stored version of each offset;
 *  - every lookup is by exact `_id`, and a read costs the pages that hold alerts, not the offsets
 *    it spans: a stream with sparse alerts is crossed a directory at a time;
 *  - the writer does not read back the page it wrote last, until partitions may have moved;
 *  - retention removes whole pages only; what is after the purge point reads the same;
 *  - pages built from an older store's alerts equal pages written live.
 */
import fc from 'fast-check';
import { MongoClient, type CommandStartedEvent, type Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OverheatAlert } from '../../src/domain/alert.js';
import {
  ALERT_PAGES,
  ALERT_PAGE_DIRS,
  DIR_PAGES,
  PAGE_SPAN,
  createAlertPages,
  type AlertPages,
} from '../../src/store/alertPages.js';
import { ensureSqliteIdIndexes } from '../../src/store/ferretSqlite.js';
import { ferretSqliteDir, uniqueName } from '../support/env.js';

let client: MongoClient;
const commands: CommandStartedEvent[] = [];
/** Reads of the replay pages in `db` since the `from`-th command. */
const pageFindsSince = (db: Db, from: number): number =>
  commands
    .slice(from)
    .filter(
      (c) =>
        c.commandName === 'find' &&
        c.databaseName === db.databaseName &&
        (c.command as { find?: string }).find === ALERT_PAGES,
    ).length;
const databases: Db[] = [];

async function freshPages(): Promise<{ pages: AlertPages; db: Db }> {
  const db = client.db(uniqueName('alertpages').replace(/-/g, '_'));
  databases.push(db);
  await ensureSqliteIdIndexes(db, ferretSqliteDir(), [ALERT_PAGES, ALERT_PAGE_DIRS]);
  return { pages: createAlertPages(db), db };
}

beforeAll(async () => {
  client = new MongoClient('mongodb://127.0.0.1:27017', { monitorCommands: true, maxPoolSize: 20 });
  client.on('commandStarted', (e) => commands.push(e));
  await client.connect();
});
afterAll(async () => {
  for (const db of databases) await db.dropDatabase().catch(() => undefined);
  await client?.close();
});

const SENSORS = ['s-a', 's-b', 's-c', 's-d'];

function alertAt(partition: number, offset: number, sensorId: string, detectedAtMs: number): OverheatAlert {
  const ts = new Date(1_700_000_000_000 + offset * 1000);
  return {
    id: `${sensorId}@${ts.getTime()}`,
    sensorId,
    temperature: 80 + (offset % 40) / 4,
    threshold: 80,
    ts,
    location: { lat: 48.8 + partition / 100, lon: 2.3 - (offset % 7) / 100 },
    detectedAt: new Date(detectedAtMs),
    position: { partition, offset },
  };
}

/** First version of each (partition, offset) wins, as in the store. */
class Model {
  readonly byPosition = new Map<string, OverheatAlert>();
  add(alerts: readonly OverheatAlert[]): void {
    for (const a of alerts) {
      const key = `${a.position.partition}:${a.position.offset}`;
      if (!this.byPosition.has(key)) this.byPosition.set(key, a);
    }
  }
  read(
    partition: number,
    after: number | undefined,
    upTo: number,
    sensorIds: ReadonlySet<string> | undefined,
    limit: number,
  ): OverheatAlert[] {
    return [...this.byPosition.values()]
      .filter((a) => a.position.partition === partition)
      .filter((a) => (after === undefined || a.position.offset > after) && a.position.offset <= upTo)
      .filter((a) => !sensorIds || sensorIds.has(a.sensorId))
      .sort((x, y) => x.position.offset - y.position.offset)
      .slice(0, limit);
  }
}

const alertArb = fc.record({
  partition: fc.integer({ min: 0, max: 2 }),
  // Clustered offsets (many per page) plus far ones (other directories).
  offset: fc.oneof(fc.integer({ min: 0, max: 3 * PAGE_SPAN }), fc.integer({ min: 0, max: 3 * DIR_PAGES * PAGE_SPAN })),
  sensor: fc.constantFrom(...SENSORS),
});

describe('alert replay pages', () => {
  it('return exactly what a scan of every alert returns, for any range, filter and limit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(alertArb, { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 8 }),
        fc.array(
          fc.record({
            partition: fc.integer({ min: 0, max: 2 }),
            after: fc.option(fc.integer({ min: 0, max: 3 * DIR_PAGES * PAGE_SPAN }), { nil: undefined }),
            span: fc.integer({ min: 0, max: 3 * DIR_PAGES * PAGE_SPAN }),
            sensors: fc.option(fc.subarray(SENSORS, { minLength: 1 }), { nil: undefined }),
            limit: fc.integer({ min: 1, max: 60 }),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        async (batches, reads) => {
          const { pages } = await freshPages();
          const model = new Model();
          let clock = 1;
          for (const batch of batches) {
            const alerts = batch.map((b) => alertAt(b.partition, b.offset, b.sensor, clock++));
            // Re-sent, detected later, together with one new alert: the first version must stay.
            const resent = [
              ...alerts.slice(0, Math.ceil(alerts.length / 3)).map((a) => ({ ...a, detectedAt: new Date(clock++) })),
              alertAt(batch[0]!.partition, batch[0]!.offset + 1, batch[0]!.sensor, clock++),
            ];
            for (const chunk of [alerts, resent]) {
              await pages.write(chunk);
              model.add(chunk);
            }
          }
          for (const r of reads) {
            const upTo = (r.after ?? 0) + r.span;
            const sensorIds = r.sensors ? new Set(r.sensors) : undefined;
            const got = await pages.read(r.partition, r.after, upTo, sensorIds, r.limit);
            expect(got).toEqual(model.read(r.partition, r.after, upTo, sensorIds, r.limit));
          }
        },
      ),
      { numRuns: 12 },
    );
  });

  it('looks up by exact _id only, and crosses empty offsets a directory at a time', async () => {
    const { pages, db } = await freshPages();
    // Sparse: one alert every 10,000 offsets over 2 million offsets (8 directories, 200 pages).
    const sparse = Array.from({ length: 200 }, (_, i) => alertAt(1, i * 10_000, SENSORS[i % 4]!, i));
    for (let i = 0; i < sparse.length; i += 50) await pages.write(sparse.slice(i, i + 50));

    const before = commands.length;
    const got = await pages.read(1, undefined, 2_000_000, new Set(['s-a']), 1000);
    const finds = commands.slice(before).filter((c) => c.commandName === 'find' && c.databaseName === db.databaseName);
    expect(got.map((a) => a.position.offset)).toEqual(
      sparse.filter((_, i) => i % 4 === 0).map((a) => a.position.offset),
    );
    for (const f of finds) expect(Object.keys((f.command as { filter: object }).filter)).toEqual(['_id']);
    const directories = Math.ceil(2_000_000 / (DIR_PAGES * PAGE_SPAN));
    // One lookup per directory and per page holding alerts; a page-by-page walk would be 7,813.
    expect(finds.length).toBeLessThanOrEqual(directories + sparse.length);
  });

  it('reads a page below the watermark once per process, however many replays go through it', async () => {
    const { pages, db } = await freshPages();
    // Three pages of 4 alerts each; the watermark covers the first two whole and part of the third.
    const stored = Array.from({ length: 12 }, (_, i) =>
      alertAt(3, Math.floor(i / 4) * PAGE_SPAN + i, SENSORS[i % 4]!, i),
    );
    await pages.write(stored);
    const watermark = 2 * PAGE_SPAN + 100;
    const pageFinds = (from: number): number => pageFindsSince(db, from);
    let before = commands.length;
    const first = await pages.read(3, undefined, watermark, undefined, 1000);
    expect(pageFinds(before)).toBe(3);
    // A second subscription replaying, with another filter: only the page the watermark is within is read again.
    before = commands.length;
    const again = await pages.read(3, undefined, watermark, new Set([SENSORS[0]!]), 1000);
    expect(pageFinds(before)).toBe(1);
    expect(again.map((a) => a.id)).toEqual(first.filter((a) => a.sensorId === SENSORS[0]).map((a) => a.id));
    // Retention drops what it purged: read again from the store.
    await pages.purge(3, PAGE_SPAN - 1);
    before = commands.length;
    expect((await pages.read(3, undefined, watermark, undefined, 1000)).length).toBe(8);
    // The purged page (still listed in its directory, and gone), the next one, and the one the watermark is within.
    expect(pageFinds(before)).toBe(3);
  });

  it('does not read back the page its writer wrote last, and reads it again once partitions may have moved', async () => {
    const { pages, db } = await freshPages();
    const pageFinds = (from: number): number => pageFindsSince(db, from);
    await pages.write([alertAt(2, 0, 's-a', 0), alertAt(2, 1, 's-b', 1)]);
    let before = commands.length;
    await pages.write([alertAt(2, 2, 's-c', 2)]);
    expect(pageFinds(before)).toBe(0);

    // Meanwhile another replica held the partition for a while and wrote offset 3 into the same page.
    await createAlertPages(db).write([alertAt(2, 3, 's-d', 3)]);
    // This replica is told at the rebalance that took the partition back: it reads the page first.
    pages.forget();
    before = commands.length;
    await pages.write([alertAt(2, 4, 's-a', 4)]);
    expect(pageFinds(before)).toBe(1);
    expect((await pages.read(2, undefined, 10, undefined, 100)).map((a) => a.position.offset)).toEqual([0, 1, 2, 3, 4]);
  });

  it('replicas starting together elect one builder: the pages hold every alert once', async () => {
    const { db } = await freshPages();
    const alerts = Array.from({ length: 1500 }, (_, i) => alertAt(i % 3, i * 5, SENSORS[i % 4]!, i));
    const source = async function* (): AsyncIterable<OverheatAlert> {
      yield* alerts;
    };
    const replicas = [createAlertPages(db), createAlertPages(db), createAlertPages(db)];
    const written = await Promise.all(replicas.map((r) => r.ensureBuilt(source)));
    expect(written.filter((n) => n > 0)).toEqual([alerts.length]);
    for (const partition of [0, 1, 2]) {
      expect(await replicas[1]!.read(partition, undefined, 10_000, undefined, 10_000)).toEqual(
        alerts.filter((a) => a.position.partition === partition),
      );
    }
  });

  it('a claim left by a builder that died is taken over', async () => {
    const { db, pages } = await freshPages();
    await db
      .collection('alert_pages_layout')
      .insertOne({ _id: 'building' as never, at: new Date(Date.now() - 60_000) });
    const alerts = [alertAt(0, 7, 's-a', 1)];
    expect(
      await pages.ensureBuilt(async function* () {
        yield* alerts;
      }, 30_000),
    ).toBe(1);
    expect(await pages.isBuilt()).toBe(true);
  });

  it('purge removes whole pages at or below the point, and leaves later alerts readable', async () => {
    const { pages, db } = await freshPages();
    const alerts = Array.from({ length: 600 }, (_, i) => alertAt(0, i * 3, 's-a', i));
    await pages.write(alerts);
    const point = 1000;
    await pages.purge(0, point);
    const remaining = await pages.read(0, point, 1800, undefined, 1000);
    expect(remaining).toEqual(alerts.filter((a) => a.position.offset > point));
    const kept = await db.collection(ALERT_PAGES).find({}).project({ page: 1 }).toArray();
    expect(kept.map((d) => d.page as number).sort((a, b) => a - b)).toEqual([3, 4, 5, 6, 7]);
  });

  it('pages built from stored alerts equal pages written live, and the build is recorded', async () => {
    const live = await freshPages();
    const rebuilt = await freshPages();
    const alerts = Array.from({ length: 2500 }, (_, i) => alertAt(i % 3, i * 7, SENSORS[i % 4]!, i));
    for (let i = 0; i < alerts.length; i += 100) await live.pages.write(alerts.slice(i, i + 100));
    expect(await rebuilt.pages.isBuilt()).toBe(false);
    const count = await rebuilt.pages.ensureBuilt(async function* () {
      yield* alerts;
    });
    expect(count).toBe(alerts.length);
    expect(await rebuilt.pages.isBuilt()).toBe(true);
    expect(
      await rebuilt.pages.ensureBuilt(async function* () {
        yield* alerts;
      }),
    ).toBe(0);
    for (const partition of [0, 1, 2]) {
      expect(await rebuilt.pages.read(partition, undefined, 20_000, undefined, 10_000)).toEqual(
        await live.pages.read(partition, undefined, 20_000, undefined, 10_000),
      );
    }
  });
});
