/**
 * The reading writer stores readings off the alert path: bounded, never dropping, and reporting
 * only offsets whose readings (and everything before them) are durable.
 */
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../src/domain/reading.js';
import { createLogger } from '../../src/logger.js';
import { createReadingWriter } from '../../src/stream/readingWriter.js';

const reading = (i: number): Reading => ({
  sensorId: 's',
  ts: new Date(i),
  temperature: 20,
  humidity: 50,
  location: { lat: 0, lon: 0 },
});

function fakeStore(opts: { failFirst?: number } = {}) {
  const stored: Reading[] = [];
  let failures = opts.failFirst ?? 0;
  let release: (() => void) | undefined;
  let gate: Promise<void> | undefined;
  let calls = 0;
  const callWaiters: { n: number; resolve: () => void }[] = [];
  /** Each insert: how many readings, and over how long it was asked to spread its commands. */
  const writes: { readings: number; spreadMs: number | undefined }[] = [];
  const store = {
    readings: {
      insert: async (batch: readonly Reading[], options?: { spreadMs?: number }) => {
        calls++;
        writes.push({ readings: batch.length, spreadMs: options?.spreadMs });
        for (const w of callWaiters.filter((x) => x.n <= calls)) {
          callWaiters.splice(callWaiters.indexOf(w), 1);
          w.resolve();
        }
        if (gate) await gate;
        if (failures > 0) {
          failures--;
          throw new Error('store down');
        }
        stored.push(...batch);
        return batch.length;
      },
    },
  };
  return {
    store,
    stored,
    writes,
    /** Resolves once insert has been called `n` times in all. */
    insertCalled: (n: number): Promise<void> =>
      calls >= n ? Promise.resolve() : new Promise((resolve) => callWaiters.push({ n, resolve })),
    hold: (): void => {
      gate = new Promise<void>((r) => (release = r));
    },
    release: () => {
      gate = undefined;
      release?.();
    },
  };
}

