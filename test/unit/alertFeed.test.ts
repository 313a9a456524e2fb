/**
 * The alert feed joins stored history and live alerts by cursor. In-memory fakes stand in for
 * Redis and MongoDB here; the integration and fault suites run the same code on the real services.
 */
import { describe, expect, it } from 'vitest';
import type { OverheatAlert } from '../../src/domain/alert.js';
import { AlertCursor } from '../../src/domain/alertCursor.js';
import {
  createAlertFeed,
  SUBSCRIBER_TOO_SLOW,
  type AlertHistory,
  type DeliveredAlert,
} from '../../src/fanout/alertFeed.js';
import type { AlertFanout, AlertListener } from '../../src/fanout/alertFanout.js';
import { createLogger } from '../../src/logger.js';

const TOPIC = 't';

/** A pipeline in memory: store -> watermark -> publish, as the consumer does it. */
function fakePipeline() {
  const stored: OverheatAlert[] = [];
  const watermarks = new Map<number, number>();
  const listeners = new Set<{ ids?: Set<string>; fn: AlertListener }>();
  const resync = new Set<(phase: 'hold' | 'replay') => void>();
  let redisUp = true;
  let holding = false;

  const fanout: AlertFanout = {
    publish: async (alerts) => {
      if (!redisUp) return;
      for (const a of alerts) for (const l of listeners) if (!l.ids || l.ids.has(a.sensorId)) l.fn(a);
    },
    listen: async (ids, fn) => {
      const entry = { ids: ids ? new Set(ids) : undefined, fn };
      listeners.add(entry);
      return () => listeners.delete(entry);
    },
    onResync: (fn) => {
      resync.add(fn);
      return () => resync.delete(fn);
    },
    isReady: () => redisUp,
    isHolding: () => holding,
    stats: () => ({ published: 0, publishFailures: 0, received: 0 }),
    dispose: async () => undefined,
  };
  const replayWaiters: (() => void)[] = [];
  const store: AlertHistory & { progress: { advance(): Promise<void> } } = {
    progress: {
      watermarks: async () => new Map(watermarks),
      advance: async () => undefined,
    },
    alerts: {
      purgedUpTo: async () => new Map<number, number>(),
      between: async (
        cursor: AlertCursor,
        upTo: ReadonlyMap<number, number>,
        ids: ReadonlySet<string> | undefined,
        limit: number,
      ) => {
        const page = stored
          .filter((a) => cursor.isAfter(a.position) && a.position.offset <= (upTo.get(a.position.partition) ?? -1))
          .filter((a) => !ids || ids.has(a.sensorId))
          .sort((x, y) => x.position.partition - y.position.partition || x.position.offset - y.position.offset)
          .slice(0, limit);
        for (const w of replayWaiters.splice(0)) w();
        return page;
      },
    },
  };

  let offset = 0;
  const raise = async (sensorId: string, partition = 0): Promise<OverheatAlert> => {
    const a: OverheatAlert = {
      id: `${sensorId}|${offset}`,
      sensorId,
      temperature: 90,
      threshold: 80,
      ts: new Date(),
      location: { lat: 0, lon: 0 },
      detectedAt: new Date(),
      position: { partition, offset: offset++ },
    };
    stored.push(a);
    watermarks.set(partition, Math.max(watermarks.get(partition) ?? -1, a.position.offset));
    await fanout.publish([a]);
    return a;
  };
  return {
    fanout,
    store,
    raise,
    /** Resolves at the next replay query: the feed has its cursor and hears live alerts. */
    replayed: (): Promise<void> => new Promise((r) => replayWaiters.push(r)),
    /** Down: the fanout holds. Up: delivery resumes at once, the replay that closes the hold comes in `replay`. */
    setRedis: (up: boolean, replay = up) => {
      redisUp = up;
      if (!up) {
        holding = true;
        for (const r of resync) r('hold');
      }
      if (replay) {
        holding = false;
        for (const r of resync) r('replay');
      }
    },
  };
}

const logger = createLogger('silent');

async function take(it: AsyncIterator<DeliveredAlert>, n: number): Promise<DeliveredAlert[]> {
  const out: DeliveredAlert[] = [];
  for (let i = 0; i < n; i++) out.push((await it.next()).value as DeliveredAlert);
  return out;
}

describe('alert feed', () => {
  it('starts from "now": alerts stored before the subscription are not replayed', async () => {
    const p = fakePipeline();
    const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 100, logger });
    await p.raise('s1');
    const sub = feed.open({});
    await p.replayed();
    const live = await p.raise('s1');
    expect((await take(sub, 1)).map((a) => a.id)).toEqual([live.id]);
    await sub.return?.();
  });

  it('resumes after a cursor: missed alerts first, then live ones, no gap and no duplicate', async () => {
    const p = fakePipeline();
    const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 100, logger });
    const first = feed.open({});
    await p.replayed();
    const a1 = await p.raise('s1');
    const [got] = await take(first, 1);
    await first.return?.();

    const missed = [await p.raise('s1', 0), await p.raise('s2', 1), await p.raise('s1', 0)];
    const resumed = feed.open({ after: AlertCursor.decode(got!.cursor) });
    await p.replayed();
    const live = await p.raise('s2', 1);
    // A replayed batch re-publishes an alert the subscriber already has: it must not come twice.
    await p.fanout.publish([missed[0]!]);
    const after = await p.raise('s1', 0);

    const ids = (await take(resumed, 5)).map((a) => a.id);
    expect(ids).toContain(missed[0]!.id);
    expect(new Set(ids)).toEqual(new Set([...missed, live, after].map((a) => a.id)));
    expect(ids).not.toContain(a1.id);
    await resumed.return?.();
  });

  it('filters by sensor', async () => {
    const p = fakePipeline();
    const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 100, logger });
    const sub = feed.open({ sensorIds: ['s2'] });
    await p.replayed();
    await p.raise('s1');
    const wanted = await p.raise('s2');
    expect((await take(sub, 1))[0]!.id).toBe(wanted.id);
    await sub.return?.();
  });

  it('recovers alerts raised while Redis was down once it is back', async () => {
    const p = fakePipeline();
    const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 100, logger });
    const sub = feed.open({});
    await p.replayed();
    p.setRedis(false);
    const lost = [await p.raise('s1'), await p.raise('s1')];
    p.setRedis(true);
    expect((await take(sub, 2)).map((a) => a.id)).toEqual(lost.map((a) => a.id));
    await sub.return?.();
  });

  it('holds a live alert that arrives after an outage but before the replay, so the lost ones come first', async () => {
    const p = fakePipeline();
    const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 100, logger });
    const sub = feed.open({});
    await p.replayed();
    p.setRedis(false);
    const lost = await p.raise('s1');
    // Re-subscribed: the next alert arrives live, ahead of the replay that will find the lost one.
    p.setRedis(true, false);
    const live = await p.raise('s1');
    p.setRedis(true, true);
    expect((await take(sub, 2)).map((a) => a.id)).toEqual([lost.id, live.id]);
    await sub.return?.();
  });

  it(`ends a subscriber that falls behind with ${SUBSCRIBER_TOO_SLOW}, keeping memory bounded`, async () => {
    const p = fakePipeline();
    const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 3, logger });
    const sub = feed.open({});
    await p.replayed();
    for (let i = 0; i < 5; i++) await p.raise('s1');
    await expect(sub.next()).rejects.toMatchObject({ extensions: { code: SUBSCRIBER_TOO_SLOW } });
    expect(feed.size()).toBe(0);
  });
});
