/**
 * Reading history in the bucket layout (see domain/readingBuckets.ts and the README's "Storage
 * layout"). Every read and write addresses documents by exact `_id`: on MongoDB that is the
 * clustered `_id` index; on FerretDB/SQLite it is the one filter shape pushed down to SQL. A query
 * therefore costs the window it reads, never the size of the collection.
 *
 * Writes are owned by one writer per sensor (the consumer that holds the sensor's Kafka partition).
 * The writer keeps the open part of each recent hour in memory and rewrites whole documents with
 * `replaceOne`, so a replayed batch leaves the same documents behind: a reading already present
 * (same sensor and millisecond) is skipped, and every summary is recomputed from the stored readings,
 * never incremented. Order of a write: bucket parts, then day documents (directory and summaries),
 * then the sensor's time range. Readers walk that chain backwards, so they never see a summary or a
 * directory entry whose readings are not stored yet... except across the few milliseconds of one
 * write, where a new hour becomes visible only once its day document is written.
 * If a write fails, the cached state of what it touched is dropped and reloaded from the store.
 */
import { LRUCache } from 'lru-cache';
import pLimit from 'p-limit';
import { Binary, type AnyBulkWriteOperation, type Collection, type Db, type Document, type Filter } from 'mongodb';
import type { Reading } from '../domain/reading.js';
import { NO_PRIORITY, type StorePriority } from './storePriority.js';
import { COMMAND_DEADLINE_MS, withDeadline } from './commandDeadline.js';
import {
  DAY_MS,
  INTERVAL_MS,
  PART_CAPACITY,
  PartColumns,
  SLICE_MS,
  dayId,
  dayStart,
  decodeColumns,
  decodeSummaryTable,
  emptySummary,
  encodeColumns,
  encodeSummaryTable,
  floorTo,
  mergeSummary,
  partId,
  sliceStart,
  sortedHas,
  type StatsInterval,
  type Summary,
  type SummaryEntry,
} from '../domain/readingBuckets.js';

/**
 * Statements per bulk command, one command in flight per process. FerretDB 1.24 hangs a database for
 * good when the statements that match existing documents in flight reach its pool size (100), so
 * three replicas writing at once must stay below it. MongoDB does not care.
 */
export const MAX_STATEMENTS_PER_COMMAND = 25;

/** Documents looked up by `_id` at once by one read or write. */
const LOOKUPS_AT_ONCE = 8;

export const BUCKETS = 'reading_buckets';
export const DAYS = 'reading_days';
export const SENSORS = 'reading_sensors';

export interface ReadingWindow {
  sensorId: string;
  from?: Date | undefined;
  to?: Date | undefined;
  first: number;
  /** Exclusive upper bound from a previous page (newest first). */
  beforeTs?: Date | undefined;
}

export interface ReadingPage {
  items: Reading[];
  hasNextPage: boolean;
}

export interface StatsQuery {
  sensorId: string;
  from: Date;
  to: Date;
  every: StatsInterval;
}

export interface StatsPoint {
  start: Date;
  summary: Summary;
}

export interface PurgeResult {
  sensors: number;
  days: number;
  buckets: number;
}

export interface ReadingHistory {
  /**
   * Stores readings; one already stored (same sensor and millisecond) is skipped. Returns how many
   * were new. `spreadMs`: the write's commands start evenly over about this long instead of back to
   * back, so the store is not busy in bursts (never slower than the store itself).
   */
  insert(readings: readonly Reading[], options?: { spreadMs?: number }): Promise<number>;
  page(window: ReadingWindow): Promise<ReadingPage>;
  /** Summaries per interval, oldest first, empty intervals left out. */
  stats(query: StatsQuery): Promise<StatsPoint[]>;
  /** Readings stored for these sensors. */
  count(sensorIds: readonly string[]): Promise<number>;
  /** Removes every day (buckets, then the day document) that ends at or before `cutoff`. Idempotent. */
  purgeBefore(cutoff: Date): Promise<PurgeResult>;
  /** Drops the writer's cached state (tests, after retention, and when the history consumer's partitions may have moved). */
  forget(): void;
}

