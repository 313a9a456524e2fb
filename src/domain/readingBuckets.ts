/**
 * The time-series layout of reading history, as pure values: which slice a reading belongs to, the
 * summaries kept for charts, and the binary columns a bucket stores. Storage adapters persist these
 * shapes; nothing here knows a database.
 *
 * Layout (documented for third-party readers in docs/storage.md):
 *  - a bucket holds one sensor's readings of one UTC hour (the slice), in parts of at most
 *    PART_CAPACITY readings, sorted by time; a new part starts when the last one is full;
 *  - each part carries its summary and per-minute summaries;
 *  - a day document per sensor holds the summary of each hour and how many parts it has, which makes
 *    it both the chart source for HOUR/DAY and the directory readers walk instead of range scans.
 * Columns are little-endian binary: decoding them costs a copy, not a parse per value.
 */
import type { Location, Reading } from './reading.js';

export const SLICE_MS = 3600_000;
export const DAY_MS = 24 * SLICE_MS;
export const MINUTE_MS = 60_000;
/** Readings per bucket part: bounds the bytes rewritten when a part grows. */
export const PART_CAPACITY = 1000;

export type StatsInterval = 'MINUTE' | 'HOUR' | 'DAY';
export const INTERVAL_MS: Readonly<Record<StatsInterval, number>> = { MINUTE: MINUTE_MS, HOUR: SLICE_MS, DAY: DAY_MS };

export const sliceStart = (tsMs: number): number => Math.floor(tsMs / SLICE_MS) * SLICE_MS;
export const dayStart = (tsMs: number): number => Math.floor(tsMs / DAY_MS) * DAY_MS;
export const floorTo = (tsMs: number, interval: StatsInterval): number =>
  Math.floor(tsMs / INTERVAL_MS[interval]) * INTERVAL_MS[interval];

/** `_id`s. Sensor ids never contain `|` (see SENSOR_ID_PATTERN), so these cannot collide. */
export const partId = (sensorId: string, sliceMs: number, part: number): string =>
  `${sensorId}|${new Date(sliceMs).toISOString()}|${part}`;
export const dayId = (sensorId: string, dayMs: number): string =>
  `${sensorId}|${new Date(dayMs).toISOString().slice(0, 10)}`;

/** Count, min, max and sum of temperature and humidity over some readings. */
export interface Summary {
  n: number;
  tMin: number;
  tMax: number;
  tSum: number;
  hMin: number;
  hMax: number;
  hSum: number;
}

export const emptySummary = (): Summary => ({
  n: 0,
  tMin: Infinity,
  tMax: -Infinity,
  tSum: 0,
  hMin: Infinity,
  hMax: -Infinity,
  hSum: 0,
});

export function addToSummary(s: Summary, temperature: number, humidity: number): void {
  s.n++;
  s.tSum += temperature;
  s.hSum += humidity;
  if (temperature < s.tMin) s.tMin = temperature;
  if (temperature > s.tMax) s.tMax = temperature;
  if (humidity < s.hMin) s.hMin = humidity;
  if (humidity > s.hMax) s.hMax = humidity;
}

export function mergeSummary(into: Summary, s: Summary): void {
  if (s.n === 0) return;
  into.n += s.n;
  into.tSum += s.tSum;
  into.hSum += s.hSum;
  into.tMin = Math.min(into.tMin, s.tMin);
  into.tMax = Math.max(into.tMax, s.tMax);
  into.hMin = Math.min(into.hMin, s.hMin);
  into.hMax = Math.max(into.hMax, s.hMax);
}

/**
 * The readings of one bucket part as columns, sorted by time, no two at the same millisecond.
 * Offsets are milliseconds from the slice start (an hour fits in 32 bits).
 */
export class PartColumns {
  constructor(
    public offsets: Uint32Array = new Uint32Array(0),
    public temperature: Float64Array = new Float64Array(0),
    public humidity: Float64Array = new Float64Array(0),
    public lat: Float64Array = new Float64Array(0),
    public lon: Float64Array = new Float64Array(0),
  ) {}

  get length(): number {
    return this.offsets.length;
  }

  has(offset: number): boolean {
    return sortedHas(this.offsets, offset);
  }

  /** A copy with `added` (offset-sorted, not present here) merged in. */
  withReadings(added: readonly { offset: number; reading: Reading }[]): PartColumns {
    const n = this.length + added.length;
    const next = new PartColumns(
      new Uint32Array(n),
      new Float64Array(n),
      new Float64Array(n),
      new Float64Array(n),
      new Float64Array(n),
    );
    let i = 0;
    let j = 0;
    for (let k = 0; k < n; k++) {
      if (j >= added.length || (i < this.length && this.offsets[i]! < added[j]!.offset)) {
        next.offsets[k] = this.offsets[i]!;
        next.temperature[k] = this.temperature[i]!;
        next.humidity[k] = this.humidity[i]!;
        next.lat[k] = this.lat[i]!;
        next.lon[k] = this.lon[i]!;
        i++;
      } else {
        const { offset, reading } = added[j]!;
        next.offsets[k] = offset;
        next.temperature[k] = reading.temperature;
        next.humidity[k] = reading.humidity;
        next.lat[k] = reading.location.lat;
        next.lon[k] = reading.location.lon;
        j++;
      }
    }
    return next;
  }

