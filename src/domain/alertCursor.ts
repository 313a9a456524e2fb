/**
 * The resume cursor of an `overheatAlerts` subscription.
 *
 * Alerts are ordered per Kafka partition (a sensor always maps to one partition), so a
 * subscriber's position is a vector: for each partition, the offset of the last alert it has
 * seen or skipped. A client stores the cursor of the last alert it received; resuming with it
 * replays exactly what it missed. The encoding is opaque to clients and versioned.
 */
import type { StreamPosition } from './alert.js';

const VERSION = 'v1';

/**
 * Recent encodings by cursor body. Subscribers at the live edge share their positions, so each alert
 * is delivered with the same cursor to many of them: it is encoded once. Bounded: cleared when full.
 */
const recentEncodings = new Map<string, string>();
const RECENT_ENCODINGS = 256;

export class AlertCursor {
  private readonly offsets: Map<number, number>;
  /** The partitions of `offsets`, ascending (the encoding's order). */
  private partitions: number[];

  private constructor(offsets: Map<number, number>) {
    this.offsets = offsets;
    this.partitions = [...offsets.keys()].sort((a, b) => a - b);
  }

  static fromWatermarks(watermarks: ReadonlyMap<number, number>): AlertCursor {
    return new AlertCursor(new Map(watermarks));
  }

  /** Parses a client-supplied cursor; returns undefined when it is not one of ours. */
  static decode(text: string): AlertCursor | undefined {
    let raw: string;
    try {
      raw = Buffer.from(text, 'base64url').toString('utf8');
    } catch {
      return undefined;
    }
    const [version, body] = raw.split(':', 2);
    if (version !== VERSION || body === undefined) return undefined;
    const offsets = new Map<number, number>();
    if (body.length > 0) {
      for (const part of body.split(',')) {
        const m = /^(\d{1,6})=(\d{1,16})$/.exec(part);
        if (!m) return undefined;
        offsets.set(Number(m[1]), Number(m[2]));
      }
    }
    return new AlertCursor(offsets);
  }

  encode(): string {
    let body = '';
    for (const p of this.partitions) body += `${body.length > 0 ? ',' : ''}${p}=${this.offsets.get(p)}`;
    let text = recentEncodings.get(body);
    if (text === undefined) {
      text = Buffer.from(`${VERSION}:${body}`, 'utf8').toString('base64url');
      if (recentEncodings.size >= RECENT_ENCODINGS) recentEncodings.clear();
      recentEncodings.set(body, text);
    }
    return text;
  }

  /** True when the alert at this position is after everything this cursor has seen. */
  isAfter(position: StreamPosition): boolean {
    const seen = this.offsets.get(position.partition);
    return seen === undefined || position.offset > seen;
  }

  /** Moves the cursor past an alert. Returns false (and changes nothing) when the alert was already seen. */
  advance(position: StreamPosition): boolean {
    if (!this.isAfter(position)) return false;
    if (!this.offsets.has(position.partition))
      this.partitions = [...this.partitions, position.partition].sort((a, b) => a - b);
    this.offsets.set(position.partition, position.offset);
    return true;
  }

  /** Offset last seen per partition; partitions absent were never seen (replay from their start). */
  entries(): ReadonlyMap<number, number> {
    return this.offsets;
  }
}
