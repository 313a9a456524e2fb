/**
 * Live readings (readingUpdates): the per-sensor conflation with a fake clock, one subscriber's
 * iterator over a fake fan-out, the wire format of a batch, and the subscription's argument checks.
 * test/integration/readingUpdates.test.ts runs the same code on the real Kafka and Redis.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Principal } from '../../src/auth/credentials.js';
import type { Reading } from '../../src/domain/reading.js';
import {
  MAX_IDLE_SENSORS,
  openLiveReadings,
  ReadingConflator,
  WAITING_READING_BYTES,
} from '../../src/fanout/liveReadings.js';
import { decodeReadings, encodeReadings, type ReadingListener } from '../../src/fanout/readingFanout.js';
import { createSocketBudget } from '../../src/fanout/socketBudget.js';
import { MAX_UPDATES_PER_SECOND, readingUpdatesSubscribe } from '../../src/resolvers/readingUpdates.resolver.js';
import type { Services } from '../../src/resolvers/services.js';

const T0 = Date.parse('2026-12-07T10:00:00Z');

function reading(sensorId: string, second: number, temperature = 20 + second): Reading {
  return {
    sensorId,
    ts: new Date(T0 + second * 1000),
    temperature,
    humidity: 40,
    location: { lat: 52.5, lon: 13.4 },
  };
}

/** Everything that may go at `now`, as [sensor, temperature, skipped]. */
function drain(c: ReadingConflator, now: number): [string, number, number][] {
  const out: [string, number, number][] = [];
  for (let r = c.take(now); r; r = c.take(now)) out.push([r.reading.sensorId, r.reading.temperature, r.skipped]);
  return out;
}

describe('conflation with maxPerSecond', () => {
  it('sends a sensor its first reading at once, then only its latest once its interval is over', () => {
    const c = new ReadingConflator({ maxPerSecond: 2, maxQueued: 10 });
    c.offer(reading('a', 1, 30), 0);
    expect(drain(c, 0)).toEqual([['a', 30, 0]]);
    for (let i = 2; i <= 6; i++) c.offer(reading('a', i, 30 + i), 100);
    expect(drain(c, 100)).toEqual([]);
    expect(c.waiting()).toBe(1);
    expect(c.dueAt()).toBe(500);
    expect(drain(c, 499)).toEqual([]);
    // The last of the five, saying four were let go.
    expect(drain(c, 500)).toEqual([['a', 36, 4]]);
    expect(c.waiting()).toBe(0);
    expect(c.skipped()).toBe(4);
  });

  it("keeps each sensor's pace apart: a busy sensor does not hold back a quiet one", () => {
    const c = new ReadingConflator({ maxPerSecond: 1, maxQueued: 10 });
    c.offer(reading('busy', 1), 0);
    expect(drain(c, 0)).toEqual([['busy', 21, 0]]);
    c.offer(reading('busy', 2), 10);
    c.offer(reading('busy', 3), 20);
    c.offer(reading('quiet', 1), 30);
    expect(drain(c, 30)).toEqual([['quiet', 21, 0]]);
    c.offer(reading('quiet', 2), 1000);
    expect(drain(c, 1000)).toEqual([['busy', 23, 1]]);
    expect(drain(c, 1030)).toEqual([['quiet', 22, 0]]);
  });

  it('holds at most one reading per sensor, however many arrive', () => {
    const c = new ReadingConflator({ maxPerSecond: 1, maxQueued: 10 });
    for (let i = 0; i < 10_000; i++) c.offer(reading(`s-${i % 50}`, i), i % 7);
    expect(c.waiting()).toBeLessThanOrEqual(50);
    const sent = drain(c, 1_000_000);
    expect(sent).toHaveLength(50);
    // Each sensor's is its latest reading, and every reading heard is sent or counted as let go.
    for (const [sensor, temperature] of sent) expect(temperature).toBe(20 + 9950 + Number(sensor.slice(2)));
    expect(sent.length + c.skipped()).toBe(10_000);
  });

  it('says when to look again only while a reading waits for its turn', () => {
    const c = new ReadingConflator({ maxPerSecond: 4, maxQueued: 10 });
    expect(c.dueAt()).toBeUndefined();
    c.offer(reading('a', 1), 0);
    expect(c.dueAt()).toBeUndefined(); // it may go now
    drain(c, 0);
    expect(c.dueAt()).toBeUndefined(); // nothing waits
    c.offer(reading('a', 2), 10);
    expect(c.dueAt()).toBe(250);
  });
});

