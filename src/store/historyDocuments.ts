/**
 * Reading history's documents as stored (store/readingHistory.ts): bucket parts, day documents and
 * sensor ranges, and the few ways they are fetched and written, by exact `_id` and in bounded commands.
 */
import pLimit from 'p-limit';
import { Binary, type AnyBulkWriteOperation, type Collection, type Db, type Document, type Filter } from 'mongodb';
import { withDeadline } from './commandDeadline.js';
import type { StorePriority } from './storePriority.js';
import {
  type PartColumns,
  decodeSummaryTable,
  encodeColumns,
  encodeSummaryTable,
  partId,
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
export const LOOKUPS_AT_ONCE = 8;

export const BUCKETS = 'reading_buckets';
export const DAYS = 'reading_days';
export const SENSORS = 'reading_sensors';

export interface PartDoc {
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

export interface DayDoc {
  _id: string;
  sensorId: string;
  day: Date;
  n: number;
  /** Per-hour summaries (key = hour of the day, extra = parts of that hour's bucket). */
  hours: Binary;
}

/** The days a sensor has readings in: `first` is the start of its oldest day, `last` the end of its newest. */
export interface SensorRangeDoc {
  _id: string;
  first: Date;
  last: Date;
}

export interface DayState {
  hours: Map<number, { parts: number; summary: Summary }>;
}

export const bytesOf = (b: Binary): Uint8Array => b.buffer;

export function toPartDoc(sensorId: string, sliceMs: number, part: number, c: PartColumns): PartDoc {
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

export function decodeDay(doc: DayDoc | null): DayState {
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
export async function boundedBulkWrite<T extends Document>(
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
export const commandsFor = (...statements: number[]): number =>
  statements.reduce((n, k) => n + Math.ceil(k / MAX_STATEMENTS_PER_COMMAND), 0);

/**
 * Spaces `commands` commands evenly over `spreadMs`: the i-th waits until i/commands of it has
 * passed since the first. A command slower than its share only delays the ones after it.
 */
export function pacer(spreadMs: number, commands: number): () => Promise<void> {
  const start = performance.now();
  let started = 0;
  return async () => {
    const due = commands > 0 ? start + (spreadMs * started++) / commands : start;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
  };
}

/** Fetches documents by exact `_id`, a few at a time (the only lookup every backend serves from an index). */
export async function byIds<T extends Document & { _id: string }>(
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

export interface HistoryCollections {
  readonly buckets: Collection<PartDoc>;
  readonly days: Collection<DayDoc>;
  readonly sensors: Collection<SensorRangeDoc>;
}

export const historyCollections = (db: Db): HistoryCollections => ({
  buckets: db.collection(BUCKETS),
  days: db.collection(DAYS),
  sensors: db.collection(SENSORS),
});

/** How history's commands run: each within `deadlineMs`, each after the alert path's writes under way. */
export interface HistoryCommands {
  readonly deadlineMs: number;
  readonly priority: StorePriority;
}
