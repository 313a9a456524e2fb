/**
 * One subscriber's subscription to a feed (`overheatAlerts`, `incidentUpdates`): history from
 * MongoDB up to the stored watermark, then live items from Redis, joined without gap or duplicate by
 * the subscriber's AlertCursor. It hears live items and progress notices and decides when each
 * item may go out; the replay (feedReplay.ts) reads the store, and the outbox (subscriberOutbox.ts)
 * hands items over at the subscriber's pace.
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
 *   (PartitionState's `through`: its cursor, the watermark of its last replay, the last alert it
 *   delivered). An alert whose `prev` is within that is delivered at once. Otherwise something
 *   before it was missed: the partition's live alerts wait until the store has reached `prev` (a
 *   progress notice says so, or one already did), a replay reads what was missed, and the waiting
 *   alerts follow;
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
 * the first notice it hears carries `last`, the offset of the last alert published then (the
 * partition's `target`). If it has everything up to there, it is joined. Otherwise it waits for the
 * store to reach `last` (the alert path publishes a batch's alerts while earlier batches are still
 * being stored, so `last` may be beyond that notice's watermark), and one replay then reads what it
 * missed.
 * The publisher repeats a partition's last notice every PROGRESS_REPEAT_MS while it has published
 * nothing beyond it, so a notice lost on the way delays, but never strands, what waits for it.
 */
import { GraphQLError } from 'graphql';
import type { ChainLink } from '../domain/alert.js';
import { AlertCursor } from '../domain/alertCursor.js';
import type { StreamHistory } from '../store/streamHistory.js';
import type { Fanout, StreamProgress } from './alertFanout.js';
import { CURSOR_EXPIRED, type Delivered, type FeedRequest, type Positioned } from './feed.js';
import { FeedReplay, type ReplaySource, type ReplayTarget } from './feedReplay.js';
import type { OpenSubscriptions, ProgressListener } from './openSubscriptions.js';
import { Partitions, type LiveEntry, type PartitionState } from './partitionState.js';
import { SubscriberOutbox } from './subscriberOutbox.js';

/** What every subscription of one feed shares: the stream's fan-out and store, and its limits. */
export interface SubscriptionContext<T extends Positioned> extends ReplaySource<T> {
  readonly fanout: Fanout<T>;
  readonly history: StreamHistory<T>;
  /** Heap held by one queued item, charged to its socket's budget. */
  readonly itemBytes: (item: Delivered<T>) => number;
  readonly subscriptions: OpenSubscriptions<FeedSubscription<T>>;
  /** An item was handed to a subscriber. */
  readonly onDelivered: () => void;
}

export class FeedSubscription<T extends Positioned> implements ProgressListener, ReplayTarget<T> {
  /** What the subscriber holds: the iterator `open` returns. */
  readonly outbox: SubscriberOutbox<T>;
  readonly partitions = new Partitions<T>();
  readonly filter: ReadonlySet<string> | undefined;
  private readonly replay: FeedReplay<T>;
  /** Live items waiting for the store, over all partitions. */
  private waitingCount = 0;
  /** Some sensors: per sensor, the offset of its last alert delivered live by its chain. */
  private readonly sensorThrough = new Map<string, number>();
  private unlisten: (() => void) | undefined;
  private readonly stopResync: () => void;

  constructor(
    private readonly request: FeedRequest<T>,
    private readonly ctx: SubscriptionContext<T>,
  ) {
    this.filter = request.sensorIds ? new Set(request.sensorIds) : undefined;
    this.outbox = new SubscriberOutbox({
      request,
      filter: this.filter,
      maxPending: ctx.maxPending,
      pageSize: ctx.pageSize,
      itemBytes: ctx.itemBytes,
      onDelivered: ctx.onDelivered,
      onFail: () => this.replay.drop(),
      onEnd: () => this.ended(),
    });
    this.replay = new FeedReplay(ctx, this);
    this.stopResync = ctx.fanout.onResync((phase) => {
      // Live delivery may have lost alerts not stored yet (published before storing): the replay
      // cannot read those, so every partition is joined again at its next notice.
      this.unjoin();
      if (phase === 'hold') this.hold();
      else void this.replay.run();
    });
    void this.start();
  }

