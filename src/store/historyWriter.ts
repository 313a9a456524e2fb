/**
 * Reading history's one writer per process (store/readingHistory.ts has the order of a write and
 * why it is safe to replay). It keeps the open part of each recent sensor-hour, and the day
 * documents that count the parts, cached: its view of the store, reloaded whenever a write fails.
 */
import { LRUCache } from 'lru-cache';
import pLimit from 'p-limit';
import { Binary, type AnyBulkWriteOperation } from 'mongodb';
import type { Reading } from '../domain/reading.js';
import {
  DAY_MS,
  PART_CAPACITY,
  PartColumns,
  dayId,
  dayStart,
  decodeColumns,
  emptySummary,
  encodeSummaryTable,
  mergeSummary,
  partId,
  sliceStart,
  sortedHas,
  type Summary,
  type SummaryEntry,
} from '../domain/readingBuckets.js';
import {
  LOOKUPS_AT_ONCE,
  boundedBulkWrite,
  byIds,
  bytesOf,
  commandsFor,
  decodeDay,
  pacer,
  toPartDoc,
  type DayDoc,
  type DayState,
  type HistoryCollections,
  type HistoryCommands,
  type PartDoc,
  type SensorRangeDoc,
} from './historyDocuments.js';

export interface HistoryWriter {
  /**
   * Stores readings; one already stored (same sensor and millisecond) is skipped. Returns how many
   * were new. `spreadMs`: the write's commands start evenly over about this long instead of back to
   * back, so the store is not busy in bursts (never slower than the store itself).
   */
  insert(readings: readonly Reading[], options?: { spreadMs?: number }): Promise<number>;
  /** Drops the writer's cached state (tests, after retention, and when the history consumer's partitions may have moved). */
  forget(): void;
}

/** What the writer knows of one sensor-hour: offsets of full parts, and the open part whole. */
interface SliceState {
  closed: { offsets: Uint32Array; summary: Summary }[];
  open: PartColumns;
}

export function createHistoryWriter(
  { buckets, days, sensors }: HistoryCollections,
  { deadlineMs, priority }: HistoryCommands,
  options: { cachedHours?: number } = {},
): HistoryWriter & {
  /** Forgets what the writer knows of a sensor's time range (retention moved it). */
  forgetRange(sensorId: string): void;
} {
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

  return {
    insert(readings, options) {
      if (readings.length === 0) return Promise.resolve(0);
      // One write at a time: the cache is the writer's view of the store.
      const run = writing.then(() => write(readings, options?.spreadMs ?? 0));
      writing = run.catch(() => undefined);
      return run;
    },
    forget() {
      slices.clear();
      dayStates.clear();
      knownRanges.clear();
    },
    forgetRange(sensorId) {
      knownRanges.delete(sensorId);
    },
  };
}
