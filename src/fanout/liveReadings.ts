/**
 * One `readingUpdates` subscriber's live readings: heard from the reading fan-out
 * (fanout/readingFanout.ts), handed out as the client takes them, conflated per sensor so that
 * memory stays bounded and the latest value always wins.
 *
 * - With `maxPerSecond`, each sensor sends at most that many updates a second: a reading that
 *   arrives before its sensor may send again waits, and a newer reading of the sensor replaces it.
 *   So at most one reading per sensor waits, and the one that goes is the latest.
 * - Without it, every reading goes, in the order heard, while the client keeps up. A client that
 *   does not (its socket's unsent bytes past the line where the server stops pulling, see
 *   http/subscriptionServer.ts) lets readings queue; past `maxQueued` the queue is conflated to
 *   the latest reading of each sensor, so it never grows past the sensors it names.
 * - A reading not newer than the last one taken in for its sensor (fetched again after a
 *   rebalance, or a late publisher) is dropped: a sensor's updates only move forward in time.
 *
 * Every update says how many readings of its sensor were conflated away before it (`skipped`).
 * Readings waiting are charged to the socket's budget, like queued alerts (fanout/socketBudget.ts).
 *
 * What is remembered per sensor is bounded: a sensor is idle once nothing of it waits and, with a
 * rate, its interval since its last update is over. At most MAX_IDLE_SENSORS idle sensors are
 * remembered, the most recently active; the others are forgotten. So a subscriber holds at most
 * MAX_IDLE_SENSORS idle sensors, plus one per reading waiting (charged to the budget), plus, with a
 * rate, one per update handed out within the last interval (at most a second of what the client
 * took). A sensor still in its interval is kept: forgetting it would let it send again at once,
 * past maxPerSecond. An idle sensor has no `skipped` to lose (the count goes with the update that
 * follows it, and none waits). What forgetting loses is its last timestamp: a reading of a
 * forgotten sensor is taken in as its first, so the "only forward in time" guarantee holds for a
 * sensor while it is active or among the last MAX_IDLE_SENSORS idle sensors heard, not beyond.
 */
import type { Reading } from '../domain/reading.js';
import type { ReadingFanout } from './readingFanout.js';
import type { SocketBudget } from './socketBudget.js';

/** A reading handed to the subscriber, and how many of its sensor's readings were let go before it. */
export interface LiveReading {
  readonly reading: Reading;
  readonly skipped: number;
}

/** What one waiting reading holds on the heap (the object, its date and location; high side). */
export const WAITING_READING_BYTES = 200;

/**
 * Idle sensors remembered per subscriber. One costs about 300 bytes (its state object and its
 * entries in two maps; the id string is shared with the reading): measured, a subscriber that heard
 * 1M distinct sensors retains 1.2 MB, where without the bound it retained 179 MB (every sensor
 * ever heard, for as long as it subscribes).
 */
export const MAX_IDLE_SENSORS = 4096;

interface SensorState {
  readonly sensorId: string;
  /** Timestamp (ms) of the newest reading taken in: older ones are dropped. */
  lastTs: number;
  /** With a rate: when its last update went, and the reading waiting for its turn. */
  sentAt: number;
  waiting: Reading | undefined;
  /** In the ready queue. */
  ready: boolean;
  /** Without a rate: its readings in the queue. */
  queued: number;
  /** Readings let go since its last update. */
  skipped: number;
}

/**
 * The conflation itself, clock given: `offer` what is heard, `take` what may go now, `dueAt` says
 * when something waiting may go (a timer's business). No timers, no I/O: unit-tested with a fake clock.
 */
export class ReadingConflator {
  /** Every sensor remembered: the idle ones below, and those with something waiting or cooling. */
  private readonly sensors = new Map<string, SensorState>();
  /** Idle sensors, idle the longest first: in the order they became idle or were last heard. */
  private readonly idle = new Map<string, SensorState>();
  /** With a rate: sensors whose reading may go, in the order they became ready. */
  private ready: SensorState[] = [];
  private readyHead = 0;
  /**
   * With a rate: sensors that sent, in the order they sent. Every sensor waits the same interval,
   * so this is also the order in which they may send again: its head is the next to come due.
   */
  private cooling: { state: SensorState; until: number }[] = [];
  private coolingHead = 0;
  /** Without a rate: readings in the order heard. */
  private queue: Reading[] = [];
  private queueHead = 0;
  /** Without a rate: the queue is conflated when it grows past this. */
  private compactAt: number;
  private readonly intervalMs: number | undefined;
  private readonly maxQueued: number;
  private waitingCount = 0;
  private skippedTotal = 0;

