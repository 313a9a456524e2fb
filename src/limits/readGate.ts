/**
 * A concurrency limit on history reads. The alert path and the consumers' writes share the store
 * (and its connection pool) with GraphQL queries; at most `concurrent` reads run at once per
 * replica, `queued` more wait, and past that a query is refused with STORE_BUSY (retryable), so a
 * flood of history queries can never starve the alert path or the consumers' group membership.
 */
import pLimit from 'p-limit';
import { ErrorCode, retryable } from '../errors.js';

export interface ReadGate {
  run<T>(read: () => Promise<T>): Promise<T>;
  stats(): { running: number; queued: number; refused: number };
}

/** p-limit runs and queues the reads; the gate adds the bound on the queue and the refusal. */
export function createReadGate(concurrent: number, queued: number): ReadGate {
  const limit = pLimit(concurrent);
  let refused = 0;
  return {
    run(read) {
      if (limit.activeCount >= concurrent && limit.pendingCount >= queued) {
        refused++;
        return Promise.reject(
          retryable(
            ErrorCode.STORE_BUSY,
            `The history store is busy (${concurrent} reads running, ${queued} waiting on this replica); retry shortly`,
            200,
          ),
        );
      }
      return limit(read);
    },
    stats: () => ({ running: limit.activeCount, queued: limit.pendingCount, refused }),
  };
}
