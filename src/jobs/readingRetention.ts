/**
 * Retention of reading history: every replica periodically removes the days that ended more than
 * READINGS_RETENTION ago. Purging is idempotent and addressed by `_id` only (buckets, then the day
 * document, then the sensor's range), so several replicas running it at once only repeat each other's
 * deletes, and a purge cut short by a crash is finished by the next one. A random start offset
 * spreads the replicas' runs apart. The same runs remove simulated sensors stopped longer ago than
 * SENSORS_STOPPED_RETENTION, alerts detected longer ago than ALERTS_RETENTION, and incidents
 * cleared longer ago than INCIDENTS_RETENTION.
 */
import type { Logger } from '../logger.js';
import type { PurgeResult, ReadingHistory } from '../store/readingHistory.js';

export interface ReadingRetention {
  /** Runs one purge now (also what the timer runs). */
  runOnce(now?: Date): Promise<PurgeResult>;
  dispose(): Promise<void>;
}

export function startReadingRetention(deps: {
  history: Pick<ReadingHistory, 'purgeBefore'>;
  retentionMs: number;
  checkEveryMs: number;
  stoppedSensors?: { retentionMs: number; purge(before: Date): Promise<number> };
  alerts?: { retentionMs: number; purge(before: Date): Promise<number> };
  clearedIncidents?: { retentionMs: number; purge(before: Date): Promise<number> };
  logger: Logger;
}): ReadingRetention {
  const log = deps.logger.child({ module: 'jobs.retention' });
  let running: Promise<PurgeResult> | undefined;
  let disposed = false;

  const runOnce = (now = new Date()): Promise<PurgeResult> => {
    running ??= deps.history
      .purgeBefore(new Date(now.getTime() - deps.retentionMs))
      .then(async (result) => {
        if (result.days > 0) log.info({ ...result, retentionMs: deps.retentionMs }, 'expired reading history removed');
        if (deps.alerts) {
          const removed = await deps.alerts.purge(new Date(now.getTime() - deps.alerts.retentionMs));
          if (removed > 0) log.info({ removed }, 'expired alerts removed');
        }
        if (deps.clearedIncidents) {
          const removed = await deps.clearedIncidents.purge(
            new Date(now.getTime() - deps.clearedIncidents.retentionMs),
          );
          if (removed > 0) log.info({ removed }, 'cleared incidents removed');
        }
        if (deps.stoppedSensors) {
          const removed = await deps.stoppedSensors.purge(new Date(now.getTime() - deps.stoppedSensors.retentionMs));
          if (removed > 0) log.info({ removed }, 'stopped sensors removed');
        }
        return result;
      })
      .finally(() => (running = undefined));
    return running;
  };

  const tick = (): void => {
    if (disposed) return;
    runOnce().catch((err: Error) => log.warn({ err: err.message }, 'retention run failed; next run retries'));
  };
  const first = setTimeout(tick, Math.floor(Math.random() * Math.min(deps.checkEveryMs, 60_000)));
  const timer = setInterval(tick, deps.checkEveryMs);
  first.unref();
  timer.unref();

  return {
    runOnce,
    async dispose() {
      disposed = true;
      clearTimeout(first);
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