  constructor(options: { maxPerSecond?: number | undefined; maxQueued: number }) {
    this.intervalMs = options.maxPerSecond === undefined ? undefined : 1000 / options.maxPerSecond;
    this.compactAt = options.maxQueued;
    this.maxQueued = options.maxQueued;
  }

  /** Readings waiting to go. */
  waiting(): number {
    return this.waitingCount;
  }

  /** Readings let go (conflated) so far. */
  skipped(): number {
    return this.skippedTotal;
  }

  /** Sensors remembered (idle or not), for tests and metrics. */
  tracked(): number {
    return this.sensors.size;
  }

  offer(reading: Reading, now: number): void {
    this.settle(now);
    const ts = reading.ts.getTime();
    let state = this.sensors.get(reading.sensorId);
    if (!state) {
      state = {
        sensorId: reading.sensorId,
        lastTs: -Infinity,
        sentAt: -Infinity,
        waiting: undefined,
        ready: false,
        queued: 0,
        skipped: 0,
      };
      this.sensors.set(reading.sensorId, state);
    } else if (this.idle.delete(reading.sensorId) && ts <= state.lastTs) {
      // Heard, though dropped: it stays idle, now the most recently heard.
      this.idle.set(reading.sensorId, state);
    }
    if (ts <= state.lastTs) return;
    state.lastTs = ts;
    if (this.intervalMs === undefined) {
      state.queued++;
      this.queue.push(reading);
      this.waitingCount++;
      if (this.waitingCount > this.compactAt) this.compact();
      return;
    }
    if (state.waiting) {
      state.skipped++;
      this.skippedTotal++;
    } else this.waitingCount++;
    state.waiting = reading;
    if (!state.ready && now >= state.sentAt + this.intervalMs) this.makeReady(state);
  }

  /** The next reading that may go now, if any. */
  take(now: number): LiveReading | undefined {
    if (this.intervalMs === undefined) {
      if (this.queueHead >= this.queue.length) return undefined;
      const reading = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as unknown as Reading;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
      }
      this.waitingCount--;
      const state = this.sensors.get(reading.sensorId)!;
      const skipped = state.skipped;
      state.skipped = 0;
      if (--state.queued === 0) this.makeIdle(state);
      return { reading, skipped };
    }
    this.settle(now);
    if (this.readyHead >= this.ready.length) return undefined;
    const state = this.ready[this.readyHead++]!;
    if (this.readyHead >= this.ready.length) {
      this.ready = [];
      this.readyHead = 0;
    }
    const reading = state.waiting!;
    const skipped = state.skipped;
    state.waiting = undefined;
    state.ready = false;
    state.skipped = 0;
    state.sentAt = now;
    this.waitingCount--;
    this.cooling.push({ state, until: now + this.intervalMs });
    return { reading, skipped };
  }

  /**
   * When to look again for a reading waiting for its sensor's turn: the next sensor to come out of
   * its interval (it may have nothing waiting, then the one after it is next). Undefined when none
   * waits for its turn. Each sensor that sent is looked at once, so this costs no more than sending.
   */
  dueAt(): number | undefined {
    if (this.intervalMs === undefined || this.readyHead < this.ready.length || this.waitingCount === 0)
      return undefined;
    return this.cooling[this.coolingHead]?.until;
  }

  private makeReady(state: SensorState): void {
    state.ready = true;
    this.ready.push(state);
  }

  /**
   * With a rate: sensors whose interval ran out may go if a reading waits, else they are idle.
   * Called by `offer` too, so that a sensor heard after its interval is idle or ready by then, and
   * an entry is never overtaken by a newer one of its sensor; the check below keeps it that way
   * should that change (a sensor still cooling must not be made idle).
   */
  private settle(now: number): void {
    if (this.intervalMs === undefined) return;
    while (this.coolingHead < this.cooling.length && this.cooling[this.coolingHead]!.until <= now) {
      const { state, until } = this.cooling[this.coolingHead++]!;
      if (until !== state.sentAt + this.intervalMs || state.ready) continue;
      if (state.waiting) this.makeReady(state);
      else this.makeIdle(state);
    }
    if (this.coolingHead > 1024 && this.coolingHead * 2 > this.cooling.length) {
      this.cooling = this.cooling.slice(this.coolingHead);
      this.coolingHead = 0;
    }
  }

  /** Remembers an idle sensor, forgetting the one idle the longest past MAX_IDLE_SENSORS. */
  private makeIdle(state: SensorState): void {
    this.idle.set(state.sensorId, state);
    if (this.idle.size <= MAX_IDLE_SENSORS) return;
    const oldest = this.idle.keys().next().value!;
    this.idle.delete(oldest);
    this.sensors.delete(oldest);
  }

  /** Keeps the latest reading of each sensor in the queue, in the order those were heard. */
  private compact(): void {
    const seen = new Set<string>();
    const kept: Reading[] = [];
    for (let i = this.queue.length - 1; i >= this.queueHead; i--) {
      const r = this.queue[i]!;
      if (seen.has(r.sensorId)) {
        const state = this.sensors.get(r.sensorId)!;
        state.skipped++;
        state.queued--;
        this.skippedTotal++;
      } else {
        seen.add(r.sensorId);
        kept.push(r);
      }
    }
    this.queue = kept.reverse();
    this.queueHead = 0;
    this.waitingCount = kept.length;
    // A subscription to more sensors than maxQueued keeps one reading of each: conflating again at
    // every reading would cost the whole queue each time, so the next one waits for it to double.
    this.compactAt = Math.max(this.maxQueued, 2 * kept.length);
  }
}