describe('reading writer', () => {
  it('reports an offset as durable only after its readings are stored', async () => {
    const f = fakeStore();
    const durable: Map<number, number>[] = [];
    const writer = createReadingWriter({
      store: f.store,
      maxPending: 100,
      logger: createLogger('silent'),
      onDurable: async (p) => void durable.push(new Map(p.offsets)),
    });
    f.hold();
    await writer.enqueue(0, 9, [reading(1), reading(2)]);
    await writer.enqueue(1, 4, [reading(3)]);
    expect(durable).toEqual([]);
    f.release();
    await writer.flush();
    expect(f.stored).toHaveLength(3);
    expect(new Map(durable.flatMap((d) => [...d]))).toEqual(
      new Map([
        [0, 9],
        [1, 4],
      ]),
    );
  });

  it('retries a failed insert until it succeeds, losing nothing', async () => {
    const f = fakeStore({ failFirst: 2 });
    const writer = createReadingWriter({
      store: f.store,
      maxPending: 100,
      logger: createLogger('silent'),
      onDurable: async () => undefined,
    });
    await writer.enqueue(0, 1, [reading(1), reading(2)]);
    await f.insertCalled(2); // the first retry: the first failure has been reported
    expect(writer.isHealthy()).toBe(false); // readiness reports the store trouble meanwhile
    await writer.flush();
    expect(writer.isHealthy()).toBe(true);
    expect(f.stored).toHaveLength(2);
    expect(writer.stored()).toBe(2);
  });

  it('makes the consumer wait when the queue is full (backpressure), then lets it go on', async () => {
    const f = fakeStore();
    const writer = createReadingWriter({
      store: f.store,
      maxPending: 3,
      logger: createLogger('silent'),
      onDurable: async () => undefined,
    });
    f.hold();
    await writer.enqueue(0, 0, [reading(1), reading(2), reading(3)]);
    let admitted = false;
    const next = writer.enqueue(0, 1, [reading(4)]).then(() => (admitted = true));
    await f.insertCalled(1); // the first chunk is being written (and held): no room until it is done
    expect(admitted).toBe(false);
    expect(writer.pending()).toBe(3);
    f.release();
    await next;
    await writer.flush();
    expect(f.stored).toHaveLength(4);
  });

  describe('with a write interval (HISTORY_WRITE_INTERVAL)', () => {
    const readings = (from: number, n: number): Reading[] => Array.from({ length: n }, (_, i) => reading(from + i));
    const writerWithInterval = (f: ReturnType<typeof fakeStore>, intervalMs: number) =>
      createReadingWriter({
        store: f.store,
        maxPending: 100_000,
        intervalMs,
        logger: createLogger('silent'),
        onDurable: async () => undefined,
      });

    it('writes what queued during the interval in one write, however it arrived', async () => {
      const f = fakeStore();
      const writer = writerWithInterval(f, 60_000);
      await writer.enqueue(0, 0, readings(0, 2)); // the first write starts at once
      await f.insertCalled(1);
      for (let i = 1; i <= 3; i++) {
        await new Promise((r) => setTimeout(r, 20)); // arriving apart: each would be its own write
        await writer.enqueue(0, i, readings(i * 10, 1));
      }
      expect(f.writes.map((w) => w.readings)).toEqual([2]); // the others wait for the interval
      await writer.flush();
      expect(f.writes.map((w) => w.readings)).toEqual([2, 3]);
      expect(f.stored).toHaveLength(5);
    });

    it('keeps an interval per partition: another partition due now is written at once', async () => {
      const f = fakeStore();
      const writer = writerWithInterval(f, 60_000);
      await writer.enqueue(0, 0, readings(0, 1));
      await f.insertCalled(1);
      await writer.enqueue(0, 1, readings(10, 2)); // partition 0 waits for its interval
      const { durable } = await writer.enqueue(1, 0, readings(20, 3)); // partition 1 has not written yet
      await durable;
      expect(f.writes.map((w) => w.readings)).toEqual([1, 3]);
      expect(writer.nextWriteAt(1)).toBeGreaterThan(writer.nextWriteAt(7)); // 7 never wrote: due now
      await writer.flush();
      expect(f.writes.map((w) => w.readings)).toEqual([1, 3, 2]);
    });

    it('writes at once what the consumer marks so (it is behind): the interval never caps the rate', async () => {
      const f = fakeStore();
      const writer = writerWithInterval(f, 3_600_000);
      await writer.enqueue(0, 0, readings(0, 1));
      await f.insertCalled(1);
      const { durable } = await writer.enqueue(0, 1, readings(10, 5), { atOnce: true });
      await durable; // within the test's timeout, not the hour
      expect(f.writes).toEqual([
        { readings: 1, spreadMs: 1_800_000 },
        { readings: 5, spreadMs: 0 }, // not spread either: that would cap the rate as surely
      ]);
    });

    it('asks the store to spread a write over half the interval, and a flush to hurry', async () => {
      const f = fakeStore();
      const writer = writerWithInterval(f, 4000);
      await writer.enqueue(0, 0, readings(0, 1));
      await f.insertCalled(1);
      await writer.enqueue(0, 1, readings(10, 1));
      await writer.flush();
      expect(f.writes).toEqual([
        { readings: 1, spreadMs: 2000 },
        { readings: 1, spreadMs: 0 },
      ]);
    });

    it('does not wait for the interval once a full write is queued', async () => {
      const f = fakeStore();
      const writer = writerWithInterval(f, 3_600_000);
      await writer.enqueue(0, 0, readings(0, 1));
      await f.insertCalled(1);
      await writer.enqueue(0, 1, readings(10, 19_999));
      await new Promise((r) => setTimeout(r, 20)); // the writer is now waiting for its interval
      expect(f.writes).toHaveLength(1);
      await writer.enqueue(0, 2, readings(30_000, 1)); // 20,000 queued: a full write
      await f.insertCalled(2); // within the test's timeout, not the hour
      expect(f.writes[1]!.readings).toBe(20_000);
    });

    it('stops waiting when abandoned (shutdown past its deadline), dropping what waited', async () => {
      const f = fakeStore();
      const writer = writerWithInterval(f, 3_600_000);
      await writer.enqueue(0, 0, readings(0, 1));
      await f.insertCalled(1);
      const { durable } = await writer.enqueue(0, 1, readings(10, 1));
      writer.abandon();
      await expect(durable).rejects.toThrow(/dropped before storage/);
      await writer.flush(); // nothing left waiting
      expect(f.writes).toHaveLength(1);
    });
  });

  it('carries offsets of batches that had no valid readings, so they are committed too', async () => {
    const f = fakeStore();
    const durable: number[] = [];
    const writer = createReadingWriter({
      store: f.store,
      maxPending: 10,
      logger: createLogger('silent'),
      onDurable: async (p) => void durable.push(p.offsets.get(2)!),
    });
    await writer.enqueue(2, 41, []);
    await writer.flush();
    expect(durable).toEqual([41]);
  });
});