  private async start(): Promise<void> {
    const { fanout, history, progress, topic } = this.ctx;
    try {
      this.unlisten = await fanout.listen(this.request.sensorIds, (item, link) => this.onLive(item, link));
      if (this.outbox.done) return this.unlisten();
      if (this.request.after) {
        for (const [partition, upTo] of await history.purgedUpTo(topic)) {
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
      this.outbox.cursor = this.request.after ?? AlertCursor.fromWatermarks(await progress.watermarks(topic));
      for (const [partition, offset] of this.outbox.cursor.entries()) this.partitions.of(partition).through = offset;
      await this.replay.run();
    } catch (err) {
      this.outbox.fail(err);
    }
  }

  /** Live delivery may have lost alerts: keep live ones aside until the replay that follows. */
  private hold(): void {
    if (!this.outbox.done) this.replay.hold();
  }

  private onLive(item: T, link: ChainLink | undefined): void {
    if (this.outbox.done) return;
    if (!this.replay.holding) {
      if (this.outbox.hasRoom()) return this.admit(item, link);
      // No room: this and what follows go at the subscriber's pace.
      return this.replay.pace({ item, link });
    }
    this.replay.keep({ item, link });
  }

  /**
   * Delivers a live alert now, or has it wait for the store (with every later one of its
   * partition). Item and `link` come apart: at the live edge nothing is kept, so nothing is made.
   */
  admit(item: T, link: ChainLink | undefined): void {
    const { partition, offset } = item.position;
    const state = this.partitions.of(partition);
    if (state.waiting) {
      state.waiting.push({ item, link });
      if (++this.waitingCount > this.ctx.maxPending) this.letGoWaiting();
      return;
    }
    if (link !== undefined) {
      if (!this.filter) {
        // Something before it was missed: wait until the store has it.
        if (!this.has(partition, state, link.prev)) return this.wait(state, { item, link }, link.prev);
        state.advanceThrough(offset);
      } else if (!state.has(offset)) {
        // Past what its last replay read: the join, then its sensor's chain (module comment). A
        // publisher without sensor chains: once the store has the alert itself.
        if (!state.joined) return this.wait(state, { item, link });
        const sensorPrev = link.sensorPrev ?? offset;
        if (!this.has(partition, state, sensorPrev, this.sensorThrough.get(item.sensorId)))
          return this.wait(state, { item, link }, sensorPrev);
        this.sensorThrough.set(item.sensorId, offset);
      }
    }
    this.outbox.deliver(item);
  }

  /**
   * Whether this has every item of the partition up to `offset` (or, `sensorThrough`, every one of
   * a sensor up to there). When its own record says no, the notices of the partition's publishers
   * may say yes (catchUp), and spare a wait for the store and a replay.
   */
  private has(partition: number, state: PartitionState<T>, offset: number, sensorThrough = -1): boolean {
    if (offset <= Math.max(state.through, sensorThrough)) return true;
    this.catchUp(partition, state);
    return offset <= state.through;
  }

  /**
   * Moves `through`, and the cursor, over what the partition's publishers' notices show this has.
   * A notice says every item after its sender's `takenAt` up to its watermark was published before
   * it (stream/alertChain.ts): a subscription that has joined the partition heard each of them
   * before the notice came, and with nothing waiting and nothing held it has handled each. So if it
   * has everything up to `takenAt`, it has everything up to the watermark. Read here, when needed,
   * rather than told at every notice: a joined subscription hears no notices (openSubscriptions.ts).
   * So a subscription to some sensors follows a partition where none of them alert, and when the
   * partition changes hands, the new owner's first alert of its sensors needs no replay (its
   * `sensorPrev` is the new chain's `takenAt`, which the last notice of the previous owner reached),
   * or a replay of what came after the previous owner's last notice, not of all since it subscribed.
   */
  private catchUp(partition: number, state: PartitionState<T>): void {
    const cursor = this.outbox.cursor;
    if (!state.joined || state.waiting || this.replay.holding || !cursor) return;
    for (const { takenAt, watermark } of this.ctx.subscriptions.chainsOf(partition)) {
      if (watermark <= state.through || !state.has(takenAt)) continue;
      state.advanceThrough(watermark);
      cursor.advance({ partition, offset: watermark });
    }
  }

  /** Starts the partition's queue of alerts waiting for the store to reach `need` (or for the join). */
  private wait(state: PartitionState<T>, entry: LiveEntry<T>, need?: number): void {
    state.startWaiting(entry, need);
    this.waitingCount++;
    this.ctx.subscriptions.waitsForStore(this, true);
    if (need === undefined) return;
    // A notice already said the store has it (a new owner links to what it found stored): no need to wait for the next.
    const { partition } = entry.item.position;
    if (need <= this.ctx.subscriptions.noticedWatermark(partition) && !this.replay.holding) void this.replay.run();
  }

  /** Live alerts dropped (too many waiting): each is owed from the store, before anything after it. */
  letGo(entries: readonly LiveEntry<T>[]): void {
    for (const { item, link } of entries) {
      if (link === undefined) continue; // stored before it was published: the replay reads it
      const { partition, offset } = item.position;
      this.partitions.of(partition).owe(offset);
    }
    if (this.partitions.owes()) this.ctx.subscriptions.waitsForStore(this, true);
  }

  private letGoWaiting(): void {
    this.letGo(this.takeWaiting());
    void this.replay.run();
  }

  takeWaiting(): LiveEntry<T>[] {
    const entries = [...this.partitions.entries()].flatMap(([, state]) => state.stopWaiting());
    this.waitingCount = 0;
    return entries;
  }

  /** A partition's watermark moved: a progress notice, heard since listening. */
  onProgress(progress: StreamProgress): void {
    if (this.outbox.done) return;
    const { partition, watermark, last } = progress;
    const state = this.partitions.of(partition);
    state.hear(progress);
    if (!state.joined && this.outbox.cursor) {
      // Was anything published before this listened that it has not had?
      const target = (state.target ??= last);
      if (state.has(target)) {
        this.join(partition);
        state.advanceThrough(watermark);
      } else if (watermark >= target && !this.replay.running) return void this.replay.run();
      // Otherwise the store has not reached it yet: a later notice will say so.
    }
    if (this.replay.holding) {
      // Holding for what was let go: replay once the store has it.
      if (!this.replay.running && (state.owed ?? Infinity) <= watermark) void this.replay.run();
      return;
    }
    if (!state.waiting) return;
    if (state.need !== undefined) {
      if (state.need <= watermark) void this.replay.run();
      return;
    }
    // Some sensors, not joined: a replay of what the store has beyond the last one (it joins once
    // the store has everything published before this listened). Joined since: admit them again.
    if (!state.joined) {
      if (watermark > state.through) void this.replay.run();
    } else void this.replay.run(false);
  }

  settle(): void {
    this.ctx.subscriptions.waitsForStore(this, this.partitions.waitsForStore());
    this.recheck();
  }

  private unjoin(): void {
    for (const [, state] of this.partitions.entries()) state.unjoin();
    this.ctx.subscriptions.unjoinAll(this);
  }

  join(partition: number): void {
    this.partitions.of(partition).joined = true;
    this.ctx.subscriptions.joined(this, partition);
  }

  /** Progress heard while busy: act on it now, for partitions not joined and for what still waits. */
  private recheck(): void {
    if (this.replay.holding) return;
    const pending = new Set<number>();
    for (const [partition, state] of this.partitions.entries()) if (state.waiting) pending.add(partition);
    for (const [partition, state] of this.partitions.entries())
      if (state.noticed && !state.joined) pending.add(partition);
    for (const partition of pending) {
      const state = this.partitions.of(partition);
      if (state.covered !== undefined && state.noticed)
        this.onProgress({ partition, watermark: state.covered, last: state.heardLast });
    }
  }

  /** The subscription ended: it stops listening, and nothing waits any more. */
  private ended(): void {
    this.ctx.subscriptions.remove(this);
    for (const [, state] of this.partitions.entries()) state.waiting = undefined;
    this.unlisten?.();
    this.stopResync();
  }
}
