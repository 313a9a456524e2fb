/**
 * A figure read from an outside system at scrape time (consumer lag from Kafka), kept from blocking
 * or breaking /metrics: one read at a time, its result reused for `maxAgeMs`, a scrape waits for a
 * new read at most `waitMs` and otherwise serves the last result, and a failed read serves nothing
 * (a stale figure shown as current would mislead more than a gap in the graph).
 */

export interface CachedReadingOptions {
  /** A result younger than this is served without reading again. */
  readonly maxAgeMs: number;
  /** How long a scrape waits for a read in progress before serving the last result. */
  readonly waitMs: number;
  /** A last result older than this is not served while a read is slow. */
  readonly staleAfterMs: number;
  /** Told of each failed read (the caller decides how loudly to log it). */
  readonly onError: (err: unknown) => void;
  /** Told when a read succeeds after a failure. */
  readonly onRecovered?: () => void;
  readonly now?: () => number;
}

export function cachedReading<T>(read: () => Promise<T>, o: CachedReadingOptions): () => Promise<T | undefined> {
  const now = o.now ?? Date.now;
  let last: { value: T; at: number } | undefined;
  let inFlight: Promise<void> | undefined;
  let failing = false;

  const refresh = (): Promise<void> =>
    (inFlight ??= read()
      .then(
        (value) => {
          last = { value, at: now() };
          if (failing) o.onRecovered?.();
          failing = false;
        },
        (err: unknown) => {
          last = undefined;
          failing = true;
          o.onError(err);
        },
      )
      .finally(() => {
        inFlight = undefined;
      }));

  return async () => {
    if (last && now() - last.at < o.maxAgeMs) return last.value;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      refresh(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, o.waitMs);
      }),
    ]);
    clearTimeout(timer);
    return last && now() - last.at < o.staleAfterMs ? last.value : undefined;
  };
}
