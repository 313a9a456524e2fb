/**
 * Reading history's reads: a page of readings, summaries per interval, counts (store/readingHistory.ts).
 * Each walks the write order backwards (sensor range, then day documents, then bucket parts), so it
 * never sees a summary or a directory entry whose readings are not stored yet.
 */
import type { Reading } from '../domain/reading.js';
import {
  DAY_MS,
  INTERVAL_MS,
  SLICE_MS,
  dayId,
  dayStart,
  decodeColumns,
  decodeSummaryTable,
  emptySummary,
  floorTo,
  mergeSummary,
  partId,
  type StatsInterval,
  type Summary,
} from '../domain/readingBuckets.js';
import { byIds, bytesOf, decodeDay, type DayState, type HistoryCollections, type PartDoc } from './historyDocuments.js';

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

export interface HistoryReader {
  page(window: ReadingWindow): Promise<ReadingPage>;
  /** Summaries per interval, oldest first, empty intervals left out. */
  stats(query: StatsQuery): Promise<StatsPoint[]>;
  /** Readings stored for these sensors. */
  count(sensorIds: readonly string[]): Promise<number>;
}

export function createHistoryReader({ buckets, days, sensors }: HistoryCollections): HistoryReader {
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
  };
}
