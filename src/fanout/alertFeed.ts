/**
 * The `overheatAlerts` feed of one subscriber: history from MongoDB up to the stored watermark,
 * then live alerts from Redis, joined without gap or duplicate by the subscriber's AlertCursor.
 *
 * Why it is gap-free: the feed listens on Redis first, then reads the watermarks, then replays
 * stored alerts up to them; anything at or before the cursor is dropped, so replays and re-publishes
 * never reach the client twice. An item stored before it was published (incident updates) and
 * beyond a watermark was published after the listener existed, so it arrives live.
 *
 * Overheat alerts are published before they are stored (fanout/alertFanout.ts), so one published
 * just before the listener existed may be neither heard nor stored yet. Each carries its ChainLink:
 * `prev`, the offset of the alert published before it on its partition, and `sensorPrev`, that of
 * its sensor's alert published before it there (stream/alertChain.ts):
 * - a subscription to all sensors knows, per partition, the offset up to which it has every alert
 *   (`through`: its cursor, the watermark of its last replay, the last alert it delivered). An alert
 *   whose `prev` is within that is delivered at once. Otherwise something before it was missed: the
 *   partition's live alerts wait until the store has reached `prev` (a progress notice says so, or
 *   one already did), a replay reads what was missed, and the waiting alerts follow;
 * - a subscription to some sensors hears only their alerts, so it cannot follow the partition's
 *   chain; it follows each sensor's instead. Once it has joined the partition (below), an alert whose
 *   `sensorPrev` is within what it has of that sensor (`through`, or the sensor's last delivered
 *   alert) is delivered at once, at the speed of an unfiltered one; otherwise the partition waits for
 *   the store to reach `sensorPrev`, as above. Why the join and not the sensor chains alone: its
 *   cursor is one offset per partition, so delivering sensor A's alert moves it past an alert of
 *   sensor B published just before this listened and not stored yet, which a replay would then never
 *   read. After the join every alert published on the partition is heard (Redis keeps a publisher's
 *   order, and a loss makes the fan-out hold and resync, which joins again); the sensor chains catch
 *   what a change of publisher could put out of order (the new owner links each sensor's first alert
 *   to the offset before the first it consumed, which the store has: see handoverAssigner).
 * Every subscription joins each partition once it has every alert published before it listened:
 * the first notice it hears carries `last`, the offset of the last alert published then. If it has
 * everything up to there, it is joined. Otherwise it waits for the store to reach `last` (the alert
 * path publishes a batch's alerts while earlier batches are still being stored, so `last` may be
 * beyond that notice's watermark), and one replay then reads what it missed.
 * The publisher repeats a partition's last notice every PROGRESS_REPEAT_MS while it has published
 * nothing beyond it, so a notice lost on the way delays, but never strands, what waits for it.
 *
 * Resuming from an old cursor: the replay reads REPLAY_PAGE alerts at a time and reads the next page
 * only once the subscriber has taken most of the previous one, so a subscriber 100k alerts behind
 * holds one page in memory, not its whole backlog. Live alerts that arrive meanwhile are held (up to
 * `maxPending`); past that they are let go and the replay goes round once more, once the store has
 * them (their partition's watermark has passed them).
 *
 * Slow subscribers: backlogs (replays, alerts that waited for the store, live alerts that find the
 * client without room) are handed over at the client's pace (hasRoom); at most `maxPending` live
 * alerts are kept aside for one subscriber, the rest is read from the store later. What is queued
 * for all subscriptions of one socket, and what waits for room, is charged to its budget: past it,
 * or sitting at the pause line without reading, the socket is closed (4008) and the client resumes
 * with its last cursor. SUBSCRIBER_TOO_SLOW remains as a guard on a queue that reached `maxPending`.
 */
