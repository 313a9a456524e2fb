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
 * Recent moves, by the text a cursor had before it: subscribers at the live edge share their
 * positions, so each alert moves many cursors from the same text to the same text. The first one
 * encodes it; the others find it here. Bounded: cleared when full.
 */
const recentMoves = new Map<string, { partition: number; offset: number; text: string }>();
const RECENT_MOVES = 256;

export class AlertCursor {
  private readonly offsets: Map<number, number>;
  /** The partitions of `offsets`, ascending (the encoding's order). */
  private partitions: number[];
  /** The encoding of the current offsets, once made. */
  private text: string | undefined;
  /** The last move, while its text is not made yet: the encoding before it, and where it went. */
  private movedFrom: string | undefined;
  private moved: StreamPosition | undefined;

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
    if (this.text !== undefined) return this.text;
    let body = '';
    for (const p of this.partitions) body += `${body.length > 0 ? ',' : ''}${p}=${this.offsets.get(p)}`;
    this.text = Buffer.from(`${VERSION}:${body}`, 'utf8').toString('base64url');
    if (this.movedFrom !== undefined && this.moved) {
      if (recentMoves.size >= RECENT_MOVES) recentMoves.clear();
      recentMoves.set(this.movedFrom, { ...this.moved, text: this.text });
    }
    this.movedFrom = undefined;
    this.moved = undefined;
    return this.text;
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
    // The same move from the same text lands on the same text (the text encodes every offset).
    const from = this.text;
    const known = from === undefined ? undefined : recentMoves.get(from);
    if (known && known.partition === position.partition && known.offset === position.offset) {
      this.text = known.text;
      return true;
    }
    this.text = undefined;
    this.movedFrom = from;
    this.moved = from === undefined ? undefined : position;
    return true;
  }

  /** Offset last seen per partition; partitions absent were never seen (replay from their start). */
  entries(): ReadonlyMap<number, number> {
    return this.offsets;
  }
}
