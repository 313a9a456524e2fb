/**
 * Overheat alerts: which readings are critical, and the position of an alert in the stream.
 */
import { readingKey, type Location, type Reading } from './reading.js';

/** Where a reading sat in Kafka. Within one partition, offsets order alerts totally. */
export interface StreamPosition {
  readonly partition: number;
  /** Kafka offset; int64 on the wire, exact as a JS number up to 2^53. */
  readonly offset: number;
}

/**
 * An alert's place in its partition's chains, for one published before it was stored
 * (stream/alertChain.ts): `prev` is the offset of the alert published before it on the partition,
 * `sensorPrev` that of its sensor's alert published before it there. Either may be a bound at or
 * past the real one, never before it: nothing of the partition (of the sensor) was published between.
 */
export interface ChainLink {
  readonly prev: number;
  /** Absent when the publisher predates sensor chains: the subscriber then waits for the store. */
  readonly sensorPrev?: number | undefined;
}

export interface OverheatAlert {
  /** Same as the natural key of the critical reading: one reading, one alert. */
  readonly id: string;
  readonly sensorId: string;
  readonly temperature: number;
  readonly threshold: number;
  /** Time of the critical reading. */
  readonly ts: Date;
  readonly location: Location;
  /** When the pipeline detected it. */
  readonly detectedAt: Date;
  readonly position: StreamPosition;
}

/**
 * The alert's fields, declared once. Every form an alert takes (the GraphQL type, the stored
 * document, the replay page, the Redis payload, the fast path's frames) is tested against this list
 * (test/unit/alertFields.test.ts), and the compiler keeps the list equal to OverheatAlert's keys:
 * a new field fails here until it is listed, then in the test until every form carries it.
 */
export const ALERT_FIELDS = [
  'id',
  'sensorId',
  'temperature',
  'threshold',
  'ts',
  'location',
  'detectedAt',
  'position',
] as const satisfies readonly (keyof OverheatAlert)[];
/** Fields clients see; `position` travels as the subscription cursor instead. */
export const ALERT_CLIENT_FIELDS = ALERT_FIELDS.filter((f) => f !== 'position');
type Unlisted = Exclude<keyof OverheatAlert, (typeof ALERT_FIELDS)[number]>;
/** Compile-time: OverheatAlert has no field ALERT_FIELDS leaves out. */
export const ALERT_FIELDS_COMPLETE: [Unlisted] extends [never] ? true : Unlisted = true;

/** A reading is critical when its temperature is strictly above the threshold. */
export function isCritical(reading: Reading, thresholdC: number): boolean {
  return reading.temperature > thresholdC;
}

export function toAlert(
  reading: Reading,
  thresholdC: number,
  position: StreamPosition,
  detectedAt: Date,
): OverheatAlert {
  return {
    id: readingKey(reading.sensorId, reading.ts),
    sensorId: reading.sensorId,
    temperature: reading.temperature,
    threshold: thresholdC,
    ts: reading.ts,
    location: reading.location,
    detectedAt,
    position,
  };
}
