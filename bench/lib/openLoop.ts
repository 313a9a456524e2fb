/**
 * Open-loop load: operations are scheduled at a fixed arrival rate, whatever the system's replies
 * do, so a slow system shows as latency instead of silently lowering the load (no coordinated omission).
 */
import { sleep } from './stats.js';

/**
 * Calls `emit(n)` so that `rate` operations per second are issued for `durationMs`, in ticks of
 * `tickMs`. `emit` must not await the system under test (fire and forget, record replies elsewhere).
 * Returns how many operations were issued and the achieved rate.
 */
export async function openLoop(
  rate: number,
  durationMs: number,
  emit: (n: number) => void,
  tickMs = 5,
): Promise<{ issued: number; achievedRate: number }> {
  const start = performance.now();
  let issued = 0;
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= durationMs) break;
    const due = Math.floor((elapsed / 1000) * rate);
    if (due > issued) {
      emit(due - issued);
      issued = due;
    }
    await sleep(tickMs);
  }
  return { issued, achievedRate: issued / ((performance.now() - start) / 1000) };
}
