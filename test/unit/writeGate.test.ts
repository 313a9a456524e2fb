/** The store's write gate (src/store/writeGate.ts): a bound on commands in flight, in arrival order. */
import { describe, expect, it } from 'vitest';
import { createWriteGate } from '../../src/store/writeGate.js';

const tick = () => new Promise((r) => setImmediate(r));

/**
 * Ten writes through a gate of 3; a newcomer arrives `lateBy` microtasks after the first write
 * finishes, that is somewhere while its slot passes to the first waiting write.
 */
async function run(lateBy: number): Promise<{ most: number; started: number[] }> {
  const gate = createWriteGate(3);
  let inFlight = 0;
  let most = 0;
  const started: number[] = [];
  const releases: (() => void)[] = [];
  const write = (i: number) =>
    gate(async () => {
      started.push(i);
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise<void>((r) => releases.push(r));
      inFlight--;
      return i;
    });
  const writes = Array.from({ length: 10 }, (_, i) => write(i));
  await tick();
  releases.shift()!();
  for (let k = 0; k < lateBy; k++) await Promise.resolve();
  writes.push(write(10));
  while (started.length < 11 || releases.length > 0) {
    await tick();
    releases.shift()?.();
  }
  await Promise.all(writes);
  return { most, started };
}

describe('write gate', () => {
  it('never runs more than its concurrency at once, and starts waiting writes in arrival order', async () => {
    for (let lateBy = 0; lateBy < 8; lateBy++) {
      const { most, started } = await run(lateBy);
      expect(most, `newcomer ${lateBy} microtasks late`).toBe(3);
      expect(started, `newcomer ${lateBy} microtasks late`).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }
  });

  it('gives back the slot of a write that never settles, once its deadline passes', async () => {
    const gate = createWriteGate(1, 50);
    await expect(gate(() => new Promise<never>(() => undefined))).rejects.toThrow(/no reply within 50 ms/);
    expect(await gate(async () => 'next')).toBe('next');
  });

  it('frees the slot of a write that fails', async () => {
    const gate = createWriteGate(1);
    await expect(gate(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await gate(async () => 'next')).toBe('next');
  });
});