import { GraphQLError } from 'graphql';
import type { ChainLink } from '../domain/alert.js';
import { AlertCursor } from '../domain/alertCursor.js';
import type { Logger } from '../logger.js';
import { Backoff, sleep } from '../shared/retry.js';
import type { MongoStore } from '../store/mongoStore.js';
import type { StreamHistory } from '../store/streamHistory.js';
import type { AlertFanout, Fanout, StreamProgress } from './alertFanout.js';
import {
  CURSOR_EXPIRED,
  REPLAY_PAGE,
  SUBSCRIBER_TOO_SLOW,
  type AlertFeed,
  type Delivered,
  type Feed,
  type FeedRequest,
  type Positioned,
} from './feed.js';
import { queuedAlertBytes } from './socketBudget.js';

export {
  CURSOR_EXPIRED,
  REPLAY_PAGE,
  SINK_LOW_WATER_BYTES,
  SUBSCRIBER_TOO_SLOW,
  type AlertFeed,
  type AlertSink,
  type Delivered,
  type DeliveredAlert,
  type Feed,
  type FeedRequest,
  type Positioned,
  type Sink,
} from './feed.js';

/** Whether a per-partition array holds anything (partitions index the arrays below). */
const anyOf = (values: readonly unknown[]): boolean => values.some((v) => v !== undefined);

/**
 * Heap charged to the socket's budget for each live item being handed to a client that has no room
 * for it: the entry (two fields) and its array slot, with 8-byte pointers. The item itself is
 * decoded once per replica and shared by every subscription that hears it. (Items waiting for the
 * store, or arriving meanwhile, are the server's delay: they are bounded by maxPending.)
 */
const LIVE_ENTRY_BYTES = 48;

/** A live item as heard: `link` is its place in its partition's chains (undefined: stored before it was published). */
interface LiveEntry<T> {
  readonly item: T;
  readonly link: ChainLink | undefined;
}

/** What the alert feed reads from the store: stored alerts by position, and the stream watermarks. */
export interface AlertHistory {
  readonly alerts: Pick<MongoStore['alerts'], 'between' | 'purgedUpTo'>;
  readonly progress: Pick<MongoStore['progress'], 'watermarks'>;
}

export function createAlertFeed(deps: {
  fanout: AlertFanout;
  store: AlertHistory;
  topic: string;
  maxPending: number;
  logger: Logger;
}): AlertFeed {
  return createFeed({
    fanout: deps.fanout,
    history: deps.store.alerts,
    progress: deps.store.progress,
    topic: deps.topic,
    maxPending: deps.maxPending,
    logger: deps.logger,
    itemBytes: queuedAlertBytes,
  });
}

/**
 * A feed over one stream (overheat alerts, incident updates): every stream is stored before its
 * partition watermark moves and published after, which is all the join below relies on.
 */