/** One subscriber's live readings, as an async iterator a GraphQL subscription returns. */
export function openLiveReadings(
  fanout: Pick<ReadingFanout, 'listen'>,
  options: {
    sensorIds: readonly string[] | undefined;
    maxPerSecond: number | undefined;
    /** Without maxPerSecond: readings queued for a client that does not keep up, before conflating. */
    maxQueued: number;
    budget?: SocketBudget | undefined;
    now?: () => number;
  },
): AsyncIterableIterator<LiveReading> {
  const now = options.now ?? Date.now;
  const conflator = new ReadingConflator({ maxPerSecond: options.maxPerSecond, maxQueued: options.maxQueued });
  let charged = 0;
  let closed = false;
  let waiter: ((result: IteratorResult<LiveReading>) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Infinity;

  const recharge = (): void => {
    const bytes = conflator.waiting() * WAITING_READING_BYTES;
    if (!options.budget || bytes === charged) return;
    if (bytes > charged) options.budget.charge(bytes - charged);
    else options.budget.release(charged - bytes);
    charged = bytes;
  };
  /** Hands the waiting client the next reading that may go, or sets a timer for when one may. */
  const pump = (): void => {
    if (!waiter || closed) return;
    const next = conflator.take(now());
    recharge();
    if (next) {
      const resolve = waiter;
      waiter = undefined;
      resolve({ value: next, done: false });
      return;
    }
    // One timer, for the earliest time a waiting reading may go.
    const due = conflator.dueAt();
    if (due !== undefined && due < timerAt) {
      clearTimeout(timer);
      timerAt = due;
      timer = setTimeout(
        () => {
          timer = undefined;
          timerAt = Infinity;
          pump();
        },
        Math.max(0, due - now()),
      );
    }
  };
  const listening = fanout.listen(options.sensorIds, (reading) => {
    if (closed) return;
    conflator.offer(reading, now());
    recharge();
    pump();
  });
  const finish = (): Promise<IteratorResult<LiveReading>> => {
    if (!closed) {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      timerAt = Infinity;
      if (charged > 0) options.budget?.release(charged);
      charged = 0;
      void listening.then((stop) => stop());
      const resolve = waiter;
      waiter = undefined;
      resolve?.({ value: undefined, done: true });
    }
    return Promise.resolve({ value: undefined, done: true });
  };

  return {
    next() {
      if (closed) return Promise.resolve({ value: undefined, done: true });
      return new Promise<IteratorResult<LiveReading>>((resolve) => {
        waiter = resolve;
        pump();
      });
    },
    return: finish,
    throw: finish,
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
