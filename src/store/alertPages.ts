/**
 * The replay index of overheat alerts: what a resuming `overheatAlerts` subscriber reads.
 *
 * A subscriber far behind asks for "the alerts of partition P after offset X, up to the watermark".
 * On FerretDB/SQLite any filter but a bare `{_id}` decodes every stored alert, so answering that from
 * the `alerts` collection costs the whole history per page (28 alerts/s at 100k behind). Here every
 * read is by exact `_id`, like the reading buckets:
 *
 * - a **page** holds the alerts of one partition within `PAGE_SPAN` consecutive Kafka offsets,
 *   packed into one string field (FerretDB decodes a string at once, an array element by element);
 * - a **directory** lists which pages of `DIR_PAGES` consecutive ones exist, so a sparse stream is
 *   skipped a directory (262,144 offsets) at a time instead of a page at a time.
 *
 * Writes come from the one consumer that holds the partition (as for reading buckets; FerretDB 1.24
 * loses concurrent updates of one document, `$set` included, so there must be one writer). A page
 * is merged (an offset already stored keeps its first version, as in the `alerts` collection) and
 * replaced whole; the directory entry is written before its page, so a batch replayed after a crash
 * completes both. Both are written before the partition's watermark moves, and readers never read
 * past the watermark.
 *
 * The page a partition wrote last is kept as written, so its writer does not read it back before
 * the next batch's merge (a store round trip on the alert path). Being the one writer is what makes
 * that copy the stored page; it is dropped whenever that may no longer hold: when partitions may
 * have moved (forget(), at every consumer-group rebalance), when a write fails, when retention purges
 * the partition, and after WRITTEN_PAGE_TTL_MS unused. Any other page is read fresh.
 */
import { LRUCache } from 'lru-cache';
import { MongoServerError, type Collection, type Db } from 'mongodb';
import type { OverheatAlert, StreamPosition } from '../domain/alert.js';
import type { AlertCursor } from '../domain/alertCursor.js';
import { sharedReads } from './sharedReads.js';
import { createWriteGate, type WriteGate } from './writeGate.js';

const DUPLICATE_KEY = 11000;

export const ALERT_PAGES = 'alert_pages';
export const ALERT_PAGE_DIRS = 'alert_page_dirs';
/** Kafka offsets per page: at most 256 alerts, about 40 KB. */
export const PAGE_SPAN = 256;
/** Pages per directory entry. */
export const DIR_PAGES = 1024;
/** Complete pages kept parsed per process (at most about 256 alerts each). */
const COMPLETE_PAGES_CACHED = 2048;
/** A partition's last written page is trusted as stored for this long after its last use. */
const WRITTEN_PAGE_TTL_MS = 30_000;

interface PageDoc {
  _id: string;
  partition: number;
  page: number;
  /** JSON array of Packed items, ordered by offset. */
  alerts: string;
}

interface DirDoc {
  _id: string;
  partition: number;
  dir: number;
  /** Page numbers present, ascending, comma-separated. */
  pages: string;
}

/** One item as stored in a page: its offset and sensor first (what a read filters on), then the rest. */
export type Packed = [offset: number, sensorId: string, ...rest: unknown[]];

/** How a stream's items are packed into pages. */
export interface PageCodec<T> {
  pack(this: void, item: T): Packed;
  unpack(this: void, partition: number, packed: Packed): T;
}

export interface PageNames {
  readonly pages: string;
  readonly dirs: string;
  /** Where the build record and claim of ensureBuilt live. */
  readonly layout: string;
}

export const ALERT_PAGE_NAMES: PageNames = { pages: ALERT_PAGES, dirs: ALERT_PAGE_DIRS, layout: 'alert_pages_layout' };

const pageOf = (offset: number): number => Math.floor(offset / PAGE_SPAN);
const dirOf = (page: number): number => Math.floor(page / DIR_PAGES);
const idOf = (partition: number, n: number): string => `${partition}:${n}`;