interface PartDoc {
  _id: string;
  sensorId: string;
  start: Date;
  part: number;
  n: number;
  first: Date;
  last: Date;
  temperature: { min: number; max: number; sum: number };
  humidity: { min: number; max: number; sum: number };
  /** Columns, see encodeColumns. */
  r: Binary;
  /** Per-minute summaries (key = minute of the hour). */
  minutes: Binary;
}

interface DayDoc {
  _id: string;
  sensorId: string;
  day: Date;
  n: number;
  /** Per-hour summaries (key = hour of the day, extra = parts of that hour's bucket). */
  hours: Binary;
}

/** The days a sensor has readings in: `first` is the start of its oldest day, `last` the end of its newest. */
interface SensorRangeDoc {
  _id: string;
  first: Date;
  last: Date;
}

/** What the writer knows of one sensor-hour: offsets of full parts, and the open part whole. */
interface SliceState {
  closed: { offsets: Uint32Array; summary: Summary }[];
  open: PartColumns;
}

interface DayState {
  hours: Map<number, { parts: number; summary: Summary }>;
}

const bytesOf = (b: Binary): Uint8Array => b.buffer;

function toPartDoc(sensorId: string, sliceMs: number, part: number, c: PartColumns): PartDoc {
  const s = c.summary();
  const minutes: SummaryEntry[] = [...c.minuteSummaries()].map(([key, summary]) => ({ key, extra: 0, summary }));
  return {
    _id: partId(sensorId, sliceMs, part),
    sensorId,
    start: new Date(sliceMs),
    part,
    n: c.length,
    first: new Date(sliceMs + c.offsets[0]!),
    last: new Date(sliceMs + c.offsets[c.length - 1]!),
    temperature: { min: s.tMin, max: s.tMax, sum: s.tSum },
    humidity: { min: s.hMin, max: s.hMax, sum: s.hSum },
    r: new Binary(encodeColumns(c)),
    minutes: new Binary(encodeSummaryTable(minutes)),
  };
}

function decodeDay(doc: DayDoc | null): DayState {
  const hours = new Map<number, { parts: number; summary: Summary }>();
  if (doc)
    for (const e of decodeSummaryTable(bytesOf(doc.hours))) hours.set(e.key, { parts: e.extra, summary: e.summary });
  return { hours };
}

/**
 * Runs bulk operations in commands of at most MAX_STATEMENTS_PER_COMMAND, one after another, each
 * within `deadlineMs` (store/commandDeadline.ts), each after the alert path's writes under way
 * (store/storePriority.ts).
 */
async function boundedBulkWrite<T extends Document>(
  collection: Collection<T>,
  ops: AnyBulkWriteOperation<T>[],
  deadlineMs: number,
  priority: StorePriority,
  pace: () => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  for (let i = 0; i < ops.length; i += MAX_STATEMENTS_PER_COMMAND) {
    await pace();
    await priority.yieldToUrgent();
    await withDeadline(
      collection.bulkWrite(ops.slice(i, i + MAX_STATEMENTS_PER_COMMAND), { ordered: false }),
      deadlineMs,
      `bulk write of ${collection.collectionName}`,
    );
  }
}

/** Commands in one write: bucket parts, then day documents, each cut into bounded commands. */
const commandsFor = (...statements: number[]): number =>
  statements.reduce((n, k) => n + Math.ceil(k / MAX_STATEMENTS_PER_COMMAND), 0);

/**
 * Spaces `commands` commands evenly over `spreadMs`: the i-th waits until i/commands of it has
 * passed since the first. A command slower than its share only delays the ones after it.
 */
function pacer(spreadMs: number, commands: number): () => Promise<void> {
  const start = performance.now();
  let started = 0;
  return async () => {
    const due = commands > 0 ? start + (spreadMs * started++) / commands : start;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
  };
}