describe('conflation without maxPerSecond', () => {
  it('sends every reading, in the order heard, to a subscriber that keeps up', () => {
    const c = new ReadingConflator({ maxQueued: 5 });
    const sent: [string, number, number][] = [];
    for (let i = 1; i <= 20; i++) {
      c.offer(reading(i % 2 ? 'a' : 'b', i), 0);
      sent.push(...drain(c, 0));
    }
    expect(sent.map(([s, t]) => `${s}${t}`)).toEqual(
      Array.from({ length: 20 }, (_, k) => `${(k + 1) % 2 ? 'a' : 'b'}${21 + k}`),
    );
    expect(c.skipped()).toBe(0);
  });

  it('queues for one that falls behind, then keeps only the latest reading of each sensor', () => {
    const c = new ReadingConflator({ maxQueued: 5 });
    c.offer(reading('a', 1), 0);
    c.offer(reading('b', 2), 0);
    c.offer(reading('a', 3), 0);
    expect(c.waiting()).toBe(3); // within the bound: nothing conflated yet
    for (let i = 4; i <= 12; i++) c.offer(reading(i % 2 ? 'a' : 'b', i), 0);
    expect(c.waiting()).toBeLessThanOrEqual(5);
    const sent = drain(c, 0);
    // The latest of each sensor is among what goes, last of its sensor.
    expect(sent.filter(([s]) => s === 'a').at(-1)![1]).toBe(31);
    expect(sent.filter(([s]) => s === 'b').at(-1)![1]).toBe(32);
    // Every reading heard was sent or counted as let go, on the update of its sensor that followed.
    expect(sent.length + sent.reduce((n, [, , skipped]) => n + skipped, 0)).toBe(12);
  });

  it('never lets the queue grow past the sensors it names when they outnumber the bound', () => {
    const c = new ReadingConflator({ maxQueued: 10 });
    for (let i = 0; i < 100_000; i++) c.offer(reading(`s-${i % 300}`, i), 0);
    expect(c.waiting()).toBeLessThanOrEqual(600);
    const sent = drain(c, 0);
    expect(new Set(sent.map(([s]) => s)).size).toBe(300);
  });
});

describe('every sensor moves forward in time', () => {
  it('drops a reading not newer than the last one heard for its sensor', () => {
    for (const maxPerSecond of [undefined, 5]) {
      const c = new ReadingConflator({ maxPerSecond, maxQueued: 10 });
      c.offer(reading('a', 5), 0);
      c.offer(reading('a', 3), 0); // fetched again after a rebalance, say
      c.offer(reading('a', 5, 99), 0);
      expect(drain(c, 10_000)).toEqual([['a', 25, 0]]);
      c.offer(reading('a', 4), 20_000);
      expect(drain(c, 30_000)).toEqual([]);
    }
  });
});

