/**
 * The public surface of one feed subscription: what its subscriber is handed, with the cursor to
 * resume after each item, through its push Sink or its async iterator; the subscriber's pace; what
 * is charged to its socket's budget; and how the subscription ends.
 *
 * Slow subscribers: backlogs (replays, alerts that waited for the store, live alerts that find the
 * client without room) are handed over at the client's pace (hasRoom); at most `maxPending` live
 * alerts are kept aside for one subscriber, the rest is read from the store later. What is queued
 * for all subscriptions of one socket, and what waits for room, is charged to its budget: past it,
 * or sitting at the pause line without reading, the socket is closed (4008) and the client resumes
 * with its last cursor. SUBSCRIBER_TOO_SLOW remains as a guard on a queue that reached `maxPending`.
 */
import { GraphQLError } from 'graphql';
import type { AlertCursor } from '../domain/alertCursor.js';
import { carryTrace, traceOf } from '../observability/tracing.js';
import { sleep } from '../shared/retry.js';
import { SUBSCRIBER_TOO_SLOW, type Delivered, type FeedRequest, type Positioned } from './feed.js';

/**
 * Heap charged to the socket's budget for each live item being handed to a client that has no room
 * for it: the entry (two fields) and its array slot, with 8-byte pointers. The item itself is
 * decoded once per replica and shared by every subscription that hears it. (Items waiting for the
 * store, or arriving meanwhile, are the server's delay: they are bounded by maxPending.)
 */
const LIVE_ENTRY_BYTES = 48;

export interface OutboxOptions<T> {
  readonly request: FeedRequest<T>;
  /** The subscriber's sensors (undefined: all). */
  readonly filter: ReadonlySet<string> | undefined;
  readonly maxPending: number;
  /** Stored items read per replay query: the queue has room while under half of it. */
  readonly pageSize: number;
  /** Heap held by one queued item, charged to its socket's budget. */
  readonly itemBytes: (item: Delivered<T>) => number;
  /** An item was handed to the subscriber. */
  readonly onDelivered: () => void;
  /** The subscription failed: what it kept aside for the subscriber is dropped. */
  readonly onFail: () => void;
  /** The subscription ended: it stops listening and waiting (called once, before the sink is told). */
  readonly onEnd: () => void;
}

export class SubscriberOutbox<T extends Positioned> implements AsyncIterableIterator<Delivered<T>> {
  /** Where the subscriber is: set once the subscription has read its start, moved by every item delivered. */
  cursor: AlertCursor | undefined;
  private readonly queue: Delivered<T>[] = [];
  /** Bytes this subscription has charged to its socket's budget (queued alerts). */
  private charged = 0;
  /** Bytes charged to the socket's budget for the live items kept aside while the client has no room. */
  private liveCharged = 0;
  private waiter: ((r: IteratorResult<Delivered<T>>) => void) | undefined;
  private failWaiter: ((e: unknown) => void) | undefined;
  private failure: unknown;
  private ended = false;
  /** Resolves once the subscriber has taken most of what is queued (or the feed ended). */
  private drained: (() => void) | undefined;

  constructor(private readonly o: OutboxOptions<T>) {}

  /** The subscription ended: closed, or failed and told so. */
  get done(): boolean {
    return this.ended;
  }

  /**
   * Whether the subscriber can take more at once: its transport holds no more than a reading
   * client's socket does (its `pauseLineBytes`), or its queue under half a
   * page and a quarter of the budget. Backlogs (replays, alerts that waited for the store) go out
   * no faster, so a burst never passes the budget of a client that reads, while one that does not
   * read still crosses that line, and is closed.
   */
  hasRoom(): boolean {
    const sink = this.o.request.sink;
    if (sink) return sink.backlog() <= sink.pauseLineBytes;
    const budget = this.o.request.budget;
    return this.queue.length <= this.o.pageSize / 2 && (!budget || this.charged <= budget.limit / 4);
  }

  async waitForRoom(): Promise<void> {
    if (this.o.request.sink) {
      while (!this.ended && !this.hasRoom()) await sleep(10);
      return;
    }
    if (this.ended || this.hasRoom()) return;
    return new Promise((resolve) => (this.drained = resolve));
  }

