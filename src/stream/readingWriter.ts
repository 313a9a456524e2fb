/**
 * Stores readings off the alert path. The consumer hands over each batch's valid readings with the
 * Kafka position they end at; the writer merges what has queued into one write (more readings per
 * bucket document when the store is slower: the batch grows with the load), retries it until it is
 * durable (a store outage pauses, it never drops), then reports the offsets now safe to commit.
 *
 * `enqueue` resolves once the chunk is durable. The consumer waits for that before it lets go of a
 * batch, so a partition is never handed to another replica while this one still has its readings to
 * write: the bucket layout has one writer per sensor, and this is what keeps it so across rebalances.
 * A chunk of a partition that moved away can be dropped before its write starts (`drop`).
 *
 * A partition's readings are written at most every `intervalMs` (HISTORY_WRITE_INTERVAL); those of
 * partitions due at the same time go in one write. A write rewrites one bucket part and one day
 * document per sensor it touches, so on a fleet of many slow sensors the store's work follows the
 * number of writes, not the readings: written as fast as the store allowed, history kept the store
 * busy whatever the rate (FerretDB at 0.7 of a core for 1,000 readings/s). A write that waited for
 * the interval has its commands spread over up to half of it (`spreadMs`), so the store sees a
 * steady trickle rather than a burst next to the alert path. A full write's worth queued
 * (MAX_WRITE), or `flush`, starts a write at once and unspread, and so does a chunk the consumer
 * marks `atOnce` (more waits in Kafka, and the interval must not cap the rate; or the batch already
 * fills a write). A consumer that is caught up fetches again only when its partition's next write is
 * due (`nextWriteAt`), so what arrives meanwhile waits in Kafka: waiting loses nothing.
 */
import type { Reading } from '../domain/reading.js';
import type { Logger } from '../logger.js';
import { retryUntilDone } from '../shared/retry.js';
import { Waiters } from '../shared/waiters.js';
import type { PipelineObserver } from '../observability/metrics.js';
import type { HistoryWriter } from '../store/historyWriter.js';

export interface StoredPositions {
  /** partition -> last offset whose readings are durable (and everything before it). */
  readonly offsets: ReadonlyMap<number, number>;
}

export interface ReadingWriter {
  /**
   * Queues readings that end at `offset` of `partition`. `queued` resolves once they fit under the
   * bound; `durable` once they are stored (or rejects with ChunkDropped).
   */
  enqueue(
    partition: number,
    offset: number,
    readings: readonly Reading[],
    options?: {
      /** Written without waiting for the interval (the consumer is behind, or the batch fills a write). */
      atOnce?: boolean;
    },
  ): Promise<{ durable: Promise<void> }>;
  /** Drops the queued, not yet started chunks of a partition; their `durable` rejects. */
  drop(partition: number): void;
  /** Resolves when everything queued so far is durable. */
  flush(): Promise<void>;
  /** When a partition's next write may start (performance.now() clock): the interval after its last. */
  nextWriteAt(partition: number): number;
  pending(): number;
  stored(): number;
  isHealthy(): boolean;
  /** Stops retrying (shutdown after the deadline): what is not durable is simply not committed. */
  abandon(): void;
}

interface Chunk {
  partition: number;
  offset: number;
  readings: readonly Reading[];
  atOnce: boolean;
  done: () => void;
  dropped: (err: Error) => void;
}

export class ChunkDropped extends Error {
  constructor(partition: number) {
    super(`readings of partition ${partition} dropped before storage (partition moved or writer stopped)`);
    this.name = 'ChunkDropped';
  }
}

/** Readings merged into one store write at most. */
const MAX_WRITE = 20_000;

