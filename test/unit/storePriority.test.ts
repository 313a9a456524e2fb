/**
 * The alert path goes first at the store (src/store/storePriority.ts): a history command waits
 * while alert-path work is under way, but never longer than its cap, so history always moves.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createStorePriority } from '../../src/store/storePriority.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

/** Settles pending promise callbacks without moving the fake clock. */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('store priority', () => {
  it('lets a history command through at once when no alert-path work is under way', async () => {
    const priority = createStorePriority(100);
    let passed = false;
    void priority.yieldToUrgent().then(() => (passed = true));
    await flush();
    expect(passed).toBe(true);
  });

  it('holds a history command until the alert-path work under way has finished', async () => {
    const priority = createStorePriority(100);
    const work = deferred();
    const urgent = priority.urgent(() => work.promise);
    let passed = false;
    void priority.yieldToUrgent().then(() => (passed = true));
    await vi.advanceTimersByTimeAsync(50);
    expect({ passed, urgentNow: priority.urgentNow() }).toEqual({ passed: false, urgentNow: 1 });
    work.resolve();
    await urgent;
    await flush();
    expect({ passed, urgentNow: priority.urgentNow() }).toEqual({ passed: true, urgentNow: 0 });
  });

  it('waits while any of several urgent works is under way', async () => {
    const priority = createStorePriority(100);
    const first = deferred();
    const second = deferred();
    void priority.urgent(() => first.promise);
    void priority.urgent(() => second.promise);
    let passed = false;
    void priority.yieldToUrgent().then(() => (passed = true));
    first.resolve();
    await flush();
    expect(passed).toBe(false);
    second.resolve();
    await flush();
    expect(passed).toBe(true);
  });

  it('lets history go after the cap when alert-path work never stops', async () => {
    const priority = createStorePriority(100);
    void priority.urgent(() => new Promise(() => undefined));
    let passed = false;
    void priority.yieldToUrgent().then(() => (passed = true));
    await vi.advanceTimersByTimeAsync(99);
    expect(passed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(passed).toBe(true);
  });

  it('counts failed urgent work as finished', async () => {
    const priority = createStorePriority(100);
    await expect(priority.urgent(() => Promise.reject(new Error('store down')))).rejects.toThrow('store down');
    expect(priority.urgentNow()).toBe(0);
  });

  it('gives no priority with a cap of 0', async () => {
    const priority = createStorePriority(0);
    void priority.urgent(() => new Promise(() => undefined));
    let passed = false;
    void priority.yieldToUrgent().then(() => (passed = true));
    await flush();
    expect(passed).toBe(true);
  });
});