  private wakeDrained(): void {
    if (this.drained && (this.ended || this.hasRoom())) {
      const d = this.drained;
      this.drained = undefined;
      d();
    }
  }

  /** Charges the socket's budget for `count` live items kept aside (past it, the socket is closed). */
  keepAside(count: number): void {
    const budget = this.o.request.budget;
    if (!budget || this.ended || this.failure !== undefined) return;
    const bytes = count * LIVE_ENTRY_BYTES;
    if (bytes > this.liveCharged) budget.charge(bytes - this.liveCharged);
    else budget.release(this.liveCharged - bytes);
    this.liveCharged = bytes;
  }

  /** Hands an item to the subscriber, unless it is not one of its sensors or is at or before its cursor. */
  deliver(alert: T): void {
    if (this.ended || !this.cursor) return;
    if (this.o.filter && !this.o.filter.has(alert.sensorId)) return;
    if (!this.cursor.advance(alert.position)) return;
    this.o.onDelivered();
    const sink = this.o.request.sink;
    if (sink) return sink.push(alert, this.cursor.encode());
    const item: Delivered<T> = { ...alert, cursor: this.cursor.encode() };
    // A traced alert's trace goes with the copy, for its delivery span (observability/tracing.ts).
    const trace = traceOf(alert);
    if (trace !== undefined) carryTrace(item, trace);
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      this.failWaiter = undefined;
      w({ value: item, done: false });
      return;
    }
    if (this.queue.length >= this.o.maxPending) return this.overflow();
    this.queue.push(item);
    const budget = this.o.request.budget;
    if (budget) {
      const bytes = this.o.itemBytes(item);
      this.charged += bytes;
      // Over budget: the socket's owner closes it, which ends this subscription too.
      budget.charge(bytes);
    }
  }

  private overflow(): void {
    const { maxPending } = this.o;
    this.fail(
      new GraphQLError(
        `Subscriber fell more than ${maxPending} alerts behind; resubscribe with "after" set to the last cursor received`,
        {
          extensions: { code: SUBSCRIBER_TOO_SLOW, maxPending },
        },
      ),
    );
  }

  private releaseAll(): void {
    this.o.request.budget?.release(this.charged + this.liveCharged);
    this.charged = 0;
    this.liveCharged = 0;
  }

  /** Ends the subscription with `err`: a sink is told at once, an iterator at its next pull. */
  fail(err: unknown): void {
    if (this.ended || this.failure !== undefined) return;
    this.failure = err;
    this.o.onFail();
    this.queue.length = 0;
    this.releaseAll();
    if (this.o.request.sink) return this.dispose();
    if (this.failWaiter) {
      const f = this.failWaiter;
      this.waiter = undefined;
      this.failWaiter = undefined;
      this.dispose();
      f(err);
    }
  }

  private dispose(): void {
    if (this.ended) return;
    this.ended = true;
    this.o.onEnd();
    this.wakeDrained();
    this.queue.length = 0;
    this.releaseAll();
    this.o.request.sink?.end(this.failure);
  }

  next(): Promise<IteratorResult<Delivered<T>>> {
    if (this.failure !== undefined && !this.ended) {
      const err = this.failure;
      this.dispose();
      return Promise.reject(err instanceof Error ? err : new Error('alert feed failed'));
    }
    const value = this.queue.shift();
    if (value) {
      const budget = this.o.request.budget;
      if (budget) {
        const bytes = this.o.itemBytes(value);
        this.charged -= bytes;
        budget.release(bytes);
      }
      this.wakeDrained();
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failWaiter = reject;
    });
  }

  return(): Promise<IteratorResult<Delivered<T>>> {
    const w = this.waiter;
    this.waiter = undefined;
    this.failWaiter = undefined;
    this.dispose();
    w?.({ value: undefined, done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(err?: unknown): Promise<IteratorResult<Delivered<T>>> {
    this.dispose();
    return Promise.reject(err instanceof Error ? err : new Error('alert feed failed'));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Delivered<T>> {
    return this;
  }
}