/** How an alert is packed into a page (exported for the field test, test/unit/alertFields.test.ts). */
export const alertCodec: PageCodec<OverheatAlert> = {
  pack: (a) => [
    a.position.offset,
    a.sensorId,
    a.id,
    a.temperature,
    a.threshold,
    a.ts.getTime(),
    a.location.lat,
    a.location.lon,
    a.detectedAt.getTime(),
  ],
  unpack(partition, p) {
    const [offset, sensorId, id, temperature, threshold, tsMs, lat, lon, detectedAtMs] = p as [
      number,
      string,
      string,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    return {
      id,
      sensorId,
      temperature,
      threshold,
      ts: new Date(tsMs),
      location: { lat, lon },
      detectedAt: new Date(detectedAtMs),
      position: { partition, offset },
    };
  },
};

const parsePages = (text: string | undefined): number[] => (text ? text.split(',').map(Number) : []);

export interface PositionPages<T> {
  /** Adds alerts to their pages. Idempotent: an offset already present keeps what is stored. */
  write(items: readonly T[]): Promise<void>;
  /** Removes the items at these positions from their pages (an item written ahead that is not one). */
  remove(items: readonly T[]): Promise<void>;
  /** Partitions may have moved: the next write of every page reads it from the store first. */
  forget(): void;
  /**
   * Alerts of `partition` with `after < offset <= upTo` (all from the start when `after` is undefined),
   * of `sensorIds` when given, in offset order, at most `limit`.
   */
  read(
    partition: number,
    after: number | undefined,
    upTo: number,
    sensorIds: ReadonlySet<string> | undefined,
    limit: number,
  ): Promise<T[]>;
  /** Removes the pages (and directories) that hold only offsets at or below `upTo`. */
  purge(partition: number, upTo: number): Promise<void>;
  /** Whether the pages were built for the alerts already stored (see ensureBuilt). */
  isBuilt(): Promise<boolean>;
  /**
   * For a store older than the pages: builds them once from every stored alert, then records it.
   * Replicas starting together elect one builder (an insert-only claim); the others wait for its
   * record. A claim older than `staleClaimMs` (a builder that died) is taken over. Returns the
   * alerts this call wrote into pages (0 when built already or by another replica).
   */
  ensureBuilt(all: () => AsyncIterable<T>, staleClaimMs?: number): Promise<number>;
}

export type AlertPages = PositionPages<OverheatAlert>;

export function createAlertPages(db: Db, gate: WriteGate = createWriteGate()): AlertPages {
  return createPositionPages(db, ALERT_PAGE_NAMES, alertCodec, gate);
}

/** Pages of any stream whose items sit at stream positions (alerts, incident updates). */
export function createPositionPages<T extends { readonly position: StreamPosition }>(
  db: Db,
  names: PageNames,
  codec: PageCodec<T>,
  /** The process's write gate (store/writeGate.ts). */
  gate: WriteGate = createWriteGate(),
): PositionPages<T> {
  const { pack, unpack } = codec;
  const pages: Collection<PageDoc> = db.collection(names.pages);
  const dirs: Collection<DirDoc> = db.collection(names.dirs);
  const layout: Collection<{ _id: string; at: Date }> = db.collection(names.layout);
  /** Pages this process knows are listed in their directory; entries are only ever added. */
  const listed = new Set<string>();
  // Replays read pages by `_id`; many subscriptions replaying together read the same ones.
  const readDir = sharedReads((_id) => dirs.findOne({ _id }));
  const readPage = sharedReads((_id) => pages.findOne({ _id }));
  /**
   * Pages whose every offset is at or below a watermark, parsed: nothing is written to them any more
   * (a page gains or loses alerts only before the watermark passes them), so one read serves every
   * subscription of this process that replays through them. Without it a subscription that replays
   * after minutes read every page since (after a rebalance in a storm: subscribers naming 10 sensors
   * waited 16 s where the others waited 1.5 s). Dropped for a partition that retention purges.
   */
  const completePages = new LRUCache<string, Packed[]>({ max: COMPLETE_PAGES_CACHED });
  const readPacked = async (partition: number, page: number, upTo: number): Promise<Packed[] | undefined> => {
    const _id = idOf(partition, page);
    const cached = completePages.get(_id);
    if (cached) return cached;
    const doc = await readPage(_id);
    if (!doc) return undefined;
    const packed = JSON.parse(doc.alerts) as Packed[];
    if ((page + 1) * PAGE_SPAN - 1 <= upTo) completePages.set(_id, packed);
    return packed;
  };

  async function ensureListed(partition: number, page: number): Promise<void> {
    const key = idOf(partition, page);
    if (listed.has(key)) return;
    const dir = dirOf(page);
    const _id = idOf(partition, dir);
    const present = parsePages((await dirs.findOne({ _id }))?.pages);
    if (!present.includes(page)) {
      present.push(page);
      present.sort((a, b) => a - b);
      await gate(() => dirs.replaceOne({ _id }, { partition, dir, pages: present.join(',') }, { upsert: true }));
    }
    for (const p of present) listed.add(idOf(partition, p));
  }

  /** Each partition's last written page, as stored (see the header). */
  const written = new Map<number, { page: number; alerts: string; at: number }>();
  /** Moves at every forget(): a write that began before it does not fill the cache after it. */
  let generation = 0;

  /** Adds `add` to a page (an offset already there keeps what is stored), or removes the offsets in `drop`. */
  async function writePage(
    partition: number,
    page: number,
    change: { add: readonly T[] } | { drop: ReadonlySet<number> },
  ): Promise<void> {
    const _id = idOf(partition, page);
    const startedIn = generation;
    const known = written.get(partition);
    const stored =
      known && known.page === page && Date.now() - known.at < WRITTEN_PAGE_TTL_MS
        ? known.alerts
        : (await pages.findOne({ _id }))?.alerts;
    if (stored === undefined && 'drop' in change) return; // nothing there to remove
    if (stored === undefined) await ensureListed(partition, page);
    const byOffset = new Map<number, Packed>();
    let changed = stored === undefined;
    if ('add' in change) {
      for (const a of change.add) if (!byOffset.has(a.position.offset)) byOffset.set(a.position.offset, pack(a));
      let added = byOffset.size;
      for (const p of stored === undefined ? [] : (JSON.parse(stored) as Packed[])) {
        if (byOffset.has(p[0])) added--;
        byOffset.set(p[0], p);
      }
      changed ||= added > 0;
    } else {
      for (const p of JSON.parse(stored!) as Packed[]) {
        if (change.drop.has(p[0])) changed = true;
        else byOffset.set(p[0], p);
      }
    }
    let alerts = stored;
    if (changed) {
      alerts = JSON.stringify([...byOffset.values()].sort((a, b) => a[0] - b[0]));
      written.delete(partition); // until this write is known to have landed
      const text = alerts;
      await gate(() => pages.replaceOne({ _id }, { partition, page, alerts: text }, { upsert: true }));
    }
    if (generation === startedIn) written.set(partition, { page, alerts: alerts!, at: Date.now() });
  }

  /** Items by the page they belong to. */
  const byPage = (items: readonly T[]): { partition: number; page: number; items: T[] }[] => {
    const groups = new Map<string, { partition: number; page: number; items: T[] }>();
    for (const a of items) {
      const page = pageOf(a.position.offset);
      const key = idOf(a.position.partition, page);
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { partition: a.position.partition, page, items: [] }));
      g.items.push(a);
    }
    return [...groups.values()];
  };

  return {
    async write(alerts) {
      for (const g of byPage(alerts)) await writePage(g.partition, g.page, { add: g.items });
    },

    async remove(items) {
      for (const g of byPage(items))
        await writePage(g.partition, g.page, { drop: new Set(g.items.map((a) => a.position.offset)) });
    },

    forget() {
      generation++;
      written.clear();
    },

    async read(partition, after, upTo, sensorIds, limit) {
      const out: T[] = [];
      const from = after === undefined ? 0 : after + 1;
      if (from > upTo || limit <= 0) return out;
      const firstPage = pageOf(from);
      const lastPage = pageOf(upTo);
      for (let dir = dirOf(firstPage); dir <= dirOf(lastPage); dir++) {
        const present = parsePages((await readDir(idOf(partition, dir)))?.pages);
        for (const page of present) {
          if (page < firstPage || page > lastPage) continue;
          const packed = await readPacked(partition, page, upTo);
          if (!packed) continue;
          for (const p of packed) {
            if (p[0] < from || p[0] > upTo) continue;
            if (sensorIds && !sensorIds.has(p[1])) continue;
            out.push(unpack(partition, p));
            if (out.length >= limit) return out;
          }
        }
      }
      return out;
    },

    async purge(partition, upTo) {
      written.delete(partition);
      for (const key of [...completePages.keys()]) if (key.startsWith(`${partition}:`)) completePages.delete(key);
      const lastWholePage = pageOf(upTo + 1) - 1;
      if (lastWholePage < 0) return;
      await pages.deleteMany({ partition, page: { $lte: lastWholePage } });
      const lastWholeDir = dirOf(lastWholePage + 1) - 1;
      if (lastWholeDir >= 0) await dirs.deleteMany({ partition, dir: { $lte: lastWholeDir } });
    },

    async isBuilt() {
      return (await layout.findOne({ _id: 'pages' })) !== null;
    },

    async ensureBuilt(all, staleClaimMs = 10 * 60_000) {
      const isDuplicate = (err: unknown): boolean => err instanceof MongoServerError && err.code === DUPLICATE_KEY;
      for (;;) {
        if (await this.isBuilt()) return 0;
        const claimed = await layout.insertOne({ _id: 'building', at: new Date() }).then(
          () => true,
          (err: unknown) => {
            if (isDuplicate(err)) return false;
            throw err;
          },
        );
        if (!claimed) {
          const claim = await layout.findOne({ _id: 'building' });
          if (claim && Date.now() - claim.at.getTime() > staleClaimMs) await layout.deleteOne({ _id: 'building' });
          else await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        let count = 0;
        let chunk: T[] = [];
        for await (const a of all()) {
          chunk.push(a);
          if (chunk.length >= 1000) {
            await this.write(chunk);
            count += chunk.length;
            chunk = [];
          }
        }
        await this.write(chunk);
        count += chunk.length;
        await layout.insertOne({ _id: 'pages', at: new Date() }).catch((err: unknown) => {
          if (!isDuplicate(err)) throw err;
        });
        await layout.deleteOne({ _id: 'building' });
        return count;
      }
    },
  };
}

/**
 * The first `limit` items after `cursor` and at or before `watermarks`, ordered by partition then
 * offset: what a feed's replay reads (see fanout/alertFeed.ts).
 */
export async function itemsBetween<T>(
  pages: PositionPages<T>,
  cursor: AlertCursor,
  watermarks: ReadonlyMap<number, number>,
  sensorIds: ReadonlySet<string> | undefined,
  limit: number,
): Promise<T[]> {
  const seen = cursor.entries();
  const filter = sensorIds && sensorIds.size > 0 ? sensorIds : undefined;
  const out: T[] = [];
  for (const [partition, upTo] of [...watermarks].sort((a, b) => a[0] - b[0])) {
    if (out.length >= limit) break;
    out.push(...(await pages.read(partition, seen.get(partition), upTo, filter, limit - out.length)));
  }
  return out;
}