export function createReadingWriter(deps: {
  /** Only reading storage is used. */
  store: { readonly readings: Pick<HistoryWriter, 'insert'> };
  maxPending: number;
  /** A partition's writes start at least this far apart (0: as soon as the last one ends). */
  intervalMs?: number;
  onDurable: (positions: StoredPositions) => Promise<void>;
  logger: Logger;
  observer?: PipelineObserver;
}): ReadingWriter {
  const log = deps.logger.child({ module: 'stream.writer' });
  const queue: Chunk[] = [];
  let queued = 0;
  let stored = 0;
  let writing = false;
  /** Per partition, when the last write with its readings started (performance.now()). */
  const lastWriteAt = new Map<number, number>();
  const nextWriteAt = (partition: number): number => (lastWriteAt.get(partition) ?? -Infinity) + intervalMs;
  /** A chunk is due at its partition's next write, or at once when marked so. */
  const dueAt = (c: Chunk): number => (c.atOnce ? -Infinity : nextWriteAt(c.partition));
  /** Ends the wait of a write for its interval: a full write's worth queued, a flush, or abandon. */
  let hurry: (() => void) | undefined;
  let flushing = false;
  const intervalMs = deps.intervalMs ?? 0;
  let healthy = true;
  let abandoned = false;
  const room = new Waiters();
  const idle = new Waiters();

  const wakeRoom = (): void => {
    while (queued < deps.maxPending && room.wakeOne());
  };

  const write = async (): Promise<void> => {
    if (writing) return;
    writing = true;
    try {
      while (queue.length > 0 && !abandoned) {
        for (;;) {
          const wait = Math.min(...queue.map(dueAt)) - performance.now();
          if (wait <= 0 || queued >= MAX_WRITE || flushing || abandoned) break;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, wait);
            function done(): void {
              clearTimeout(timer);
              hurry = undefined;
              resolve();
            }
            hurry = done;
          });
        }
        if (abandoned) break;
        // The chunks whose partition's interval has passed (all, when hurried), each partition's in
        // order: a partition's chunk left behind keeps the ones after it behind too.
        const now = performance.now();
        const all = queued >= MAX_WRITE || flushing;
        const chunks: Chunk[] = [];
        const held = new Set<number>();
        let size = 0;
        for (let i = 0; i < queue.length;) {
          const c = queue[i]!;
          const fits = chunks.length === 0 || size + c.readings.length <= MAX_WRITE;
          if (held.has(c.partition) || !fits || !(all || dueAt(c) <= now)) {
            held.add(c.partition);
            i++;
            continue;
          }
          queue.splice(i, 1);
          chunks.push(c);
          size += c.readings.length;
        }
        for (const c of chunks) lastWriteAt.set(c.partition, now);
        // Spread over half the interval only a write that waited for it: one that goes at once (the
        // consumer behind, a full write, a flush) goes as fast as the store allows, or spreading
        // would cap the rate.
        const paced = !all && !chunks.some((c) => c.atOnce);
        const readings = chunks.flatMap((c) => c.readings);
        try {
          await retryUntilDone(
            async () => {
              const t0 = performance.now();
              stored += await deps.store.readings.insert(readings, { spreadMs: paced ? intervalMs / 2 : 0 });
              deps.observer?.storeWrite('readings', performance.now() - t0);
              healthy = true;
            },
            {
              onFailure: (err, retryInMs) => {
                healthy = false;
                log.warn(
                  { err: err.message, readings: readings.length, retryInMs },
                  'storing readings failed; retrying',
                );
              },
              beforeRetry: () => {
                if (abandoned) throw new ChunkDropped(-1);
              },
            },
          );
        } catch {
          // Abandoned (shutdown past its deadline): not durable, so not committed.
          for (const c of chunks) c.dropped(new ChunkDropped(c.partition));
          return;
        }
        queued -= size;
        wakeRoom();
        for (const c of chunks) c.done();
        const offsets = new Map<number, number>();
        for (const c of chunks) offsets.set(c.partition, Math.max(offsets.get(c.partition) ?? -1, c.offset));
        await deps
          .onDurable({ offsets })
          .catch((err: Error) => log.debug({ err: err.message }, 'offset commit failed (partition moved?)'));
      }
    } finally {
      writing = false;
      if (queue.length === 0) {
        flushing = false;
        idle.wakeAll();
      }
    }
  };

  return {
    async enqueue(partition, offset, readings, options) {
      while (queued >= deps.maxPending && !abandoned) await room.wait();
      if (abandoned) return { durable: Promise.reject(new ChunkDropped(partition)) };
      let done!: () => void;
      let dropped!: (err: Error) => void;
      const durable = new Promise<void>((resolve, reject) => {
        done = resolve;
        dropped = reject;
      });
      durable.catch(() => undefined); // observed by the caller if it cares
      const atOnce = options?.atOnce ?? false;
      queue.push({ partition, offset, readings, atOnce, done, dropped });
      queued += readings.length;
      if (queued >= MAX_WRITE || atOnce) hurry?.();
      void write();
      return { durable };
    },
    drop(partition) {
      for (let i = queue.length - 1; i >= 0; i--) {
        const c = queue[i]!;
        if (c.partition !== partition) continue;
        queue.splice(i, 1);
        queued -= c.readings.length;
        c.dropped(new ChunkDropped(partition));
      }
      wakeRoom();
    },
    flush() {
      if (queue.length === 0 && !writing) return Promise.resolve();
      // Everything queued now is written without waiting for the interval (shutdown, tests).
      flushing = true;
      hurry?.();
      return idle.wait();
    },
    nextWriteAt,
    pending: () => queued,
    stored: () => stored,
    isHealthy: () => healthy,
    abandon() {
      abandoned = true;
      hurry?.();
      for (const c of queue.splice(0)) c.dropped(new ChunkDropped(c.partition));
      queued = 0;
      room.wakeAll();
      idle.wakeAll();
    },
  };
}
