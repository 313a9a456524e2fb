/** Readings: what the pipeline accepts (temperatures, age, size); the rest is dead-lettered. */
import { DAY, int, num, type Declarations, type Parsed } from './values.js';

export const READING_VARIABLES = {
  READING_TEMPERATURE_MIN_C: { schema: num(-60), doc: 'lowest valid temperature' },
  READING_TEMPERATURE_MAX_C: { schema: num(200), doc: 'highest valid temperature' },
  READING_MAX_AGE_MS: { schema: int(7 * DAY, 1000, 365 * DAY), doc: 'older readings are refused' },
  READING_MAX_FUTURE_MS: { schema: int(5 * 60_000, 0, DAY), doc: 'clock skew allowance' },
  READING_MAX_MESSAGE_BYTES: { schema: int(4096, 256, 1_048_576), doc: 'largest Kafka message accepted' },
} as const satisfies Declarations;

export interface ReadingSettings {
  readonly temperatureMinC: number;
  readonly temperatureMaxC: number;
  /** Readings older than this are refused (dead-lettered). */
  readonly maxAgeMs: number;
  /** Readings further in the future than this are refused (clock skew allowance). */
  readonly maxFutureMs: number;
  /** Largest Kafka message accepted, in bytes. */
  readonly maxMessageBytes: number;
}

export function readingSettings(e: Parsed<typeof READING_VARIABLES>): ReadingSettings {
  return {
    temperatureMinC: e.READING_TEMPERATURE_MIN_C,
    temperatureMaxC: e.READING_TEMPERATURE_MAX_C,
    maxAgeMs: e.READING_MAX_AGE_MS,
    maxFutureMs: e.READING_MAX_FUTURE_MS,
    maxMessageBytes: e.READING_MAX_MESSAGE_BYTES,
  };
}
