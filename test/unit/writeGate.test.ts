/** The write gate (store/writeGate.ts): one write command in flight per process, failures included. */
import { describe, expect, it } from 'vitest';
import { createWriteGate } from '../../src/store/writeGate.js';

describe('the write gate', () => {
  it('lets one write through at a time, in arrival order, and a failed one does not block the rest', async () => {
    const gate = createWriteGate();
    let inFlight = 0;
    let most = 0;
    const order: number[] = [];
    const write = (n: number, fail = false) =>
      gate(async () => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 5 - (n % 3)));
        inFlight--;
        order.push(n);
        if (fail) throw new Error(`write ${n} failed`);
        return n;
      });
    const results = await Promise.allSettled([write(0), write(1, true), write(2), write(3), write(4, true), write(5)]);
    expect(most).toBe(1);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
  });
});
