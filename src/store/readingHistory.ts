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
 *
 * This file is the public face; the parts: historyDocuments.ts (the stored form, bounded commands),
 * historyWriter.ts (the one writer and its cache), historyReader.ts (pages, stats, counts),
 * historyPurge.ts (retention).
 */
import type { Db } from 'mongodb';
import { COMMAND_DEADLINE_MS } from './commandDeadline.js';
import { historyCollections } from './historyDocuments.js';
import { createHistoryReader, type HistoryReader } from './historyReader.js';
import { purgeHistoryBefore, type PurgeResult } from './historyPurge.js';
import { createHistoryWriter, type HistoryWriter } from './historyWriter.js';
import { NO_PRIORITY, type StorePriority } from './storePriority.js';

export { BUCKETS, DAYS, MAX_STATEMENTS_PER_COMMAND, SENSORS } from './historyDocuments.js';
export type { HistoryReader, ReadingPage, ReadingWindow, StatsPoint, StatsQuery } from './historyReader.js';
export type { HistoryWriter } from './historyWriter.js';
export type { PurgeResult } from './historyPurge.js';

export interface ReadingHistory extends HistoryWriter, HistoryReader {
  /** Removes every day (buckets, then the day document) that ends at or before `cutoff`. Idempotent. */
  purgeBefore(cutoff: Date): Promise<PurgeResult>;
}

export function createReadingHistory(
  db: Db,
  options: { cachedHours?: number; commandDeadlineMs?: number; priority?: StorePriority } = {},
): ReadingHistory {
  const collections = historyCollections(db);
  const commands = {
    deadlineMs: options.commandDeadlineMs ?? COMMAND_DEADLINE_MS,
    priority: options.priority ?? NO_PRIORITY,
  };
  const writer = createHistoryWriter(collections, commands, options);
  const reader = createHistoryReader(collections);
  return {
    insert: (readings, insertOptions) => writer.insert(readings, insertOptions),
    forget: () => writer.forget(),
    page: (window) => reader.page(window),
    stats: (query) => reader.stats(query),
    count: (sensorIds) => reader.count(sensorIds),
    purgeBefore: (cutoff) =>
      purgeHistoryBefore(collections, commands, cutoff, (sensorId) => writer.forgetRange(sensorId)),
  };
}
