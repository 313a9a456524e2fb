/**
 * A sensor reading, and its validation at the boundary (Kafka message or GraphQL input).
 * Everything downstream receives a `Reading` and never re-checks it.
 */

export interface Location {
  readonly lat: number;
  readonly lon: number;
}

export interface Reading {
  readonly sensorId: string;
  /** When the sensor took the reading. */
  readonly ts: Date;
  /** °C */
  readonly temperature: number;
  /** Relative humidity, % */
  readonly humidity: number;
  readonly location: Location;
}

export interface ReadingLimits {
  readonly temperatureMinC: number;
  readonly temperatureMaxC: number;
  readonly maxAgeMs: number;
  readonly maxFutureMs: number;
}

/** Why a reading was refused: a stable code plus the field and a human message. */
export interface ReadingRejection {
  readonly code: RejectionCode;
  readonly field: string;
  readonly message: string;
}

export type RejectionCode =
  | 'MALFORMED_JSON'
  | 'NOT_AN_OBJECT'
  | 'MISSING_FIELD'
  | 'UNKNOWN_FIELD'
  | 'WRONG_TYPE'
  | 'OUT_OF_RANGE'
  | 'TIMESTAMP_OUT_OF_WINDOW'
  | 'OVERSIZED'
  | 'KEY_MISMATCH'
  /** A sensor command (threshold, acknowledgement) that is malformed; see domain/sensorCommand.ts. */
  | 'BAD_COMMAND';

export type Validated = { ok: true; reading: Reading } | { ok: false; rejection: ReadingRejection };

export const SENSOR_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const READING_FIELDS = new Set(['sensorId', 'ts', 'temperature', 'humidity', 'location']);
const LOCATION_FIELDS = new Set(['lat', 'lon']);
/** ISO-8601 with an explicit zone, e.g. 2026-11-28T07:00:00.000Z or +01:00. */
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function reject(code: RejectionCode, field: string, message: string): Validated {
  return { ok: false, rejection: { code, field, message } };
}

function checkNumber(value: unknown, field: string, min: number, max: number): ReadingRejection | number {
  if (typeof value !== 'number') {
    return {
      code: value === undefined ? 'MISSING_FIELD' : 'WRONG_TYPE',
      field,
      message: value === undefined ? `${field} is required` : `${field} must be a number`,
    };
  }
  if (!Number.isFinite(value)) return { code: 'OUT_OF_RANGE', field, message: `${field} must be finite` };
  if (value < min || value > max)
    return { code: 'OUT_OF_RANGE', field, message: `${field} ${value} is outside ${min}..${max}` };
  return value;
}

/** Parses a timestamp given as ISO-8601 string or epoch milliseconds. */
export function parseTimestamp(value: unknown): Date | undefined {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return undefined;
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  if (typeof value === 'string' && ISO_TIMESTAMP.test(value)) {
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value;
  return undefined;
}

/**
 * Validates an already-decoded value into a Reading.
 * `now` is passed in so the timestamp window is testable.
 */
export function validateReading(input: unknown, limits: ReadingLimits, now: number = Date.now()): Validated {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return reject('NOT_AN_OBJECT', '', 'a reading must be a JSON object');
  }
  const obj = input as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!READING_FIELDS.has(key)) return reject('UNKNOWN_FIELD', key, `unknown field "${key}"`);
  }

  const { sensorId } = obj;
  if (sensorId === undefined) return reject('MISSING_FIELD', 'sensorId', 'sensorId is required');
  if (typeof sensorId !== 'string') return reject('WRONG_TYPE', 'sensorId', 'sensorId must be a string');
  if (!SENSOR_ID_PATTERN.test(sensorId)) {
    return reject(
      'OUT_OF_RANGE',
      'sensorId',
      'sensorId must be 1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit',
    );
  }

  if (obj.ts === undefined) return reject('MISSING_FIELD', 'ts', 'ts is required');
  const ts = parseTimestamp(obj.ts);
  if (!ts) return reject('WRONG_TYPE', 'ts', 'ts must be an ISO-8601 timestamp with a zone, or epoch milliseconds');
  const t = ts.getTime();
  if (t < now - limits.maxAgeMs)
    return reject('TIMESTAMP_OUT_OF_WINDOW', 'ts', `ts ${ts.toISOString()} is older than the accepted window`);
  if (t > now + limits.maxFutureMs)
    return reject('TIMESTAMP_OUT_OF_WINDOW', 'ts', `ts ${ts.toISOString()} is too far in the future`);

  const temperature = checkNumber(obj.temperature, 'temperature', limits.temperatureMinC, limits.temperatureMaxC);
  if (typeof temperature !== 'number') return { ok: false, rejection: temperature };
  const humidity = checkNumber(obj.humidity, 'humidity', 0, 100);
  if (typeof humidity !== 'number') return { ok: false, rejection: humidity };

  const loc = obj.location;
  if (loc === undefined) return reject('MISSING_FIELD', 'location', 'location is required');
  if (typeof loc !== 'object' || loc === null || Array.isArray(loc))
    return reject('WRONG_TYPE', 'location', 'location must be an object { lat, lon }');
  const locObj = loc as Record<string, unknown>;
  for (const key of Object.keys(locObj)) {
    if (!LOCATION_FIELDS.has(key)) return reject('UNKNOWN_FIELD', `location.${key}`, `unknown field "location.${key}"`);
  }
  const lat = checkNumber(locObj.lat, 'location.lat', -90, 90);
  if (typeof lat !== 'number') return { ok: false, rejection: lat };
  const lon = checkNumber(locObj.lon, 'location.lon', -180, 180);
  if (typeof lon !== 'number') return { ok: false, rejection: lon };

  return { ok: true, reading: { sensorId, ts, temperature, humidity, location: { lat, lon } } };
}

/**
 * Decodes a Kafka message value (JSON bytes) and validates it.
 * The message key, when present, must equal the sensor id: it decides the partition, hence ordering.
 */
export function decodeReading(
  value: Buffer | null,
  key: Buffer | null,
  limits: ReadingLimits & { maxMessageBytes: number },
  now: number = Date.now(),
): Validated {
  if (value === null) return reject('MALFORMED_JSON', '', 'message has no value');
  if (value.length > limits.maxMessageBytes) {
    return reject('OVERSIZED', '', `message is ${value.length} bytes, more than ${limits.maxMessageBytes}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch (err) {
    return reject('MALFORMED_JSON', '', `value is not valid JSON: ${(err as Error).message}`);
  }
  const result = validateReading(parsed, limits, now);
  if (result.ok && key !== null && key.length > 0 && key.toString('utf8') !== result.reading.sensorId) {
    return reject('KEY_MISMATCH', 'sensorId', 'message key must equal sensorId');
  }
  return result;
}

/** The wire form of a reading on the Kafka topic: what third-party producers write. */
export function encodeReading(reading: Reading): string {
  return JSON.stringify({
    sensorId: reading.sensorId,
    ts: reading.ts.toISOString(),
    temperature: reading.temperature,
    humidity: reading.humidity,
    location: { lat: reading.location.lat, lon: reading.location.lon },
  });
}

/**
 * A reading's natural key: a sensor takes at most one reading per millisecond.
 * Used as the stored `_id`, which makes storage idempotent: replays and re-sends are absorbed.
 */
export function readingKey(sensorId: string, ts: Date): string {
  return `${sensorId}|${ts.getTime()}`;
}
