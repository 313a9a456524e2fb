import { describe, expect, it } from 'vitest';
import { decodeReading, encodeReading, readingKey, validateReading } from '../../src/domain/reading.js';

const limits = {
  temperatureMinC: -60,
  temperatureMaxC: 200,
  maxAgeMs: 7 * 86400_000,
  maxFutureMs: 300_000,
  maxMessageBytes: 4096,
};
const now = Date.parse('2026-11-28T07:00:00Z');
const good = {
  sensorId: 'press-7',
  ts: '2026-11-28T06:59:00.000Z',
  temperature: 81.5,
  humidity: 40,
  location: { lat: 52.5, lon: 13.4 },
};
const bytes = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('reading validation at the boundary', () => {
  it('accepts a well-formed reading and types it', () => {
    const r = decodeReading(bytes(good), Buffer.from('press-7'), limits, now);
    expect(r).toEqual({ ok: true, reading: { ...good, ts: new Date(good.ts) } });
  });

  it('accepts epoch milliseconds and zone offsets for ts', () => {
    expect(validateReading({ ...good, ts: now - 1000 }, limits, now).ok).toBe(true);
    expect(validateReading({ ...good, ts: '2026-11-28T07:59:00+01:00' }, limits, now).ok).toBe(true);
  });

  it.each([
    ['malformed JSON', Buffer.from('{"sensorId":'), 'MALFORMED_JSON', ''],
    ['a JSON array', bytes([good]), 'NOT_AN_OBJECT', ''],
    ['an unknown field', bytes({ ...good, pressure: 1 }), 'UNKNOWN_FIELD', 'pressure'],
    [
      'an unknown location field',
      bytes({ ...good, location: { lat: 1, lon: 1, alt: 3 } }),
      'UNKNOWN_FIELD',
      'location.alt',
    ],
    ['a missing temperature', bytes({ ...good, temperature: undefined }), 'MISSING_FIELD', 'temperature'],
    ['a string temperature', bytes({ ...good, temperature: '81' }), 'WRONG_TYPE', 'temperature'],
    ['humidity above 100', bytes({ ...good, humidity: 100.1 }), 'OUT_OF_RANGE', 'humidity'],
    ['negative humidity', bytes({ ...good, humidity: -1 }), 'OUT_OF_RANGE', 'humidity'],
    ['latitude beyond 90', bytes({ ...good, location: { lat: 90.5, lon: 0 } }), 'OUT_OF_RANGE', 'location.lat'],
    ['longitude beyond 180', bytes({ ...good, location: { lat: 0, lon: -181 } }), 'OUT_OF_RANGE', 'location.lon'],
    ['a temperature beyond the physical range', bytes({ ...good, temperature: 1e6 }), 'OUT_OF_RANGE', 'temperature'],
    ['a timestamp without a zone', bytes({ ...good, ts: '2026-11-28T06:59:00' }), 'WRONG_TYPE', 'ts'],
    ['a timestamp a day ahead', bytes({ ...good, ts: '2026-11-29T07:00:00Z' }), 'TIMESTAMP_OUT_OF_WINDOW', 'ts'],
    ['a timestamp a month old', bytes({ ...good, ts: '2026-10-28T07:00:00Z' }), 'TIMESTAMP_OUT_OF_WINDOW', 'ts'],
    ['an invalid sensor id', bytes({ ...good, sensorId: 'has space' }), 'OUT_OF_RANGE', 'sensorId'],
    ['an oversized message', Buffer.alloc(5000, 0x20), 'OVERSIZED', ''],
  ])('rejects %s', (_label, value, code, field) => {
    const r = decodeReading(value, null, limits, now);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.rejection).toMatchObject({ code, field });
  });

  it('rejects NaN and Infinity given through a non-JSON path', () => {
    expect(validateReading({ ...good, temperature: Number.NaN }, limits, now)).toMatchObject({
      ok: false,
      rejection: { code: 'OUT_OF_RANGE' },
    });
    expect(validateReading({ ...good, humidity: Infinity }, limits, now)).toMatchObject({
      ok: false,
      rejection: { code: 'OUT_OF_RANGE' },
    });
  });

  it('rejects a message whose key is not its sensor id (it would break per-sensor ordering)', () => {
    expect(decodeReading(bytes(good), Buffer.from('other'), limits, now)).toMatchObject({
      ok: false,
      rejection: { code: 'KEY_MISMATCH' },
    });
  });

  it('round-trips through the wire format', () => {
    const r = validateReading(good, limits, now);
    if (!r.ok) throw new Error('expected ok');
    expect(JSON.parse(encodeReading(r.reading))).toEqual(good);
  });

  it('keys a reading by sensor and millisecond, so re-sends collapse', () => {
    expect(readingKey('a', new Date(5))).toBe(readingKey('a', new Date(5)));
    expect(readingKey('a', new Date(5))).not.toBe(readingKey('a', new Date(6)));
  });
});

describe('reading validation, property-based', () => {
  it('never throws, whatever the bytes: it returns a reading or a rejection with a code', async () => {
    const fc = (await import('fast-check')).default;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
          fc.json().map((s) => Buffer.from(s)),
        ),
        (value) => {
          const r = decodeReading(value, null, limits, now);
          return r.ok
            ? typeof r.reading.sensorId === 'string'
            : typeof r.rejection.code === 'string' && r.rejection.message.length > 0;
        },
      ),
      { numRuns: 5000 },
    );
  });
});