  summary(): Summary {
    const s = emptySummary();
    for (let i = 0; i < this.length; i++) addToSummary(s, this.temperature[i]!, this.humidity[i]!);
    return s;
  }

  /** Per-minute summaries (minute of the hour -> summary), for MINUTE charts. */
  minuteSummaries(): Map<number, Summary> {
    const out = new Map<number, Summary>();
    for (let i = 0; i < this.length; i++) {
      const minute = Math.floor(this.offsets[i]! / MINUTE_MS);
      let s = out.get(minute);
      if (!s) out.set(minute, (s = emptySummary()));
      addToSummary(s, this.temperature[i]!, this.humidity[i]!);
    }
    return out;
  }

  reading(sensorId: string, sliceMs: number, i: number): Reading {
    const location: Location = { lat: this.lat[i]!, lon: this.lon[i]! };
    return {
      sensorId,
      ts: new Date(sliceMs + this.offsets[i]!),
      temperature: this.temperature[i]!,
      humidity: this.humidity[i]!,
      location,
    };
  }
}

/** Binary search in ascending offsets. */
export function sortedHas(sorted: Uint32Array, value: number): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = sorted[mid]!;
    if (v === value) return true;
    if (v < value) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

// ---------------------------------------------------------------- binary encodings (little-endian)

/** Columns: n × u32 offset, then n × f64 each of temperature, humidity, lat, lon. */
export function encodeColumns(c: PartColumns): Buffer {
  const n = c.length;
  const buf = Buffer.allocUnsafe(n * 36);
  for (let i = 0; i < n; i++) buf.writeUInt32LE(c.offsets[i]!, i * 4);
  let at = n * 4;
  for (const col of [c.temperature, c.humidity, c.lat, c.lon]) {
    for (let i = 0; i < n; i++, at += 8) buf.writeDoubleLE(col[i]!, at);
  }
  return buf;
}

export function decodeColumns(buf: Uint8Array): PartColumns {
  if (buf.length % 36 !== 0) throw new Error(`bucket columns of ${buf.length} bytes are not a multiple of 36`);
  const n = buf.length / 36;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const c = new PartColumns(
    new Uint32Array(n),
    new Float64Array(n),
    new Float64Array(n),
    new Float64Array(n),
    new Float64Array(n),
  );
  for (let i = 0; i < n; i++) c.offsets[i] = view.getUint32(i * 4, true);
  let at = n * 4;
  for (const col of [c.temperature, c.humidity, c.lat, c.lon]) {
    for (let i = 0; i < n; i++, at += 8) col[i] = view.getFloat64(at, true);
  }
  return c;
}

const ENTRY_BYTES = 56; // u16 key, u16 extra, u32 n, 6 × f64

/**
 * A table of summaries keyed by a small integer (minute of the hour, or hour of the day), with one
 * extra u16 per entry (parts of the hour in day tables). Entries with n = 0 are left out.
 */
export interface SummaryEntry {
  key: number;
  extra: number;
  summary: Summary;
}

export function encodeSummaryTable(entries: readonly SummaryEntry[]): Buffer {
  const rows = entries.filter((e) => e.summary.n > 0).sort((a, b) => a.key - b.key);
  const buf = Buffer.allocUnsafe(rows.length * ENTRY_BYTES);
  rows.forEach(({ key, extra, summary: s }, i) => {
    const at = i * ENTRY_BYTES;
    buf.writeUInt16LE(key, at);
    buf.writeUInt16LE(extra, at + 2);
    buf.writeUInt32LE(s.n, at + 4);
    [s.tMin, s.tMax, s.tSum, s.hMin, s.hMax, s.hSum].forEach((v, k) => buf.writeDoubleLE(v, at + 8 + k * 8));
  });
  return buf;
}

export function decodeSummaryTable(buf: Uint8Array): SummaryEntry[] {
  if (buf.length % ENTRY_BYTES !== 0)
    throw new Error(`summary table of ${buf.length} bytes is not a multiple of ${ENTRY_BYTES}`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: SummaryEntry[] = [];
  for (let at = 0; at < buf.length; at += ENTRY_BYTES) {
    const f = (k: number): number => view.getFloat64(at + 8 + k * 8, true);
    out.push({
      key: view.getUint16(at, true),
      extra: view.getUint16(at + 2, true),
      summary: {
        n: view.getUint32(at + 4, true),
        tMin: f(0),
        tMax: f(1),
        tSum: f(2),
        hMin: f(3),
        hMax: f(4),
        hSum: f(5),
      },
    });
  }
  return out;
}
