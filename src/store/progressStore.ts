/**
 * Stream progress of the alert path: per partition, the offset up to which everything is stored
 * (the watermark every feed joins on), and the handovers of consumers that rejoined the group.
 */
import type { Collection, Db } from 'mongodb';
import type { StreamPosition } from '../domain/alert.js';
import { sharedReads } from './sharedReads.js';

export const STREAM_PROGRESS = 'stream_progress';

interface ProgressDoc {
  _id: string;
  topic: string;
  partition: number;
  /** Last offset whose readings and alerts are durably stored. */
  offset: number;
  /** Highest timestamp of the alerts stored up to `offset` (absent: none, or stored before it was kept). */
  alertTs?: Date;
}

export interface ProgressStore {
  /**
   * Records that everything up to `offset` in this partition is stored, and `alertTs`, the highest
   * timestamp of the alerts just stored (if any). Neither moves backwards.
   */
  advance(topic: string, position: StreamPosition, alertTs?: Date): Promise<void>;
  watermarks(topic: string): Promise<Map<number, number>>;
  /**
   * The partition's watermark document: the watermark, and the highest alert timestamp stored up
   * to it (`null` when it was never recorded: a store written before it was kept); undefined when
   * the partition has no watermark.
   */
  storedUpTo(topic: string, partition: number): Promise<{ offset: number; alertTs: Date | null } | undefined>;
  /**
   * A consumer of the alert path has stored everything it had judged when it joined the group for
   * the `seq`-th time (stream/handoverAssigner.ts). Records older than a day are dropped meanwhile.
   */
  handedOver(instance: string, seq: number): Promise<void>;
  /** The last `seq` recorded by handedOver for this consumer, if any. */
  handoverOf(instance: string): Promise<number | undefined>;
}

export function createProgressStore(alertsDb: Db): ProgressStore {
  const progress: Collection<ProgressDoc> = alertsDb.collection(STREAM_PROGRESS);
  // Every subscription reads the watermarks when it opens and when it replays: thousands together.
  const readWatermarks = sharedReads(async (topic) => {
    const docs = await progress.find({ topic }).toArray();
    return new Map(docs.map((d) => [d.partition, d.offset]));
  });
  const handovers: Collection<{ _id: string; seq: number; at: Date }> = alertsDb.collection('alert_path_handovers');
  return {
    async advance(topic, position, alertTs) {
      await progress.updateOne(
        { _id: `${topic}:${position.partition}` },
        {
          $max: alertTs ? { offset: position.offset, alertTs } : { offset: position.offset },
          $setOnInsert: { topic, partition: position.partition },
        },
        { upsert: true },
      );
    },
    async storedUpTo(topic, partition) {
      const d = await progress.findOne({ _id: `${topic}:${partition}` });
      return d ? { offset: d.offset, alertTs: d.alertTs ?? null } : undefined;
    },
    async handedOver(instance, seq) {
      await handovers.updateOne({ _id: instance }, { $max: { seq }, $set: { at: new Date() } }, { upsert: true });
      await handovers.deleteMany({ at: { $lt: new Date(Date.now() - 86_400_000) } });
    },
    async handoverOf(instance) {
      return (await handovers.findOne({ _id: instance }))?.seq;
    },
    async watermarks(topic) {
      // A copy each: callers share the read (see readWatermarks), not the map.
      return new Map(await readWatermarks(topic));
    },
  };
}
