/**
 * The alert path goes first at the store. Alerts are what this API promises in real time; reading
 * history may lag a little and catch up. Both share one store (and, here, one machine), so while the
 * alert path has writes under way, each history bulk command waits for them to finish, at most
 * `maxWaitMs` per command so history always moves. Per process.
 */
export interface StorePriority {
  /** Runs alert-path store work: history commands wait while any is under way. */
  urgent<T>(work: () => Promise<T>): Promise<T>;
  /** Resolves once no urgent work is under way, or after `maxWaitMs`. */
  yieldToUrgent(): Promise<void>;
  /** Urgent work under way now. */
  urgentNow(): number;
}

/** How long one history command waits for the alert path at most (0: no priority). */
export const HISTORY_MAX_WAIT_MS = 100;

export function createStorePriority(maxWaitMs = HISTORY_MAX_WAIT_MS): StorePriority {
  let urgentNow = 0;
  /** History commands waiting: woken when urgent work reaches 0. */
  let waiters: (() => void)[] = [];
  const wakeAll = (): void => {
    const woken = waiters;
    waiters = [];
    for (const w of woken) w();
  };
  return {
    async urgent(work) {
      urgentNow++;
      try {
        return await work();
      } finally {
        if (--urgentNow === 0) wakeAll();
      }
    },
    yieldToUrgent() {
      if (urgentNow === 0 || maxWaitMs <= 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== done);
          resolve();
        }, maxWaitMs);
        const done = (): void => {
          clearTimeout(timer);
          resolve();
        };
        waiters.push(done);
      });
    },
    urgentNow: () => urgentNow,
  };
}

/** No priority (tests of one side alone, tools). */
export const NO_PRIORITY: StorePriority = {
  urgent: (work) => work(),
  yieldToUrgent: () => Promise.resolve(),
  urgentNow: () => 0,
};