export function createFeed<T extends Positioned>(deps: {
  fanout: Fanout<T>;
  history: StreamHistory<T>;
  progress: Pick<MongoStore['progress'], 'watermarks'>;
  topic: string;
  maxPending: number;
  logger: Logger;
  /** Heap held by one queued item, charged to its socket's budget. */
  itemBytes: (item: Delivered<T>) => number;
}): Feed<T> {
  const log = deps.logger.child({ module: 'fanout.feed' });
  // A page plus what may still be queued must fit under maxPending.
  const pageSize = Math.max(1, Math.min(REPLAY_PAGE, Math.floor(deps.maxPending / 2)));
  const open = new Set<FeedSubscription>();
  let delivered = 0;
  /** Subscriptions with live items waiting for the store: they are told of progress. */
  const waitingForStore = new Set<FeedSubscription>();
  /** Per partition notices were heard for, the subscriptions that have not joined it yet (module comment). */
  const unjoined = new Map<number, Set<FeedSubscription>>();
  /** Per partition, the highest watermark any notice told this replica. */
  const noticedWatermarks: number[] = [];
  deps.fanout.onProgress((progress) => {
    noticedWatermarks[progress.partition] = Math.max(progress.watermark, noticedWatermarks[progress.partition] ?? -1);
    let joining = unjoined.get(progress.partition);
    if (!joining) unjoined.set(progress.partition, (joining = new Set(open)));
    for (const s of new Set([...joining, ...waitingForStore])) s.onProgress(progress);
  });

  class FeedSubscription implements AsyncIterableIterator<Delivered<T>> {
    private readonly queue: Delivered<T>[] = [];
    /** Bytes this subscription has charged to its socket's budget (queued alerts). */
    private charged = 0;
    private waiter: ((r: IteratorResult<Delivered<T>>) => void) | undefined;
    private failWaiter: ((e: unknown) => void) | undefined;
    private failure: unknown;
    private done = false;
    private cursor: AlertCursor | undefined;
    /** While replaying from the store (or holding, see AlertFanout), live alerts wait here (in arrival order). */
    private held: LiveEntry<T>[] | undefined = [];
    /** Per partition, live alerts waiting for the store (see the module comment), in arrival order. */
    private readonly waiting: (LiveEntry<T>[] | undefined)[] = [];
    private waitingCount = 0;
    /** Live items being handed over at the subscriber's pace (admitPaced), and whether it waits for room. */
    private pacing = 0;
    private blocked = false;
    /** Bytes charged to the socket's budget for the live items kept aside while the client has no room. */
    private liveCharged = 0;
    /** All sensors: per partition, the offset up to which every alert was delivered or is known absent. */
    private readonly through: number[] = [];
    /** Some sensors: per sensor, the offset of its last alert delivered live by its chain. */
    private readonly sensorThrough = new Map<string, number>();
    /** Per waiting partition, the offset the store must reach (unset: some sensors, waiting for the join). */
    private readonly need: number[] = [];
    /** Per partition, offsets of live alerts let go (too many waiting): the store must reach them before any other. */
    private readonly owed: (number | undefined)[] = [];
    /** Some sensors: per partition, the highest watermark known, and whether a notice was heard since listening. */
    private readonly covered: number[] = [];
    private readonly noticed: boolean[] = [];
    /**
     * Partitions whose live alerts arrive whole: a notice heard since listening showed nothing was
     * missed before it, or a replay followed it. Per partition, the highest `last` heard.
     */
    private readonly joined: boolean[] = [];
    private readonly heardLast: number[] = [];
    /**
     * Per partition, `last` of the first notice heard since listening: every alert published before
     * this listened is at or before it. Joined once everything up to it was delivered (the store may
     * reach it after that notice: alerts of later batches go out before earlier ones are stored).
     */
    private readonly target: number[] = [];
    private unlisten: (() => void) | undefined;
    private readonly filter: ReadonlySet<string> | undefined;
    private readonly stopResync: () => void;

    constructor(private readonly request: FeedRequest<T>) {
      this.filter = request.sensorIds ? new Set(request.sensorIds) : undefined;
      this.stopResync = deps.fanout.onResync((phase) => {
        // Live delivery may have lost alerts not stored yet (published before storing): the replay
        // cannot read those, so every partition is joined again at its next notice.
        this.unjoin();
        if (phase === 'hold') this.hold();
        else void this.replay();
      });
      void this.start();
    }

    private async start(): Promise<void> {
      try {
        this.unlisten = await deps.fanout.listen(this.request.sensorIds, (item, link) => this.onLive(item, link));
        if (this.done) return this.unlisten();
        if (this.request.after) {
          for (const [partition, upTo] of await deps.history.purgedUpTo(deps.topic)) {
            if (this.request.after.isAfter({ partition, offset: upTo })) {
              throw new GraphQLError(
                'This cursor is older than the alerts kept (ALERTS_RETENTION): resubscribe without "after", or with a newer cursor',
                {
                  extensions: { code: CURSOR_EXPIRED, partition },
                },
              );
            }
          }
        }
        this.cursor = this.request.after ?? AlertCursor.fromWatermarks(await deps.progress.watermarks(deps.topic));
        for (const [partition, offset] of this.cursor.entries()) this.through[partition] = offset;
        await this.replay();
      } catch (err) {
        this.fail(err);
      }
    }

    /** Live delivery may have lost alerts: keep live ones aside until the replay that follows. */
    private hold(): void {
      if (!this.done) this.held ??= [];
    }

    private onLive(item: T, link: ChainLink | undefined): void {
      if (this.done) return;
      if (!this.held) {
        if (this.hasRoom()) return this.admit(item, link);
        // No room: this and what follows go at the subscriber's pace.
        this.held = [{ item, link }];
        return void this.replay(false);
      }
      if (this.held.length >= deps.maxPending) {
        // Let go, and read them from the store instead (once it has them): a subscriber behind
        // holds at most maxPending live alerts, and catches up from the store at its own pace.
        this.letGo(this.held);
        this.held = [];
        this.storeWanted = true;
        this.replayAgain = true;
        return;
      }
      this.held.push({ item, link });
    }

    /** Charges the socket's budget for the live items kept aside (past it, the socket is closed). */
    private chargeLive(): void {
      const budget = this.request.budget;
      if (!budget || this.done || this.failure !== undefined) return;
      const bytes = this.blocked ? this.pacing * LIVE_ENTRY_BYTES : 0;
      if (bytes > this.liveCharged) budget.charge(bytes - this.liveCharged);
      else budget.release(this.liveCharged - bytes);
      this.liveCharged = bytes;
    }

    /**
     * Delivers a live alert now, or has it wait for the store (with every later one of its
     * partition). Item and `link` come apart: at the live edge nothing is kept, so nothing is made.
     */
    private admit(item: T, link: ChainLink | undefined): void {
      const { partition, offset } = item.position;
      const queue = this.waiting[partition];
      if (queue) {
        queue.push({ item, link });
        if (++this.waitingCount > deps.maxPending) this.letGoWaiting();
        return;
      }
      if (link !== undefined) {
        const through = this.through[partition] ?? -1;
        if (!this.filter) {
          // Something before it was missed: wait until the store has it.
          if (link.prev > through) return this.wait({ item, link }, link.prev);
          if (offset > through) this.through[partition] = offset;
        } else if (offset > through) {
          // Past what its last replay read: the join, then its sensor's chain (module comment). A
          // publisher without sensor chains: once the store has the alert itself.
          if (!this.joined[partition]) return this.wait({ item, link });
          const sensorPrev = link.sensorPrev ?? offset;
          if (sensorPrev > Math.max(through, this.sensorThrough.get(item.sensorId) ?? -1))
            return this.wait({ item, link }, sensorPrev);
          this.sensorThrough.set(item.sensorId, offset);
        }
      }
      this.deliver(item);
    }

    /** Starts the partition's queue of alerts waiting for the store to reach `need` (or for the join). */
    private wait(entry: LiveEntry<T>, need?: number): void {
      const { partition } = entry.item.position;
      this.waiting[partition] = [entry];
      this.waitingCount++;
      waitingForStore.add(this);
      if (need === undefined) return;
      this.need[partition] = need;
      // A notice already said the store has it (a new owner links to what it found stored): no need to wait for the next.
      if (need <= (noticedWatermarks[partition] ?? -1) && !this.held) void this.replay();
    }

    /** Live alerts dropped (too many waiting): each is owed from the store, before anything after it. */
    private letGo(entries: readonly LiveEntry<T>[]): void {
      for (const { item, link } of entries) {
        if (link === undefined) continue; // stored before it was published: the replay reads it
        const { partition, offset } = item.position;
        this.owed[partition] = Math.max(offset, this.owed[partition] ?? -1);
      }
      if (anyOf(this.owed)) waitingForStore.add(this);
    }

    private letGoWaiting(): void {
      for (const queue of this.waiting) if (queue) this.letGo(queue);
      this.waiting.length = 0;
      this.waitingCount = 0;
      this.need.length = 0;
      void this.replay();
    }

    /** A partition's watermark moved: a progress notice, heard since listening. */
    onProgress(progress: StreamProgress): void {
      if (this.done) return;
      const { partition, watermark, last } = progress;
      this.noticed[partition] = true;
      this.heardLast[partition] = Math.max(last, this.heardLast[partition] ?? -1);
      if (watermark > (this.covered[partition] ?? -1)) this.covered[partition] = watermark;
      if (!this.joined[partition] && this.cursor) {
        // Was anything published before this listened that it has not had?
        const target = (this.target[partition] ??= last);
        if (target <= (this.through[partition] ?? -1)) {
          this.join(partition);
          if (watermark > (this.through[partition] ?? -1)) this.through[partition] = watermark;
        } else if (watermark >= target && !this.replaying) return void this.replay();
        // Otherwise the store has not reached it yet: a later notice will say so.
      }
      if (this.held) {
        // Holding for what was let go: replay once the store has it.
        if (!this.replaying && (this.owed[partition] ?? Infinity) <= watermark) void this.replay();
        return;
      }
      const queue = this.waiting[partition];
      if (!queue) return;
      const need = this.need[partition];
      if (need !== undefined) {
        if (need <= watermark) void this.replay();
        return;
      }
      // Some sensors, not joined: a replay of what the store has beyond the last one (it joins once
      // the store has everything published before this listened). Joined since: admit them again.
      if (!this.joined[partition]) {
        if (watermark > (this.through[partition] ?? -1)) void this.replay();
      } else void this.replay(false);
    }

    private syncWaiting(): void {
      if (!anyOf(this.waiting) && !anyOf(this.owed)) waitingForStore.delete(this);
      else waitingForStore.add(this);
    }

    /** Resolves once the subscriber has taken most of what is queued (or the feed ended). */
    private drained: (() => void) | undefined;
    /**
     * Whether the subscriber can take more at once: its transport holds no more than a reading
     * client's socket does (its `pauseLineBytes`), or its queue under half a
     * page and a quarter of the budget. Backlogs (replays, alerts that waited for the store) go out
     * no faster, so a burst never passes the budget of a client that reads, while one that does not
     * read still crosses that line, and is closed.
     */
    private hasRoom(): boolean {
      const sink = this.request.sink;
      if (sink) return sink.backlog() <= sink.pauseLineBytes;
      const budget = this.request.budget;
      return this.queue.length <= pageSize / 2 && (!budget || this.charged <= budget.limit / 4);
    }
    private async waitForRoom(): Promise<void> {
      if (this.request.sink) {
        while (!this.done && !this.hasRoom()) await sleep(10);
        return;
      }
      if (this.done || this.hasRoom()) return;
      return new Promise((resolve) => (this.drained = resolve));
    }
    private wakeDrained(): void {
      if (this.drained && (this.done || this.hasRoom())) {
        const d = this.drained;
        this.drained = undefined;
        d();
      }
    }

    private overflow(): void {
      this.fail(
        new GraphQLError(
          `Subscriber fell more than ${deps.maxPending} alerts behind; resubscribe with "after" set to the last cursor received`,
          {
            extensions: { code: SUBSCRIBER_TOO_SLOW, maxPending: deps.maxPending },
          },
        ),
      );
    }

    private replaying = false;
    private replayAgain = false;
    /** The next replay round reads the store (otherwise it only releases what waits). */
    private storeWanted = false;

    /**
     * Replays stored alerts after the cursor, then releases what arrived live meanwhile.
     * Replays never overlap (a second request makes the running one loop once more), and a failed
     * store read is retried: releasing live alerts past a gap would move the cursor over it.
     */
    private async replay(fromStore = true): Promise<void> {
      if (this.done || !this.cursor) return;
      this.held ??= [];
      this.storeWanted ||= fromStore;
      if (this.replaying) {
        this.replayAgain = true;
        return;
      }
      this.replaying = true;
      try {
        do {
          this.replayAgain = false;
          if (this.storeWanted) {
            this.storeWanted = false;
            if (!(await this.replayStored())) return;
          }
          // Alerts let go that the store does not have yet: keep holding until it does.
          if (anyOf(this.owed)) return;
          // Still holding: the replay that closes the hold releases them.
          if (deps.fanout.isHolding()) return;
          // What waited for the store, then what arrived meanwhile, in order, at the subscriber's pace.
          const again = this.waiting.flatMap((queue) => queue ?? []);
          this.waiting.length = 0;
          this.waitingCount = 0;
          this.need.length = 0;
          await this.admitPaced(again);
          while (!this.done && !this.replayAgain && this.held.length > 0) {
            const arrived = this.held;
            this.held = [];
            await this.admitPaced(arrived);
          }
        } while (this.replayAgain && !this.done);
        this.held = undefined;
      } finally {
        this.replaying = false;
        if (!this.done) {
          this.syncWaiting();
          this.recheck();
        }
      }
    }

    /**
     * Replays stored alerts after the cursor up to the watermarks (retrying a failed read: releasing
     * live alerts past a gap would move the cursor over it), then records what that made whole.
     * False when the feed ended meanwhile.
     */
    private async replayStored(): Promise<boolean> {
      const backoff = new Backoff(100, 2000);
      // A notice heard before the watermarks are read makes its partition whole (module comment), once
      // the store has everything published before this listened.
      const noticed = [...this.noticed];
      const targets = [...this.target];
      let watermarks: Map<number, number>;
      for (;;) {
        try {
          watermarks = await deps.progress.watermarks(deps.topic);
          for (;;) {
            const page = await deps.history.between(this.cursor!, watermarks, this.filter, pageSize);
            for (const a of page) {
              if (!this.hasRoom()) await this.waitForRoom();
              this.deliver(a);
            }
            if (page.length < pageSize || this.done) break;
          }
          break;
        } catch (err) {
          const retryInMs = backoff.next();
          log.warn({ err: (err as Error).message, retryInMs }, 'replay from store failed; retrying');
          await sleep(retryInMs);
          if (this.done) return false;
        }
      }
      if (this.done) return false;
      // Every stored alert up to the watermarks read has now been delivered (or was before the cursor).
      // The cursor moves there too: on a partition where a subscription to some sensors delivers
      // nothing it stayed where it began, and every replay (a resuming client too) read all since.
      for (const [partition, offset] of watermarks) this.cursor!.advance({ partition, offset });
      for (const [partition, watermark] of watermarks) {
        if (watermark > (this.through[partition] ?? -1)) this.through[partition] = watermark;
        if (watermark > (this.covered[partition] ?? -1)) this.covered[partition] = watermark;
        if (noticed[partition] && watermark >= (targets[partition] ?? Infinity)) this.join(partition);
      }
      this.owed.forEach((offset, partition) => {
        if (offset !== undefined && offset <= (watermarks.get(partition) ?? -1)) this.owed[partition] = undefined;
      });
      return true;
    }

    /** Admits live alerts in order, waiting while the subscriber has no room; arrivals meanwhile queue in `held`. */
    private async admitPaced(entries: readonly LiveEntry<T>[]): Promise<void> {
      this.pacing = entries.length;
      try {
        for (const entry of entries) {
          if (this.done) return;
          if (!this.hasRoom()) {
            this.blocked = true;
            this.chargeLive();
            await this.waitForRoom();
            this.blocked = false;
            this.chargeLive();
          }
          this.pacing--;
          this.admit(entry.item, entry.link);
        }
      } finally {
        this.pacing = 0;
        this.blocked = false;
        this.chargeLive();
      }
    }

    private unjoin(): void {
      this.joined.length = 0;
      this.noticed.length = 0; // a notice heard before the loss does not join
      this.target.length = 0;

      for (const joining of unjoined.values()) joining.add(this);
    }

    private join(partition: number): void {
      this.joined[partition] = true;
      unjoined.get(partition)?.delete(this);
    }

    /** Progress heard while busy: act on it now, for partitions not joined and for what still waits. */
    private recheck(): void {
      if (this.held) return;
      const pending = new Set<number>();
      this.waiting.forEach((queue, partition) => {
        if (queue) pending.add(partition);
      });
      this.noticed.forEach((heard, partition) => {
        if (heard && !this.joined[partition]) pending.add(partition);
      });
      for (const partition of pending) {
        const watermark = this.covered[partition];
        const last = this.heardLast[partition];
        if (watermark !== undefined && last !== undefined && this.noticed[partition])
          this.onProgress({ partition, watermark, last });
      }
    }

    private deliver(alert: T): void {
      if (this.done || !this.cursor) return;
      if (this.filter && !this.filter.has(alert.sensorId)) return;
      if (!this.cursor.advance(alert.position)) return;
      delivered++;
      if (this.request.sink) return this.request.sink.push(alert, this.cursor.encode());
      const item: Delivered<T> = { ...alert, cursor: this.cursor.encode() };
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        this.failWaiter = undefined;
        w({ value: item, done: false });
        return;
      }
      if (this.queue.length >= deps.maxPending) return this.overflow();
      this.queue.push(item);
      if (this.request.budget) {
        const bytes = deps.itemBytes(item);
        this.charged += bytes;
        // Over budget: the socket's owner closes it, which ends this subscription too.
        this.request.budget.charge(bytes);
      }
    }

    private releaseAll(): void {
      this.request.budget?.release(this.charged + this.liveCharged);
      this.charged = 0;
      this.liveCharged = 0;
    }

    private fail(err: unknown): void {
      if (this.done || this.failure !== undefined) return;
      this.failure = err;
      this.held = undefined;
      this.queue.length = 0;
      this.releaseAll();
      if (this.request.sink) return this.dispose();
      if (this.failWaiter) {
        const f = this.failWaiter;
        this.waiter = undefined;
        this.failWaiter = undefined;
        this.dispose();
        f(err);
      }
    }

    private dispose(): void {
      if (this.done) return;
      this.done = true;
      waitingForStore.delete(this);
      for (const joining of unjoined.values()) joining.delete(this);
      this.waiting.length = 0;
      this.wakeDrained();
      this.unlisten?.();
      this.stopResync();
      open.delete(this);
      this.queue.length = 0;
      this.releaseAll();
      this.request.sink?.end(this.failure);
    }

    next(): Promise<IteratorResult<Delivered<T>>> {
      if (this.failure !== undefined && !this.done) {
        const err = this.failure;
        this.dispose();
        return Promise.reject(err instanceof Error ? err : new Error('alert feed failed'));
      }
      const value = this.queue.shift();
      if (value) {
        if (this.request.budget) {
          const bytes = deps.itemBytes(value);
          this.charged -= bytes;
          this.request.budget.release(bytes);
        }
        this.wakeDrained();
        return Promise.resolve({ value, done: false });
      }
      if (this.done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve, reject) => {
        this.waiter = resolve;
        this.failWaiter = reject;
      });
    }

    return(): Promise<IteratorResult<Delivered<T>>> {
      const w = this.waiter;
      this.waiter = undefined;
      this.failWaiter = undefined;
      this.dispose();
      w?.({ value: undefined, done: true });
      return Promise.resolve({ value: undefined, done: true });
    }

    throw(err?: unknown): Promise<IteratorResult<Delivered<T>>> {
      this.dispose();
      return Promise.reject(err instanceof Error ? err : new Error('alert feed failed'));
    }

    [Symbol.asyncIterator](): AsyncIterableIterator<Delivered<T>> {
      return this;
    }
  }

  return {
    open(request) {
      const s = new FeedSubscription(request);
      open.add(s);
      for (const joining of unjoined.values()) joining.add(s);
      return s;
    },
    async currentCursor() {
      return AlertCursor.fromWatermarks(await deps.progress.watermarks(deps.topic)).encode();
    },
    size: () => open.size,
    delivered: () => delivered,
    closeAll() {
      for (const s of [...open]) void s.return();
    },
  };
}
