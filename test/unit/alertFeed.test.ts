/**
 * The alert feed joins stored history and live alerts by cursor. In-memory fakes stand in for
 * Redis and MongoDB here; the integration and fault suites run the same code on the real services.
 */
import { describe, expect, it } from 'vitest';
import type { ChainLink, OverheatAlert } from '../../src/domain/alert.js';
import { AlertCursor } from '../../src/domain/alertCursor.js';
import { createAlertFeed, type AlertHistory, type DeliveredAlert } from '../../src/fanout/alertFeed.js';
import type { AlertFanout, AlertListener, StreamProgress } from '../../src/fanout/alertFanout.js';
import { createSocketBudget, queuedAlertBytes } from '../../src/fanout/socketBudget.js';
import { createLogger } from '../../src/logger.js';

const TOPIC = 't';

/**
 * A pipeline in memory, as the consumer runs it: `raise` stores, moves the watermark, then publishes
 * (with the alert's place in its partition's chains) and sends the progress notice; `detect`
 * publishes first and stores when told to; `newOwner` is a replica taking the partition over.
 */
function fakePipeline() {
  const stored: OverheatAlert[] = [];
  const watermarks = new Map<number, number>();
  const listeners = new Set<{ ids?: Set<string>; fn: AlertListener }>();
  const progressListeners = new Set<(p: StreamProgress) => void>();
  const resync = new Set<(phase: 'hold' | 'replay') => void>();
  /** Per partition, the offset of the alert published last; per partition and sensor, likewise. */
  const heads = new Map<number, number>();
  const sensorHeads = new Map<string, number>();
  /** Per partition, what its owner links a sensor's first alert to (the offset before the first it consumed). */
  const before = new Map<number, number>();
  let redisUp = true;
  let holding = false;

  const fanout: AlertFanout = {
    publish: async (alerts, links) => {
      if (!redisUp) return;
      alerts.forEach((a, i) => {
        for (const l of listeners) if (!l.ids || l.ids.has(a.sensorId)) l.fn(a, links?.[i]);
      });
    },
    publishProgress: async (progress) => {
      if (!redisUp) return;
      for (const l of progressListeners) l(progress);
    },
    onProgress: (fn) => {
      progressListeners.add(fn);
      return () => progressListeners.delete(fn);
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
  /** Each replay query's cursor, per partition (-1: from the start). */
  const reads: Map<number, number>[] = [];
  const history: AlertHistory & { progress: { advance(): Promise<void> } } = {
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
        reads.push(new Map(cursor.entries()));
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
  const alertOf = (sensorId: string, partition: number): OverheatAlert => ({
    id: `${sensorId}|${offset}`,
    sensorId,
    temperature: 90,
    threshold: 80,
    ts: new Date(),
    location: { lat: 0, lon: 0 },
    detectedAt: new Date(),
    position: { partition, offset: offset++ },
  });
  const linkOf = (a: OverheatAlert): ChainLink => {
    const { partition, offset } = a.position;
    const sensorKey = `${partition}:${a.sensorId}`;
    const link = {
      prev: heads.get(partition) ?? -1,
      sensorPrev: sensorHeads.get(sensorKey) ?? before.get(partition) ?? -1,
    };
    heads.set(partition, Math.max(offset, link.prev));
    sensorHeads.set(sensorKey, Math.max(offset, link.sensorPrev));
    return link;
  };
  const publishLinked = async (a: OverheatAlert): Promise<void> => {
    await fanout.publish([a], [linkOf(a)]);
  };
  const store = async (a: OverheatAlert): Promise<void> => {
    stored.push(a);
    const { partition } = a.position;
    watermarks.set(partition, Math.max(watermarks.get(partition) ?? -1, a.position.offset));
  };
  const notice = (partition: number) =>
    fanout.publishProgress({
      partition,
      watermark: watermarks.get(partition) ?? -1,
      last: heads.get(partition) ?? -1,
      takenAt: before.get(partition) ?? -1,
    });
  /** Stored first, then published (a batch whose alerts all go after storing). */
  const raise = async (sensorId: string, partition = 0): Promise<OverheatAlert> => {
    const a = alertOf(sensorId, partition);
    await store(a);
    await publishLinked(a);
    await notice(partition);
    return a;
  };
  /**
   * Published at once (`lost`: the publish never reaches this replica, and no outage is noticed);
   * `stored()` stores it, moves the watermark and sends the notice.
   */
  const detect = async (sensorId: string, partition = 0, lost = false) => {
    const alert = alertOf(sensorId, partition);
    if (lost) linkOf(alert);
    else await publishLinked(alert);
    return {
      alert,
      stored: async () => {
        await store(alert);
        await notice(partition);
      },
    };
  };
  /**
   * Another replica takes the partition: it links each sensor's first alert to the offset before the
   * first it consumes, which is the watermark (its previous owner has stored everything judged).
   */
  const newOwner = (partition = 0) => {
    const watermark = watermarks.get(partition) ?? -1;
    before.set(partition, watermark);
    heads.set(partition, Math.max(heads.get(partition) ?? -1, watermark));
    for (const key of [...sensorHeads.keys()]) if (key.startsWith(`${partition}:`)) sensorHeads.delete(key);
  };
  return {
    fanout,
    store: history,
    raise,
    detect,
    newOwner,
    /**
     * Stores an alert judged by the partition's previous owner, which loses the partition before it
     * publishes it and sends the notice after it: published later, if at all.
     */
    storeUnpublished: async (sensorId: string, partition = 0) => {
      const a = alertOf(sensorId, partition);
      await store(a);
      return { alert: a, publish: () => fanout.publish([a], [linkOf(a)]) };
    },
    /** Each replay query's cursor so far, per partition. */
    reads,
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

  /** Whether the iterator has yielded within a few turns of the event loop (not a timing: the fakes answer at once). */
  async function settledWithin(promise: Promise<unknown>): Promise<boolean> {
    let settled = false;
    void promise.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    return settled;
  }

  describe('alerts published before they are stored', () => {
    it('reach a subscriber to all sensors at once, before the store has them', async () => {
      const p = fakePipeline();
      const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 100, logger });
      const sub = feed.open({});
      await p.replayed();
      const first = await p.detect('s1');
      const second = await p.detect('s2');
      expect((await take(sub, 2)).map((a) => a.id)).toEqual([first.alert.id, second.alert.id]);
      await sub.return?.();
    });

    it('are not skipped when one went out just before the subscription and is not stored yet', async () => {
      const p = fakePipeline();
      const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 100, logger });
      const unheard = await p.detect('s1');
      const sub = feed.open({});
      await p.replayed();
      const heard = await p.detect('s2');

      // `heard` follows an alert this subscription never saw: it waits for the store.
      const next = sub.next();
      expect(await settledWithin(next)).toBe(false);
      await unheard.stored();
      expect(((await next).value as DeliveredAlert).id).toBe(unheard.alert.id);
      expect((await take(sub, 1)).map((a) => a.id)).toEqual([heard.alert.id]);
      await sub.return?.();
    });

    it('are not skipped when the last one went out just before the subscription and no other follows', async () => {
      for (const sensorIds of [undefined, ['s1']]) {
        const p = fakePipeline();
        const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 100, logger });
        await p.raise('s1');
        const unheard = await p.detect('s1');
        const sub = feed.open({ sensorIds });
        await p.replayed();

        // Nothing follows it to reveal the gap: the notice of its batch (the first heard) does.
        const next = sub.next();
        expect(await settledWithin(next)).toBe(false);
        await unheard.stored();
        expect(((await next).value as DeliveredAlert).id).toBe(unheard.alert.id);
        await sub.return?.();
      }
    });

    /** A subscription (to all sensors, or to s1) that has joined partition 0 and taken its first alert. */
    async function joined(sensorIds: string[] | undefined) {
      const p = fakePipeline();
      const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 100, logger });
      const sub = feed.open({ sensorIds });
      await p.replayed();
      await p.raise('s1'); // a notice heard: the partition is joined
      expect((await take(sub, 1)).length).toBe(1);
      return { p, sub };
    }

    it('lost with Redis and not stored yet when the replay that follows the outage ran, come at the next notice', async () => {
      for (const sensorIds of [undefined, ['s1']]) {
        const { p, sub } = await joined(sensorIds);

        p.setRedis(false);
        const lost = await p.detect('s1');
        p.setRedis(true); // the replay runs now: the store does not have it yet
        const next = sub.next();
        expect(await settledWithin(next)).toBe(false);
        await lost.stored();
        expect(((await next).value as DeliveredAlert).id).toBe(lost.alert.id);
        await sub.return?.();
      }
    });

    it('lost with Redis while an earlier batch was still being stored, come once the store has them', async () => {
      for (const sensorIds of [undefined, ['s1']]) {
        const { p, sub } = await joined(sensorIds);

        const earlier = await p.detect('s1'); // its batch is being stored
        p.setRedis(false);
        const lost = await p.detect('s1'); // the next batch goes out before it, and is lost
        p.setRedis(true);
        await earlier.stored(); // the first notice after the loss: the store has the earlier one only
        expect((await take(sub, 1)).map((a) => a.id)).toEqual([earlier.alert.id]);
        const next = sub.next();
        expect(await settledWithin(next)).toBe(false);
        await lost.stored();
        expect(((await next).value as DeliveredAlert).id).toBe(lost.alert.id);
        await sub.return?.();
      }
    });

    it('reach a subscriber to some sensors once stored, the unheard ones included, in order', async () => {
      const p = fakePipeline();
      const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 100, logger });
      await p.raise('s2'); // stored: the partition has a watermark before the subscription
      const unheard = await p.detect('s1');
      const sub = feed.open({ sensorIds: ['s1', 's3'] });
      await p.replayed();
      const heard = await p.detect('s3');

      const next = sub.next();
      expect(await settledWithin(next)).toBe(false);
      await unheard.stored();
      expect(((await next).value as DeliveredAlert).id).toBe(unheard.alert.id);
      const after = sub.next();
      expect(await settledWithin(after)).toBe(false);
      await heard.stored();
      expect(((await after).value as DeliveredAlert).id).toBe(heard.alert.id);
      await sub.return?.();
    });

    it('reach a subscriber to some sensors at once, before the store has them, once it has joined the partition', async () => {
      const { p, sub } = await joined(['s1', 's2']);
      const first = await p.detect('s1');
      await p.detect('s3'); // not its sensor: never heard
      const second = await p.detect('s2');
      const third = await p.detect('s1');
      // Nothing is stored: they come by their sensors' chains alone.
      expect((await take(sub, 3)).map((a) => a.id)).toEqual([first, second, third].map((d) => d.alert.id));
      await sub.return?.();
    });

    it('follow a sensor’s own chain: one whose previous alert of that sensor was never heard waits for the store', async () => {
      const { p, sub } = await joined(['s1']);
      const missed = await p.detect('s1', 0, true); // published, and lost on the way without an outage
      const next = await p.detect('s1');
      const got = sub.next();
      expect(await settledWithin(got)).toBe(false);
      await missed.stored();
      await next.stored();
      expect(((await got).value as DeliveredAlert).id).toBe(missed.alert.id);
      expect((await take(sub, 1)).map((a) => a.id)).toEqual([next.alert.id]);
      await sub.return?.();
    });

    it('of a new owner of the partition do not overtake one its previous owner stored and has yet to publish', async () => {
      const { p, sub } = await joined(['s1', 's2']);
      // The previous owner stored an alert of s2 (it goes out after storing), then the partition moved.
      const late = await p.storeUnpublished('s2');
      p.newOwner();
      const first = await p.detect('s1'); // the new owner's first alert of s1 links to what it found stored
      await late.publish(); // the previous owner's publish arrives last
      await first.stored(); // the new owner's notice
      expect((await take(sub, 2)).map((a) => a.id)).toEqual([late.alert.id, first.alert.id]);
      const next = sub.next();
      expect(await settledWithin(next)).toBe(false); // and not twice
      const after = await p.detect('s2');
      expect(((await next).value as DeliveredAlert).id).toBe(after.alert.id);
      await sub.return?.();
    });

    it('move the cursor of a subscriber to some sensors to what a replay read, on partitions where none of its sensors alerted', async () => {
      const p = fakePipeline();
      const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 100, logger });
      await p.raise('s1', 0);
      await p.raise('s9', 1);
      const sub = feed.open({ sensorIds: ['s1'] });
      await p.replayed();
      for (let i = 0; i < 3; i++) await p.raise('s9', 1); // another sensor's, on another partition
      const unheard = await p.detect('s1', 0, true); // lost on the way: the next alert of s1 waits for a replay
      const next = await p.detect('s1', 0);
      await unheard.stored();
      await next.stored();
      const [first, second] = await take(sub, 2);
      expect([first!.id, second!.id]).toEqual([unheard.alert.id, next.alert.id]);
      // Partition 1 has none of its alerts, and its cursor is at the watermark the replay read there.
      const watermarks = await p.store.progress.watermarks(TOPIC);
      expect(AlertCursor.decode(second!.cursor)!.isAfter({ partition: 1, offset: watermarks.get(1)! })).toBe(false);
      await sub.return?.();
    });

    it("follow the partition by its publishers' notices, for a subscriber to some sensors none of which alert there: the new owner's first alert of them needs no replay", async () => {
      const { p, sub } = await joined(['s1']);
      for (let i = 0; i < 20; i++) await p.raise('s9'); // another sensor's alerts, each with its notice
      const readsBefore = p.reads.length;
      p.newOwner(); // its chain begins at the last notice heard
      const first = await p.detect('s1'); // its first alert of s1: published, not stored
      expect(((await sub.next()).value as DeliveredAlert).id).toBe(first.alert.id);
      expect(p.reads.length).toBe(readsBefore); // delivered before the store had it, without reading it
      await sub.return?.();
    });

    it('of a partition that changed hands are read from the store from the previous owner’s last notice, not from where the subscriber last had one', async () => {
      const { p, sub } = await joined(['s1']);
      for (let i = 0; i < 5; i++) await p.raise('s9'); // another sensor's alerts, each with its notice
      const lastNotice = (await p.store.progress.watermarks(TOPIC)).get(0)!;
      const unpublished = await p.storeUnpublished('s1'); // the previous owner never publishes it
      p.newOwner();
      const readsBefore = p.reads.length;
      const next = await p.raise('s1'); // the new owner's first alert of s1 links past the unpublished one
      expect((await take(sub, 2)).map((a) => a.id)).toEqual([unpublished.alert.id, next.id]);
      const replays = p.reads.slice(readsBefore);
      expect(replays).toHaveLength(1);
      expect(replays[0]!.get(0)).toBe(lastNotice);
      await sub.return?.();
    });

    it('that wait in too great a number are let go and read from the store once it has them', async () => {
      const p = fakePipeline();
      const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 3, logger });
      const unheard = await p.detect('s1');
      const sub = feed.open({});
      await p.replayed();
      const waiting = [];
      for (let i = 0; i < 5; i++) waiting.push(await p.detect('s1'));

      const next = sub.next();
      expect(await settledWithin(next)).toBe(false);
      await unheard.stored();
      for (const w of waiting) await w.stored();
      const ids = [((await next).value as DeliveredAlert).id, ...(await take(sub, 5)).map((a) => a.id)];
      expect(ids).toEqual([unheard, ...waiting].map((d) => d.alert.id));
      await sub.return?.();
    });
  });

  it('keeps a subscriber that stops taking alerts to a few of them, and gives it every one, in order, once it takes them again', async () => {
    const p = fakePipeline();
    const feed = createAlertFeed({ fanout: p.fanout, store: p.store, topic: TOPIC, maxPending: 8, logger });
    const budget = createSocketBudget(64 * 1024, () => undefined);
    const sub = feed.open({ budget });
    await p.replayed();
    const raised: string[] = [];
    for (let i = 0; i < 50; i++) raised.push((await p.raise('s1')).id);

    // Not taking: little more than half a page (here 2) is handed over; the rest stays in the store
    // (or, up to maxPending, aside). The budget is charged for those handed over.
    expect(budget.used()).toBeLessThanOrEqual(3 * queuedAlertBytes({ cursor: 'x'.repeat(64) }));
    expect((await take(sub, 50)).map((a) => a.id)).toEqual(raised);
    await sub.return?.();
    expect(budget.used()).toBe(0);
  });
});