describe('what a subscriber remembers of its sensors', () => {
  const FLEET = 100_000;

  it('remembers at most MAX_IDLE_SENSORS idle sensors, however many distinct sensors it hears', () => {
    for (const maxPerSecond of [undefined, 2]) {
      const c = new ReadingConflator({ maxPerSecond, maxQueued: 10 });
      let sent = 0;
      for (let i = 0; i < FLEET; i++) {
        c.offer(reading(`s-${i}`, 1), i);
        sent += drain(c, i).length;
      }
      // With a rate, the sensors still in their interval (the last 500 ms) are kept besides.
      expect(c.tracked()).toBeLessThanOrEqual(MAX_IDLE_SENSORS + (maxPerSecond ? 500 : 0));
      expect(sent).toBe(FLEET);
    }
  });

  it('still holds sensors that stay active to their rate, sending their latest reading', () => {
    const c = new ReadingConflator({ maxPerSecond: 1, maxQueued: 10 });
    const sent = new Map<string, number[]>();
    // Every millisecond five new sensors are heard once, and each of three busy ones every 10 ms;
    // a quiet one is heard twice a second, the second time within its interval, while thousands
    // of sensors go idle around it.
    const seconds = FLEET / 5000;
    for (let ms = 0; ms < seconds * 1000; ms++) {
      for (let k = 0; k < 5; k++) c.offer(reading(`once-${ms}-${k}`, 1), ms);
      if (ms % 10 === 0) for (const s of ['a', 'b', 'c']) c.offer(reading(s, ms / 10, ms), ms);
      if (ms % 1000 === 5 || ms % 1000 === 900) c.offer(reading('quiet', ms / 10, ms), ms);
      for (let r = c.take(ms); r; r = c.take(ms)) {
        const times = sent.get(r.reading.sensorId) ?? [];
        times.push(ms);
        sent.set(r.reading.sensorId, times);
        // What goes is the latest heard of its sensor.
        if (['a', 'b', 'c'].includes(r.reading.sensorId)) expect(r.reading.temperature).toBe(ms - (ms % 10));
        // The quiet one's reading within its interval waited, and was replaced by the next one.
        if (r.reading.sensorId === 'quiet') expect([r.reading.temperature, r.skipped]).toEqual([ms, ms > 5 ? 1 : 0]);
      }
    }
    expect(c.tracked()).toBeLessThanOrEqual(MAX_IDLE_SENSORS + 5000 + 4);
    for (const s of ['a', 'b', 'c', 'quiet']) {
      const times = sent.get(s)!;
      expect(times.length).toBe(seconds);
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(1000);
    }
  });

  it('takes a forgotten sensor back as a new one: its next reading goes at once, then at its rate', () => {
    const c = new ReadingConflator({ maxPerSecond: 1, maxQueued: 10 });
    c.offer(reading('back', 10), 0);
    expect(drain(c, 0)).toEqual([['back', 30, 0]]);
    for (let i = 0; i < FLEET; i++) {
      c.offer(reading(`s-${i}`, 1), 1000 + i);
      drain(c, 1000 + i);
    }
    const now = 1000 + FLEET;
    // Forgotten with its last timestamp: even a reading older than the one it sent is taken in.
    c.offer(reading('back', 5), now);
    expect(drain(c, now)).toEqual([['back', 25, 0]]);
    c.offer(reading('back', 6), now + 1);
    c.offer(reading('back', 7), now + 2);
    expect(drain(c, now + 999)).toEqual([]);
    expect(drain(c, now + 1000)).toEqual([['back', 27, 1]]);
    // Once it is known again, an older reading is dropped as before.
    c.offer(reading('back', 6), now + 5000);
    expect(drain(c, now + 5000)).toEqual([]);
    expect(c.tracked()).toBeLessThanOrEqual(MAX_IDLE_SENSORS + 1);
  });
});

/** A fan-out in memory: what `emit` sends reaches the listeners of its sensor, and those of all. */
function fakeFanout() {
  const listeners = new Set<{ ids?: Set<string>; fn: ReadingListener }>();
  return {
    listeners,
    listen: vi.fn(async (ids: readonly string[] | undefined, fn: ReadingListener) => {
      const entry = { ids: ids ? new Set(ids) : undefined, fn };
      listeners.add(entry);
      return () => listeners.delete(entry);
    }),
    emit(r: Reading) {
      for (const l of listeners) if (!l.ids || l.ids.has(r.sensorId)) l.fn(r);
    },
  };
}

