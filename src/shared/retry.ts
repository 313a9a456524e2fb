/**
 * The one retry policy of the project: exponential backoff (100 ms doubling, capped), for the
 * durable steps that must not give up while their dependency is down (Kafka sends, store writes,
 * alert replays). Callers decide when to stop by throwing from `beforeRetry`.
 */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Delays of an exponential backoff: `initialMs`, then doubling, at most `maxMs`; `reset()` after a success. */
export class Backoff {
  private current = 0;
  constructor(
    private readonly initialMs = 100,
    private readonly maxMs = 5000,
  ) {}

  next(): number {
    this.current = this.current === 0 ? this.initialMs : Math.min(this.current * 2, this.maxMs);
    return this.current;
  }

  reset(): void {
    this.current = 0;
  }
}

export interface RetryOptions {
  backoff?: Backoff;
  /** After each failure, before waiting: log, count, mark unhealthy; throw to give up at once (the error propagates). */
  onFailure?(err: Error, retryInMs: number): void;
  /** After waiting, before the next attempt; throw to give up (the error propagates). */
  beforeRetry?(): Promise<void> | void;
}

/** Runs `attempt` until it succeeds, or `onFailure` or `beforeRetry` throws. */
export async function retryUntilDone<T>(attempt: () => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const backoff = o.backoff ?? new Backoff();
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      const delay = backoff.next();
      o.onFailure?.(err instanceof Error ? err : new Error(String(err)), delay);
      await sleep(delay);
      await o.beforeRetry?.();
    }
  }
}

/**
 * Like Promise.all, but a failure is thrown only once every write has settled. A write left in
 * flight by a failed attempt could land after the retry and the writes that follow it, putting back
 * an older version of a document (a page replaced whole): a retry must start with nothing in flight.
 */
export async function allSettledOrThrow<T extends readonly unknown[]>(writes: {
  readonly [K in keyof T]: Promise<T[K]>;
}): Promise<T> {
  const settled = await Promise.allSettled(writes);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
