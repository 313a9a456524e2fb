/**
 * The ordered shutdown of a replica: named steps, run one after the other, each with its own time
 * limit. A step that fails or overruns is logged and the next one runs anyway; an overrun also
 * calls the step's `onOverrun` (e.g. the reading writer stops retrying: what is not durable is not
 * committed, and Kafka hands it to another replica).
 */
import type { Logger } from '../logger.js';

export interface ShutdownStep {
  readonly name: string;
  readonly timeoutMs: number;
  run(): unknown;
  onOverrun?(): void;
}

export async function runShutdown(steps: readonly ShutdownStep[], log: Logger): Promise<void> {
  for (const step of steps) {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const overrun = new Promise<'overrun'>((resolve) => {
      timer = setTimeout(() => resolve('overrun'), step.timeoutMs);
      timer.unref();
    });
    try {
      const outcome = await Promise.race([Promise.resolve().then(() => step.run()), overrun]);
      if (outcome === 'overrun') {
        log.warn({ step: step.name, timeoutMs: step.timeoutMs }, 'shutdown step overran its time limit; going on');
        step.onOverrun?.();
      } else {
        log.debug({ step: step.name, ms: Date.now() - started }, 'shutdown step done');
      }
    } catch (err) {
      log.warn({ step: step.name, err: (err as Error).message }, 'shutdown step failed; going on');
    } finally {
      clearTimeout(timer);
    }
  }
}
