/** The bucket layout's pure parts: slices, ids, binary columns and summary tables. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../src/domain/reading.js';
import {
  PartColumns,
  SLICE_MS,
  dayId,
  decodeColumns,
  decodeSummaryTable,
  encodeColumns,
  encodeSummaryTable,
  partId,
  sliceStart,
} from '../../src/domain/readingBuckets.js';

const finite = (min: number, max: number) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true });

describe('bucket layout', () => {
  it('gives every instant exactly one hour slice, starting at the hour', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4e12 }), (ts) => {
        const s = sliceStart(ts);
        expect(s % SLICE_MS).toBe(0);
        expect(s <= ts && ts < s + SLICE_MS).toBe(true);
      }),
    );
  });

  it('names documents by sensor and UTC time', () => {
    const t = Date.UTC(2026, 10, 28, 7);
    expect(partId('boiler-7', t, 0)).toBe('boiler-7|2026-11-28T07:00:00.000Z|0');
    expect(dayId('boiler-7', Date.UTC(2026, 10, 28))).toBe('boiler-7|2026-11-28');
  });

  it('stores readings as columns that decode to exactly the same values, sorted and without duplicates', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.record({
            offset: fc.integer({ min: 0, max: SLICE_MS - 1 }),
            t: finite(-60, 200),
            h: finite(0, 100),
            lat: finite(-90, 90),
            lon: finite(-180, 180),
          }),
          { selector: (r) => r.offset, maxLength: 300 },
        ),
        (rows) => {
          const sorted = [...rows].sort((a, b) => a.offset - b.offset);
          const half = Math.floor(sorted.length / 2);
          const toAdded = (rs: typeof rows) =>
            rs.map((r) => ({
              offset: r.offset,
              reading: {
                sensorId: 's',
                ts: new Date(r.offset),
                temperature: r.t,
                humidity: r.h,
                location: { lat: r.lat, lon: r.lon },
              } satisfies Reading,
            }));
          // Merged in two steps, the second interleaving with the first.
          const odd = sorted.filter((_, i) => i % 2 === 1);
          const even = sorted.filter((_, i) => i % 2 === 0);
          const cols = new PartColumns().withReadings(toAdded(even)).withReadings(toAdded(odd));
          const back = decodeColumns(encodeColumns(cols));
          expect([...back.offsets]).toEqual(sorted.map((r) => r.offset));
          expect([...back.temperature]).toEqual(sorted.map((r) => r.t));
          expect([...back.lon]).toEqual(sorted.map((r) => r.lon));
          for (const r of sorted.slice(0, half)) expect(back.has(r.offset)).toBe(true);
          expect(back.summary().n).toBe(sorted.length);
        },
      ),
    );
  });

  it('round-trips summary tables and leaves empty entries out', () => {
    const table = encodeSummaryTable([
      { key: 59, extra: 0, summary: { n: 2, tMin: -1.5, tMax: 3.25, tSum: 1.75, hMin: 0, hMax: 100, hSum: 100 } },
      { key: 3, extra: 4, summary: { n: 1, tMin: 20, tMax: 20, tSum: 20, hMin: 40, hMax: 40, hSum: 40 } },
      {
        key: 7,
        extra: 0,
        summary: { n: 0, tMin: Infinity, tMax: -Infinity, tSum: 0, hMin: Infinity, hMax: -Infinity, hSum: 0 },
      },
    ]);
    expect(decodeSummaryTable(table).map((e) => [e.key, e.extra, e.summary.n, e.summary.tMax])).toEqual([
      [3, 4, 1, 20],
      [59, 0, 2, 3.25],
    ]);
  });

  it('refuses corrupt binary fields instead of misreading them', () => {
    expect(() => decodeColumns(new Uint8Array(35))).toThrow(/multiple of 36/);
    expect(() => decodeSummaryTable(new Uint8Array(10))).toThrow(/multiple of 56/);
  });
});