/** Fetches documents by exact `_id`, a few at a time (the only lookup every backend serves from an index). */
async function byIds<T extends Document & { _id: string }>(
  collection: Collection<T>,
  ids: readonly string[],
  projection?: Document,
): Promise<(T | null)[]> {
  // The filter is the bare `_id`: one key, a string. Anything more is a full scan on FerretDB.
  return pLimit(LOOKUPS_AT_ONCE).map(
    ids,
    async (_id) => (await collection.findOne({ _id } as Filter<T>, projection ? { projection } : {})) as T | null,
  );
}

export function createReadingHistory(
  db: Db,
  options: { cachedHours?: number; commandDeadlineMs?: number; priority?: StorePriority } = {},
): ReadingHistory {
  const deadlineMs = options.commandDeadlineMs ?? COMMAND_DEADLINE_MS;
  const priority = options.priority ?? NO_PRIORITY;
  const buckets: Collection<PartDoc> = db.collection(BUCKETS);
  const days: Collection<DayDoc> = db.collection(DAYS);
  const sensors: Collection<SensorRangeDoc> = db.collection(SENSORS);
  // Recently touched sensor-hours stay cached; old ones are reloaded if ever touched again.
  const slices = new LRUCache<string, SliceState>({ max: options.cachedHours ?? 4096 });
  const dayStates = new LRUCache<string, DayState>({ max: options.cachedHours ?? 4096 });
  const knownRanges = new LRUCache<string, { first: number; last: number }>({ max: 100_000 });
  let writing: Promise<unknown> = Promise.resolve();

  const loadParts = async (sensorId: string, sliceMs: number, knownParts: number): Promise<PartDoc[]> => {
    const ids = Array.from({ length: knownParts }, (_, p) => partId(sensorId, sliceMs, p));
    const found = (await byIds(buckets, ids)).filter((d): d is PartDoc => d !== null);
    // Parts are written before the day document that counts them: after a crash there may be more.
    for (let p = knownParts; ; p++) {
      const extra = await buckets.findOne({ _id: partId(sensorId, sliceMs, p) });
      if (!extra) break;
      found.push(extra);
    }
    return found.sort((a, b) => a.part - b.part);
  };

  const loadSlice = async (sensorId: string, sliceMs: number, day: DayState): Promise<SliceState> => {
    const parts = await loadParts(sensorId, sliceMs, day.hours.get(new Date(sliceMs).getUTCHours())?.parts ?? 0);
    const columns = parts.map((d) => decodeColumns(bytesOf(d.r)));
    const last = columns.at(-1);
    if (last && last.length < PART_CAPACITY) {
      return { closed: columns.slice(0, -1).map((c) => ({ offsets: c.offsets, summary: c.summary() })), open: last };
    }
    return { closed: columns.map((c) => ({ offsets: c.offsets, summary: c.summary() })), open: new PartColumns() };
  };

  const write = async (readings: readonly Reading[], spreadMs: number): Promise<number> => {
    // sensor -> slice -> offset -> reading (first one wins, as for a stored reading)
    const grouped = new Map<string, Map<number, Map<number, Reading>>>();
    for (const r of readings) {
      const ts = r.ts.getTime();
      const sliceMs = sliceStart(ts);
      let bySlice = grouped.get(r.sensorId);
      if (!bySlice) grouped.set(r.sensorId, (bySlice = new Map<number, Map<number, Reading>>()));
      let byOffset = bySlice.get(sliceMs);
      if (!byOffset) bySlice.set(sliceMs, (byOffset = new Map<number, Reading>()));
      if (!byOffset.has(ts - sliceMs)) byOffset.set(ts - sliceMs, r);
    }

    try {
      // Load what is not cached: day documents first (they count the parts), then the slices.
      const dayKeys = new Map<string, { sensorId: string; dayMs: number }>();
      for (const [sensorId, bySlice] of grouped) {
        for (const sliceMs of bySlice.keys())
          dayKeys.set(dayId(sensorId, dayStart(sliceMs)), { sensorId, dayMs: dayStart(sliceMs) });
      }
      const missingDays = [...dayKeys.keys()].filter((id) => !dayStates.get(id));
      const loadedDays = await byIds(days, missingDays);
      missingDays.forEach((id, i) => dayStates.set(id, decodeDay(loadedDays[i] ?? null)));

      const sliceKeys: { key: string; sensorId: string; sliceMs: number }[] = [];
      for (const [sensorId, bySlice] of grouped)
        for (const sliceMs of bySlice.keys()) sliceKeys.push({ key: partId(sensorId, sliceMs, 0), sensorId, sliceMs });
      const missing = sliceKeys.filter((s) => !slices.get(s.key));
      await pLimit(LOOKUPS_AT_ONCE).map(missing, async (s) => {
        const day = dayStates.get(dayId(s.sensorId, dayStart(s.sliceMs)))!;
        slices.set(s.key, await loadSlice(s.sensorId, s.sliceMs, day));
      });

      // Merge: skip what is stored, fill the open part, start new parts when it is full.
      let added = 0;
      const partOps: AnyBulkWriteOperation<PartDoc>[] = [];
      const dirtyDays = new Set<string>();
      const ranges = new Map<string, { first: number; last: number }>();
      for (const { key, sensorId, sliceMs } of sliceKeys) {
        const state = slices.get(key)!;
        const incoming = [...grouped.get(sensorId)!.get(sliceMs)!]
          .filter(([offset]) => !state.open.has(offset) && !state.closed.some((c) => sortedHas(c.offsets, offset)))
          .sort((a, b) => a[0] - b[0])
          .map(([offset, reading]) => ({ offset, reading }));
        if (incoming.length === 0) continue;
        added += incoming.length;
        let rest = incoming;
        while (rest.length > 0) {
          const room = PART_CAPACITY - state.open.length;
          const take = rest.slice(0, room);
          rest = rest.slice(room);
          state.open = state.open.withReadings(take);
          partOps.push({
            replaceOne: {
              filter: { _id: partId(sensorId, sliceMs, state.closed.length) },
              replacement: toPartDoc(sensorId, sliceMs, state.closed.length, state.open),
              upsert: true,
            },
          });
          if (state.open.length >= PART_CAPACITY) {
            state.closed.push({ offsets: state.open.offsets, summary: state.open.summary() });
            state.open = new PartColumns();
          }
        }
        const dayKey = dayId(sensorId, dayStart(sliceMs));
        const day = dayStates.get(dayKey)!;
        const summary = emptySummary();
        for (const c of state.closed) mergeSummary(summary, c.summary);
        mergeSummary(summary, state.open.summary());
        day.hours.set(new Date(sliceMs).getUTCHours(), {
          parts: state.closed.length + (state.open.length > 0 ? 1 : 0),
          summary,
        });
        dirtyDays.add(dayKey);
        // Whole days: the range document changes once a day per sensor, not at every write.
        const first = dayStart(sliceMs);
        const last = dayStart(sliceMs) + DAY_MS - 1;
        const range = ranges.get(sensorId);
        ranges.set(sensorId, {
          first: Math.min(range?.first ?? first, first),
          last: Math.max(range?.last ?? last, last),
        });
      }

      const pace = pacer(spreadMs, commandsFor(partOps.length, dirtyDays.size));
      await boundedBulkWrite(buckets, partOps, deadlineMs, priority, pace);
      const dayOps: AnyBulkWriteOperation<DayDoc>[] = [...dirtyDays].map((key) => {
        const { sensorId, dayMs } = dayKeys.get(key)!;
        const state = dayStates.get(key)!;
        const entries: SummaryEntry[] = [...state.hours].map(([hour, h]) => ({
          key: hour,
          extra: h.parts,
          summary: h.summary,
        }));
        const replacement: DayDoc = {
          _id: key,
          sensorId,
          day: new Date(dayMs),
          n: entries.reduce((n, e) => n + e.summary.n, 0),
          hours: new Binary(encodeSummaryTable(entries)),
        };
        return { replaceOne: { filter: { _id: key }, replacement, upsert: true } };
      });
      await boundedBulkWrite(days, dayOps, deadlineMs, priority, pace);
      const rangeOps: AnyBulkWriteOperation<SensorRangeDoc>[] = [];
      for (const [sensorId, r] of ranges) {
        const known = knownRanges.get(sensorId);
        if (known && known.first <= r.first && known.last >= r.last) continue;
        rangeOps.push({
          updateOne: {
            filter: { _id: sensorId },
            update: { $min: { first: new Date(r.first) }, $max: { last: new Date(r.last) } },
            upsert: true,
          },
        });
        knownRanges.set(sensorId, {
          first: Math.min(known?.first ?? r.first, r.first),
          last: Math.max(known?.last ?? r.last, r.last),
        });
      }
      try {
        await boundedBulkWrite(sensors, rangeOps, deadlineMs, priority);
      } catch (err) {
        for (const [sensorId] of ranges) knownRanges.delete(sensorId);
        throw err;
      }
      return added;
    } catch (err) {
      // The cache may now claim what the store does not hold: forget it, the retry reloads the truth.
      for (const [sensorId, bySlice] of grouped) {
        for (const sliceMs of bySlice.keys()) {
          slices.delete(partId(sensorId, sliceMs, 0));
          dayStates.delete(dayId(sensorId, dayStart(sliceMs)));
        }
      }
      throw err;
    }
  };

  /** Day documents from `fromDay` down to `toDay` (inclusive, newest first), a few fetched ahead. */
  async function* daysDescending(
    sensorId: string,
    fromDay: number,
    toDay: number,
  ): AsyncGenerator<{ dayMs: number; state: DayState }> {
    const AHEAD = 4;
    for (let d = fromDay; d >= toDay; d -= AHEAD * DAY_MS) {
      const batch: number[] = [];
      for (let k = 0; k < AHEAD && d - k * DAY_MS >= toDay; k++) batch.push(d - k * DAY_MS);
      const docs = await byIds(
        days,
        batch.map((dayMs) => dayId(sensorId, dayMs)),
      );
      for (let k = 0; k < batch.length; k++) if (docs[k]) yield { dayMs: batch[k]!, state: decodeDay(docs[k]!) };
    }
  }

  return {
    insert(readings, options) {
      if (readings.length === 0) return Promise.resolve(0);
      // One write at a time: the cache is the writer's view of the store.
      const run = writing.then(() => write(readings, options?.spreadMs ?? 0));
      writing = run.catch(() => undefined);
      return run;
    },

    async page(q) {
      const range = await sensors.findOne({ _id: q.sensorId });
      if (!range) return { items: [], hasNextPage: false };
      let hi = range.last.getTime() + 1; // exclusive
      if (q.to) hi = Math.min(hi, q.to.getTime() + 1);
      if (q.beforeTs) hi = Math.min(hi, q.beforeTs.getTime());
      const lo = Math.max(range.first.getTime(), q.from?.getTime() ?? -Infinity);
      const items: Reading[] = [];
      const want = q.first + 1;
      if (lo >= hi) return { items, hasNextPage: false };
      for await (const { dayMs, state } of daysDescending(q.sensorId, dayStart(hi - 1), dayStart(lo))) {
        const hours = [...state.hours]
          .map(([hour, h]) => ({ sliceMs: dayMs + hour * SLICE_MS, ...h }))
          .filter((h) => h.sliceMs < hi && h.sliceMs + SLICE_MS > lo && h.parts > 0)
          .sort((a, b) => b.sliceMs - a.sliceMs);
        let i = 0;
        while (i < hours.length && items.length < want) {
          // Fetch as many hours at once as their counts say are needed to fill the page.
          const take: typeof hours = [];
          let expected = 0;
          while (i < hours.length && items.length + expected < want) {
            take.push(hours[i]!);
            expected += hours[i]!.summary.n;
            i++;
          }
          const ids = take.flatMap((h) => Array.from({ length: h.parts }, (_, p) => partId(q.sensorId, h.sliceMs, p)));
          const parts = (await byIds(buckets, ids, { minutes: 0 })).filter((d): d is PartDoc => d !== null);
          const found: Reading[] = [];
          for (const d of parts) {
            const c = decodeColumns(bytesOf(d.r));
            const sliceMs = d.start.getTime();
            for (let k = 0; k < c.length; k++) {
              const ts = sliceMs + c.offsets[k]!;
              if (ts >= lo && ts < hi) found.push(c.reading(q.sensorId, sliceMs, k));
            }
          }
          found.sort((a, b) => b.ts.getTime() - a.ts.getTime());
          items.push(...found);
        }
        if (items.length >= want) break;
      }
      return { items: items.slice(0, q.first), hasNextPage: items.length > q.first };
    },

    async stats(q) {
      const from = floorTo(q.from.getTime(), q.every);
      const to = q.to.getTime();
      const points = new Map<number, Summary>();
      const add = (startMs: number, s: Summary): void => {
        if (startMs < from || startMs > to || s.n === 0) return;
        let p = points.get(startMs);
        if (!p) points.set(startMs, (p = emptySummary()));
        mergeSummary(p, s);
      };
      const dayList: number[] = [];
      for (let d = dayStart(from); d <= to; d += DAY_MS) dayList.push(d);
      const dayDocs = await byIds(
        days,
        dayList.map((d) => dayId(q.sensorId, d)),
      );
      const minuteParts: string[] = [];
      dayDocs.forEach((doc, k) => {
        if (!doc) return;
        for (const [hour, h] of decodeDay(doc).hours) {
          const sliceMs = dayList[k]! + hour * SLICE_MS;
          if (q.every === 'MINUTE') {
            if (sliceMs + SLICE_MS > from && sliceMs <= to)
              for (let p = 0; p < h.parts; p++) minuteParts.push(partId(q.sensorId, sliceMs, p));
          } else {
            add(floorTo(sliceMs, q.every), h.summary);
          }
        }
      });
      if (minuteParts.length > 0) {
        const parts = await byIds(buckets, minuteParts, { minutes: 1, start: 1 });
        for (const d of parts) {
          if (!d) continue;
          for (const e of decodeSummaryTable(bytesOf(d.minutes)))
            add(d.start.getTime() + e.key * INTERVAL_MS.MINUTE, e.summary);
        }
      }
      return [...points].sort((a, b) => a[0] - b[0]).map(([start, summary]) => ({ start: new Date(start), summary }));
    },

    async count(sensorIds) {
      let total = 0;
      for (const sensorId of sensorIds) {
        const range = await sensors.findOne({ _id: sensorId });
        if (!range) continue;
        const ids: string[] = [];
        for (let d = dayStart(range.first.getTime()); d <= range.last.getTime(); d += DAY_MS)
          ids.push(dayId(sensorId, d));
        for (const doc of await byIds(days, ids, { n: 1 })) total += doc?.n ?? 0;
      }
      return total;
    },

    async purgeBefore(cutoff) {
      const cutoffDay = dayStart(cutoff.getTime()); // days that end at or before the cutoff's day start
      const result: PurgeResult = { sensors: 0, days: 0, buckets: 0 };
      // The sensor list is small (one document per sensor): read it whole, once.
      const all = await sensors.find({}).toArray();
      for (const range of all) {
        if (range.first.getTime() >= cutoffDay) continue;
        result.sensors++;
        for (let d = dayStart(range.first.getTime()); d < cutoffDay && d <= range.last.getTime(); d += DAY_MS) {
          const key = dayId(range._id, d);
          const doc = await days.findOne({ _id: key });
          if (!doc) continue;
          const ids: string[] = [];
          for (const [hour, h] of decodeDay(doc).hours)
            for (let p = 0; p < h.parts; p++) ids.push(partId(range._id, d + hour * SLICE_MS, p));
          await boundedBulkWrite(
            buckets,
            ids.map((id) => ({ deleteOne: { filter: { _id: id } } })),
            deadlineMs,
            priority,
          );
          // The day document goes last: a purge interrupted here is finished by the next one.
          await days.deleteOne({ _id: key });
          result.days++;
          result.buckets += ids.length;
        }
        if (range.last.getTime() < cutoffDay) await sensors.deleteOne({ _id: range._id });
        else await sensors.updateOne({ _id: range._id }, { $max: { first: new Date(cutoffDay) } });
        knownRanges.delete(range._id);
      }
      return result;
    },

    forget() {
      slices.clear();
      dayStates.clear();
      knownRanges.clear();
    },
  };
}
