/**
 * Reading history's retention: whole days go, buckets first and the day document last, so a purge
 * interrupted anywhere is finished by the next one.
 */
import { DAY_MS, SLICE_MS, dayId, dayStart, partId } from '../domain/readingBuckets.js';
import { boundedBulkWrite, decodeDay, type HistoryCollections, type HistoryCommands } from './historyDocuments.js';

export interface PurgeResult {
  sensors: number;
  days: number;
  buckets: number;
}

/**
 * Removes every day (buckets, then the day document) that ends at or before `cutoff`. Idempotent.
 * `forgetRange` is told of each sensor whose time range changed.
 */
export async function purgeHistoryBefore(
  { buckets, days, sensors }: HistoryCollections,
  { deadlineMs, priority }: HistoryCommands,
  cutoff: Date,
  forgetRange: (sensorId: string) => void,
): Promise<PurgeResult> {
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
    forgetRange(range._id);
  }
  return result;
}
