/**
 * Stored alerts and their replay pages, through the store's own API (store.alerts), on the real
 * store. The pages are written beside the alert insert, not after it; what a replay reads must
 * still be exactly the alerts the insert owns:
 *  - a re-sent reading's alert (its id stored before, from another stream position) is not returned
 *    and comes off its page again;
 *  - a batch replayed from the same positions (after a crash) owns all of its alerts again and
 *    leaves the pages as they were.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertCursor } from '../../src/domain/alertCursor.js';
import { createLogger } from '../../src/logger.js';
import { connectMongoStore, type MongoStore } from '../../src/store/mongoStore.js';
import { isolatedEnv, storeOptionsFrom } from '../support/env.js';
import { alertAt } from '../support/readings.js';

const env = isolatedEnv('alertstore');
let store: MongoStore;

beforeAll(async () => {
  store = await connectMongoStore({ ...storeOptionsFrom(env), logger: createLogger('silent') });
});
afterAll(async () => {
  await store?.dispose();
});

const alert = (sensorId: string, tsMs: number, partition: number, offset: number) =>
  alertAt(sensorId, tsMs, offset, partition);

/** What a subscriber resuming from the very beginning replays, up to `upTo` on partition 0. */
async function replayed(upTo: number): Promise<string[]> {
  const found = await store.alerts.between(
    AlertCursor.fromWatermarks(new Map()),
    new Map([[0, upTo]]),
    undefined,
    1000,
  );
  return found.map((a) => `${a.position.offset}:${a.id}`);
}

describe('stored alerts and their replay pages', () => {
  it('leave a re-sent reading off the pages, though the pages were written beside the insert', async () => {
    const first = [alert('s-1', 1000, 0, 0), alert('s-2', 1000, 0, 1)];
    expect(await store.alerts.insert(first)).toHaveLength(2);

    // s-1's reading of t=1000 sent again, now at offset 3; a new one of s-2 at offset 2 and 4.
    const second = [alert('s-2', 2000, 0, 2), alert('s-1', 1000, 0, 3), alert('s-2', 3000, 0, 4)];
    const owned = await store.alerts.insert(second);

    expect(owned.map((a) => a.position.offset)).toEqual([2, 4]);
    expect(await replayed(10)).toEqual(['0:s-1|1000', '1:s-2|1000', '2:s-2|2000', '4:s-2|3000']);
    expect(await store.alerts.count(['s-1', 's-2'])).toBe(4);
  });

  it('own every alert of a batch replayed from the same positions, and leave the pages as they were', async () => {
    const batch = [alert('s-3', 5000, 0, 20), alert('s-3', 6000, 0, 21)];
    expect(await store.alerts.insert(batch)).toHaveLength(2);
    const before = await replayed(30);

    const again = await store.alerts.insert(batch);

    expect(again.map((a) => a.id)).toEqual(['s-3|5000', 's-3|6000']);
    expect(await replayed(30)).toEqual(before);
  });
});
