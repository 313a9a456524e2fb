/**
 * The alert path's store backlog: batches judged (and their early alerts published) wait here, per
 * partition, for their store writes, while the consumer goes on fetching and judging the next ones.
 *
 * - A partition's batches are stored in order, one flush at a time. A flush takes every batch that
 *   queued while the one before it ran (up to MAX_WEIGHT_PER_FLUSH readings), so a slower store means
 *   fewer, larger writes instead of a growing queue. The bound is on readings, not batches: a
 *   consumer at the live edge fetches batches of a few readings each, and a bound of 256 batches
 *   let a store slowed to seconds per flush (a replica leaving mid-storm) store fewer readings per
 *   second than arrived, until the alert path stopped fetching. A flush's incident writes are one
 *   per incident touched, whatever the batches, so larger flushes cost little more.
 * - A partition's flushes start at most every `minIntervalMs` (ALERT_STORE_INTERVAL): the store's
 *   work is per write more than per alert, so on a busy stream this cuts it several-fold. What waits
 *   for storage (a progress notice, alerts held for after storing) waits that much longer; the
 *   alerts published before storing do not. A full flush's worth queued starts it at once.
 * - A flush that fails drops what is queued behind it on that partition (its batches must not be
 *   stored without the one before them); `onFailure` then takes the partition up again from what
 *   the store has.
 * - `weight` (readings and commands queued) is what the consumer bounds before it fetches more.
 * - `hurry()` (the group is rebalancing) lifts the interval until the backlog is stored: the next
 *   owner of a partition waits for it, and alerts with it.
 */
import { sleep } from '../shared/retry.js';
import { Waiters } from '../shared/waiters.js';

/** Readings (the batches' weight) stored by one flush at most: a quarter of the alert path's bound. */
export const MAX_WEIGHT_PER_FLUSH = 5000;

export interface StoreBacklog<T> {
  /** Queues a batch of `partition` for storage, behind the ones queued before it. */
  add(partition: number, batch: T, weight: number): void;
  /** Readings and commands queued or being stored. */
  weight(): number;
  /** Whether anything is queued or being stored. */
  busy(): boolean;
  /** Resolves once nothing is queued or being stored. */
  idle(): Promise<void>;
  /** Resolves once the weight is at most `limit` (or nothing is left to wait for). */
  room(limit: number): Promise<void>;
  /** Drops the batches not being stored yet (of one partition, or all). */
  drop(partition?: number): void;
  /**
   * Stores what is queued without waiting for `minIntervalMs`, until nothing is left (the group is
   * rebalancing: the next owner of these partitions waits for this backlog).
   */
  hurry(): void;
}

export function createStoreBacklog<T>(o: {
  flush(partition: number, batches: readonly T[]): Promise<void>;
  onFailure(partition: number, err: unknown): void;
  /** A partition's flushes start at least this far apart (0: as soon as the last one ends). */
  minIntervalMs?: number;
}): StoreBacklog<T> {
  const minIntervalMs = o.minIntervalMs ?? 0;
  const queues = new Map<number, { batch: T; weight: number }[]>();
  /** When each partition's last flush started. */
  const lastFlushAt = new Map<number, number>();
  const flushing = new Set<number>();
  let weight = 0;
  const changed = new Waiters();
  /** Set by hurry() until the backlog is empty; wakes the flushes waiting for their interval. */
  let hurrying = false;
  const hurried = new Waiters();

  const busy = (): boolean => flushing.size > 0 || queues.size > 0;
  const queuedWeight = (partition: number): number => (queues.get(partition) ?? []).reduce((n, t) => n + t.weight, 0);

  const run = async (partition: number): Promise<void> => {
    flushing.add(partition);
    try {
      for (;;) {
        const wait = (lastFlushAt.get(partition) ?? -Infinity) + minIntervalMs - Date.now();
        if (wait > 0 && !hurrying && queuedWeight(partition) < MAX_WEIGHT_PER_FLUSH)
          await Promise.race([sleep(wait), hurried.wait()]);
        const queue = queues.get(partition);
        if (!queue || queue.length === 0) break;
        lastFlushAt.set(partition, Date.now());
        // At least one batch, however heavy; then as many as fit.
        let count = 1;
        let taking = queue[0]!.weight;
        while (count < queue.length && taking + queue[count]!.weight <= MAX_WEIGHT_PER_FLUSH)
          taking += queue[count++]!.weight;
        const taken = queue.splice(0, count);
        if (queue.length === 0) queues.delete(partition);
        try {
          await o.flush(
            partition,
            taken.map((t) => t.batch),
          );
        } catch (err) {
          drop(partition);
          o.onFailure(partition, err);
          break;
        } finally {
          weight -= taking;
        }
        changed.wakeAll();
      }
    } finally {
      flushing.delete(partition);
      if (!busy()) hurrying = false;
      changed.wakeAll();
    }
  };

  const drop = (partition?: number): void => {
    for (const [p, queue] of queues) {
      if (partition !== undefined && p !== partition) continue;
      for (const t of queue) weight -= t.weight;
      queues.delete(p);
    }
    changed.wakeAll();
  };

  return {
    add(partition, batch, w) {
      let queue = queues.get(partition);
      if (!queue) queues.set(partition, (queue = []));
      queue.push({ batch, weight: w });
      weight += w;
      if (!flushing.has(partition)) void run(partition);
    },
    weight: () => weight,
    busy,
    async idle() {
      while (busy()) await changed.wait();
    },
    async room(limit) {
      while (weight > limit && busy()) await changed.wait();
    },
    drop,
    hurry() {
      if (!busy()) return;
      hurrying = true;
      hurried.wakeAll();
    },
  };
}