describe("one subscriber's live readings", () => {
  afterEach(() => vi.useRealTimers());

  it('hands out the readings of its sensors as they come, and stops listening when ended', async () => {
    const fanout = fakeFanout();
    const live = openLiveReadings(fanout, { sensorIds: ['a'], maxPerSecond: undefined, maxQueued: 100 });
    const first = live.next();
    await Promise.resolve();
    fanout.emit(reading('b', 1));
    fanout.emit(reading('a', 2));
    expect((await first).value).toEqual({ reading: reading('a', 2), skipped: 0 });
    await live.return!();
    await Promise.resolve();
    expect(fanout.listeners.size).toBe(0);
    expect(await live.next()).toEqual({ value: undefined, done: true });
  });

  it('sends a waiting reading when its sensor may send again, the latest one', async () => {
    vi.useFakeTimers({ now: T0 });
    const fanout = fakeFanout();
    const live = openLiveReadings(fanout, { sensorIds: undefined, maxPerSecond: 1, maxQueued: 100 });
    await Promise.resolve();
    fanout.emit(reading('a', 1));
    expect((await live.next()).value).toMatchObject({ reading: { temperature: 21 }, skipped: 0 });
    const next = live.next();
    fanout.emit(reading('a', 2));
    fanout.emit(reading('a', 3));
    let settled = false;
    void next.then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect((await next).value).toMatchObject({ reading: { temperature: 23 }, skipped: 1 });
    await live.return!();
  });

  it("charges the readings waiting for a slow client to its socket's budget, and frees them at the end", async () => {
    const fanout = fakeFanout();
    const budget = createSocketBudget(1_000_000, () => undefined);
    const live = openLiveReadings(fanout, { sensorIds: undefined, maxPerSecond: undefined, maxQueued: 100, budget });
    await Promise.resolve();
    for (let i = 1; i <= 10; i++) fanout.emit(reading('a', i));
    expect(budget.used()).toBe(10 * WAITING_READING_BYTES);
    await live.next();
    expect(budget.used()).toBe(9 * WAITING_READING_BYTES);
    await live.return!();
    expect(budget.used()).toBe(0);
  });
});

describe('the wire format of a batch', () => {
  it('carries every field of every reading', () => {
    const batch = [reading('boiler-7', 1, 81.25), { ...reading('x:y.z-1', 2), location: { lat: -33.9, lon: 151.2 } }];
    expect(decodeReadings(encodeReadings(batch))).toEqual(batch);
  });

  it('refuses what is not a batch of readings', () => {
    for (const text of ['{}', '[["a",1,2,3,4]]', '[["a","1",2,3,4,5]]', '[[1,1,2,3,4,5]]', 'nope'])
      expect(() => decodeReadings(text)).toThrow();
  });
});

describe('readingUpdates arguments', () => {
  const services = { liveReadings: fakeFanout() } as unknown as Services;
  const admin: Principal = { id: 'admin', role: 'admin', sensors: undefined, expiresAt: undefined };
  const scoped: Principal = { id: 'viewer', role: 'viewer', sensors: new Set(['mine']), expiresAt: undefined };
  const codeOf = (fn: () => unknown): unknown => {
    try {
      fn();
    } catch (err) {
      return (err as { extensions?: { code?: unknown; field?: unknown } }).extensions;
    }
    return undefined;
  };

  it('refuses maxPerSecond outside 1..MAX_UPDATES_PER_SECOND with BAD_USER_INPUT', () => {
    for (const maxPerSecond of [0, -1, MAX_UPDATES_PER_SECOND + 1])
      expect(codeOf(() => readingUpdatesSubscribe(services, admin)({ maxPerSecond }))).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'maxPerSecond',
      });
    for (const maxPerSecond of [1, MAX_UPDATES_PER_SECOND, null])
      void readingUpdatesSubscribe(services, admin)({ maxPerSecond }).return!();
  });

  it('limits sensorIds like overheatAlerts, and keeps a scoped credential to its sensors', () => {
    const many = Array.from({ length: 1001 }, (_, i) => `s-${i}`);
    expect(codeOf(() => readingUpdatesSubscribe(services, admin)({ sensorIds: many }))).toMatchObject({
      code: 'LIMIT_EXCEEDED',
    });
    expect(codeOf(() => readingUpdatesSubscribe(services, scoped)({ sensorIds: ['theirs'] }))).toMatchObject({
      code: 'FORBIDDEN',
    });
    const fanout = services.liveReadings as ReturnType<typeof fakeFanout>;
    fanout.listen.mockClear();
    void readingUpdatesSubscribe(services, scoped)({}).return!();
    expect(fanout.listen.mock.calls[0]![0]).toEqual(['mine']);
  });
});
