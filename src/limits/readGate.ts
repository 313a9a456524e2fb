/**
 * A concurrency limit on history reads. The alert path and the consumers' writes share the store
 * (and its connection pool) with GraphQL queries; at most `concurrent` reads run at once per
 * replica, `queued` more wait, and past that a query is refused with STORE_BUSY (retryable), so a
 * flood of history queries can never starve the alert path or the consumers' group membership.
 */
import { ErrorCode, retryable } from '../errors.js';

export interface ReadGate {
  run<T>(read: () => Promise<T>): Promise<T>;
  stats(): { running: number; queued: number; refused: number };
}

export function createReadGate(concurrent: number, queued: number): ReadGate {
  let running = 0;
  let refused = 0;
  const waiting: (() => void)[] = [];
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  return {
    async run(read) {
      if (running >= concurrent) {
        if (waiting.length >= queued) {
          refused++;
          throw retryable(
            ErrorCode.STORE_BUSY,
            `The history store is busy (${concurrent} reads running, ${queued} waiting on this replica); retry shortly`,
            200,
          );
        }
        // The slot is handed over by release(): running stays the same.
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else running++;
      try {
        return await read();
      } finally {
        release();
      }
    },
    stats: () => ({ running, queued: waiting.length, refused }),
  };
}
