/**
 * The alert path's store backlog (src/stream/storeBacklog.ts): judged batches wait per partition
 * for their store writes, in order, merged while the write before them runs.
 */
import { describe, expect, it } from 'vitest';
import { createStoreBacklog, MAX_WEIGHT_PER_FLUSH } from '../../src/stream/storeBacklog.js';

/** A store whose writes finish when the test says so. */
function slowStore() {
  const flushed: { partition: number; batches: string[] }[] = [];
  const pending: { resolve: () => void; reject: (err: Error) => void }[] = [];
  const failures: { partition: number; err: unknown }[] = [];
  const backlog = createStoreBacklog<string>({
    flush: (partition, batches) => {
      flushed.push({ partition, batches: [...batches] });
      return new Promise<void>((resolve, reject) => pending.push({ resolve, reject }));
    },
    onFailure: (partition, err) => failures.push({ partition, err }),
  });
  const tick = () => new Promise((r) => setImmediate(r));
  return {
    backlog,
    flushed,
    failures,
    async finishNext() {
      pending.shift()!.resolve();
      await tick();
    },
    async failNext() {
      pending.shift()!.reject(new Error('store down'));
      await tick();
    },
  };
}

describe('the store backlog', () => {
  it('stores a partition’s batches in order, those queued during a write together in the next one', async () => {
    const s = slowStore();
    s.backlog.add(0, 'b1', 10);
    s.backlog.add(0, 'b2', 10);
    s.backlog.add(0, 'b3', 10);
    expect(s.flushed).toEqual([{ partition: 0, batches: ['b1'] }]);
    expect(s.backlog.weight()).toBe(30);
    await s.finishNext();
    expect(s.flushed.at(-1)).toEqual({ partition: 0, batches: ['b2', 'b3'] });
    expect(s.backlog.weight()).toBe(20);
    await s.finishNext();
    expect(s.backlog.busy()).toBe(false);
    expect(s.backlog.weight()).toBe(0);
  });

  it('takes every small batch queued behind a slow write in the next one, up to a flush’s weight in readings', async () => {
    const s = slowStore();
    s.backlog.add(0, 'first', 3);
    // A consumer at the live edge: many batches of a few readings each, queued behind a slow write.
    const small = Array.from({ length: 1000 }, (_, i) => `b${i}`);
    for (const b of small) s.backlog.add(0, b, 3);
    await s.finishNext();
    expect(s.flushed.at(-1)!.batches).toEqual(small); // 3,000 readings: one write, not four
    await s.finishNext();
    // Beyond a flush's weight, the rest goes in the next write.
    const many = Array.from({ length: MAX_WEIGHT_PER_FLUSH / 2 + 10 }, (_, i) => `c${i}`);
    s.backlog.add(0, 'head', 1);
    for (const b of many) s.backlog.add(0, b, 2);
    await s.finishNext();
    expect(s.flushed.at(-1)!.batches).toEqual(many.slice(0, MAX_WEIGHT_PER_FLUSH / 2));
    await s.finishNext();
    expect(s.flushed.at(-1)!.batches).toEqual(many.slice(MAX_WEIGHT_PER_FLUSH / 2));
    await s.finishNext();
    expect(s.backlog.busy()).toBe(false);
  });

  it('stores a batch heavier than a flush’s weight on its own', async () => {
    const s = slowStore();
    s.backlog.add(0, 'first', 1);
    s.backlog.add(0, 'heavy', MAX_WEIGHT_PER_FLUSH * 2);
    s.backlog.add(0, 'after', 1);
    await s.finishNext();
    expect(s.flushed.at(-1)!.batches).toEqual(['heavy']);
    await s.finishNext();
    expect(s.flushed.at(-1)!.batches).toEqual(['after']);
    await s.finishNext();
  });

  it('writes partitions side by side', () => {
    const s = slowStore();
    s.backlog.add(0, 'p0', 1);
    s.backlog.add(1, 'p1', 1);
    expect(s.flushed.map((f) => f.partition)).toEqual([0, 1]);
  });

  it('drops what waits behind a failed write on its partition, and reports it', async () => {
    const s = slowStore();
    s.backlog.add(0, 'b1', 5);
    s.backlog.add(0, 'b2', 5);
    s.backlog.add(1, 'other', 5);
    await s.failNext();
    expect(s.failures.map((f) => f.partition)).toEqual([0]);
    expect(s.flushed.filter((f) => f.partition === 0)).toEqual([{ partition: 0, batches: ['b1'] }]);
    expect(s.backlog.weight()).toBe(5); // the other partition's write is still under way
    await s.finishNext();
    expect(s.backlog.busy()).toBe(false);
  });

  it('lets a waiter for room go once the weight is down to the limit, and idle once all is stored', async () => {
    const s = slowStore();
    s.backlog.add(0, 'b1', 100);
    s.backlog.add(0, 'b2', 50);
    let roomy = false;
    let idle = false;
    void s.backlog.room(60).then(() => (roomy = true));
    void s.backlog.idle().then(() => (idle = true));
    await new Promise((r) => setImmediate(r));
    expect([roomy, idle]).toEqual([false, false]);
    await s.finishNext();
    expect([roomy, idle]).toEqual([true, false]);
    await s.finishNext();
    expect(idle).toBe(true);
  });

  it('starts a partition’s writes at most every interval, so batches judged meanwhile go in one', async () => {
    const flushed: string[][] = [];
    const backlog = createStoreBacklog<string>({
      flush: async (_partition, batches) => void flushed.push([...batches]),
      onFailure: () => undefined,
      minIntervalMs: 50,
    });
    backlog.add(0, 'b1', 1); // nothing written lately: at once
    await new Promise((r) => setImmediate(r));
    backlog.add(0, 'b2', 1);
    backlog.add(0, 'b3', 1);
    await backlog.idle();
    expect(flushed).toEqual([['b1'], ['b2', 'b3']]);
  });

  it('stores at once, without the interval, once told to hurry (the group is rebalancing)', async () => {
    const flushed: string[][] = [];
    const backlog = createStoreBacklog<string>({
      flush: async (_partition, batches) => void flushed.push([...batches]),
      onFailure: () => undefined,
      minIntervalMs: 3_600_000,
    });
    backlog.add(0, 'b1', 1); // nothing written lately: at once
    await new Promise((r) => setImmediate(r));
    backlog.add(0, 'b2', 1); // would wait the hour
    backlog.hurry();
    await backlog.idle();
    expect(flushed).toEqual([['b1'], ['b2']]);
    // Hurried only until it was empty: the interval holds again.
    backlog.add(0, 'b3', 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(flushed).toEqual([['b1'], ['b2']]);
    backlog.drop();
  });

  it('drops the batches not being written yet when told (the partitions moved)', async () => {
    const s = slowStore();
    s.backlog.add(0, 'b1', 1);
    s.backlog.add(0, 'b2', 1);
    s.backlog.drop();
    expect(s.backlog.weight()).toBe(1);
    await s.finishNext();
    expect(s.flushed).toEqual([{ partition: 0, batches: ['b1'] }]);
    expect(s.backlog.busy()).toBe(false);
  });
});
