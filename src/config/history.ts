/** Reading history: how often it is written, how long it is kept, and stopped sensors' retention. */
import { DAY, duration, int, type Declarations, type Parsed } from './values.js';

export const HISTORY_VARIABLES = {
  READINGS_RETENTION: { schema: duration(30 * DAY, 3600_000), doc: 'history kept' },
  READINGS_RETENTION_CHECK_MS: {
    schema: int(10 * 60_000, 1000, 24 * 3600_000),
    doc: 'how often each replica purges expired days',
  },
  HISTORY_WRITE_INTERVAL: {
    schema: duration(5000, 0, 60_000),
    doc: "each partition's readings are written to history at most this often (visible up to 1.5 × later)",
  },
  SENSORS_STOPPED_RETENTION: { schema: duration(DAY, 0), doc: 'stopped simulated sensors are removed after this' },
} as const satisfies Declarations;

export interface HistorySettings {
  /** Readings older than this are removed, whole days at a time. */
  readonly retentionMs: number;
  /** How often each replica looks for expired days (and stopped sensors). */
  readonly retentionCheckMs: number;
  /** Stopped simulated sensors are removed this long after their stop. */
  readonly stoppedSensorsRetentionMs: number;
  /**
   * Each partition's readings are written to history at most this often (stream/readingWriter.ts):
   * the store's work follows the fleet and this interval, not the reading rate.
   */
  readonly writeIntervalMs: number;
}

export function historySettings(e: Parsed<typeof HISTORY_VARIABLES>): HistorySettings {
  return {
    retentionMs: e.READINGS_RETENTION,
    retentionCheckMs: e.READINGS_RETENTION_CHECK_MS,
    stoppedSensorsRetentionMs: e.SENSORS_STOPPED_RETENTION,
    writeIntervalMs: e.HISTORY_WRITE_INTERVAL,
  };
}
