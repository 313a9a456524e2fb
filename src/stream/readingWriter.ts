/**
 * Stores readings off the alert path. The consumer hands over each batch's valid readings with the
 * Kafka position they end at; the writer merges what has queued into one unordered bulk insert,
 * retries it until it is durable (a store outage pauses, it never drops), then reports the offsets
 * now safe to commit. The queue is bounded: `enqueue` waits while it is full, which stops the
 * consumer from fetching further (backpressure instead of unbounded memory).
 */
import type { Reading } from '../domain/reading.js';
import type { Logger } from '../logger.js';
import type { MongoStore } from '../store/mongoStore.js';

export interface StoredPositions {
  /** partition -> last offset whose readings are durable (and everything before it). */
  readonly offsets: ReadonlyMap<number, number>;
}

export interface ReadingWriter {
  /** Queues readings that end at `offset` of `partition`. Resolves once they fit under the bound. */
  enqueue(partition: number, offset: number, readings: readonly Reading[]): Promise<void>;
  /** Resolves when everything queued so far is durable. */
  flush(): Promise<void>;
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
}

const MAX_INSERT = 5000;

export function createReadingWriter(deps: {
  store: MongoStore;
  maxPending: number;
  onDurable: (positions: StoredPositions) => Promise<void>;
  logger: Logger;
}): ReadingWriter {
  const log = deps.logger.child({ module: 'stream.writer' });
  const queue: Chunk[] = [];
  let queued = 0;
  let stored = 0;
  let writing = false;
  let healthy = true;
  let abandoned = false;
  let roomWaiters: (() => void)[] = [];
  let idleWaiters: (() => void)[] = [];

  const wakeRoom = (): void => {
    while (roomWaiters.length > 0 && queued < deps.maxPending) roomWaiters.shift()!();
  };

  const write = async (): Promise<void> => {
    if (writing) return;
    writing = true;
    try {
      while (queue.length > 0 && !abandoned) {
        const chunks: Chunk[] = [];
        let size = 0;
        while (queue.length > 0 && (chunks.length === 0 || size + queue[0]!.readings.length <= MAX_INSERT)) {
          const c = queue.shift()!;
          chunks.push(c);
          size += c.readings.length;
        }
        const readings = chunks.flatMap((c) => c.readings);
        let delay = 100;
        for (;;) {
          try {
            stored += await deps.store.readings.insert(readings);
            healthy = true;
            break;
          } catch (err) {
            healthy = false;
            log.warn({ err: (err as Error).message, readings: readings.length, retryInMs: delay }, 'storing readings failed; retrying');
            await new Promise((r) => setTimeout(r, delay));
            delay = Math.min(delay * 2, 5000);
            if (abandoned) return;
          }
        }
        queued -= size;
        wakeRoom();
        const offsets = new Map<number, number>();
        for (const c of chunks) offsets.set(c.partition, Math.max(offsets.get(c.partition) ?? -1, c.offset));
        await deps.onDurable({ offsets }).catch((err: Error) => log.debug({ err: err.message }, 'offset commit failed (partition moved?)'));
      }
    } finally {
      writing = false;
      if (queue.length === 0) {
        const waiters = idleWaiters;
        idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  };

  return {
    async enqueue(partition, offset, readings) {
      while (queued >= deps.maxPending && !abandoned) await new Promise<void>((r) => roomWaiters.push(r));
      queue.push({ partition, offset, readings });
      queued += readings.length;
      void write();
    },
    flush() {
      if (queue.length === 0 && !writing) return Promise.resolve();
      return new Promise<void>((r) => idleWaiters.push(r));
    },
    pending: () => queued,
    stored: () => stored,
    isHealthy: () => healthy,
    abandon() {
      abandoned = true;
      for (const w of [...roomWaiters, ...idleWaiters]) w();
      roomWaiters = [];
      idleWaiters = [];
    },
  };
}
