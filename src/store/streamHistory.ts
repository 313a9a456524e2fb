/** What a feed (fanout/alertFeed.ts) reads of a stored stream: its items by position, and what retention removed. */
import type { AlertCursor } from '../domain/alertCursor.js';

export interface StreamHistory<T> {
  /** The first `limit` items after `cursor` and at or before `watermarks`, ordered by partition then offset. */
  between(
    cursor: AlertCursor,
    watermarks: ReadonlyMap<number, number>,
    sensorIds: ReadonlySet<string> | undefined,
    limit: number,
  ): Promise<T[]>;
  /** partition -> highest offset whose items may have been removed by retention. */
  purgedUpTo(topic: string): Promise<Map<number, number>>;
}
