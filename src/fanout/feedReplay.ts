/**
 * The replay of one feed subscription: stored items after its cursor up to the watermarks, then
 * what waited for the store and what arrived live meanwhile, in order, at the subscriber's pace.
 * Why this makes the feed gap-free: fanout/feedSubscription.ts.
 *
 * Resuming from an old cursor: the replay reads REPLAY_PAGE alerts at a time and reads the next page
 * only once the subscriber has taken most of the previous one, so a subscriber 100k alerts behind
 * holds one page in memory, not its whole backlog. Live alerts that arrive meanwhile are held (up to
 * `maxPending`); past that they are let go and the replay goes round once more, once the store has
 * them (their partition's watermark has passed them).
 */
import type { ChainLink } from '../domain/alert.js';
import type { Logger } from '../logger.js';
import { Backoff, retryUntilDone } from '../shared/retry.js';
import type { MongoStore } from '../store/mongoStore.js';
import type { StreamHistory } from '../store/streamHistory.js';
import type { Fanout } from './alertFanout.js';
import type { Positioned } from './feed.js';
import type { LiveEntry, Partitions } from './partitionState.js';
import type { SubscriberOutbox } from './subscriberOutbox.js';

/** Where a replay reads from, shared by every subscription of a feed. */
export interface ReplaySource<T> {
  readonly fanout: Pick<Fanout<T>, 'isHolding'>;
  readonly history: Pick<StreamHistory<T>, 'between'>;
  readonly progress: Pick<MongoStore['progress'], 'watermarks'>;
  readonly topic: string;
  readonly maxPending: number;
  /** Stored items read per replay query. */
  readonly pageSize: number;
  readonly log: Logger;
}

/** The subscription a replay works for. */
export interface ReplayTarget<T extends Positioned> {
  readonly outbox: SubscriberOutbox<T>;
  readonly partitions: Partitions<T>;
  readonly filter: ReadonlySet<string> | undefined;
  /** Delivers a live item now, or has it wait for the store. */
  admit(item: T, link: ChainLink | undefined): void;
  /** Live items dropped: each is owed from the store, before anything after it. */
  letGo(entries: readonly LiveEntry<T>[]): void;
  /** Every live item of the partition arrives whole from now on. */
  join(partition: number): void;
  /** The live items that waited for the store, in partition order, each partition's in arrival order. */
  takeWaiting(): LiveEntry<T>[];
  /** The replay stopped: act on what it may have left waiting, and on progress heard meanwhile. */
  settle(): void;
}

/** Thrown to stop retrying a store read once the subscription ended. */
class FeedEnded extends Error {}

export class FeedReplay<T extends Positioned> {
  /** While replaying from the store (or holding, see AlertFanout), live items wait here (in arrival order). */
  private held: LiveEntry<T>[] | undefined = [];
  private replaying = false;
  private replayAgain = false;
  /** The next replay round reads the store (otherwise it only releases what waits). */
  private storeWanted = false;
  /** Live items being handed over at the subscriber's pace (admitPaced), and whether it waits for room. */
  private pacing = 0;
  private blocked = false;

  constructor(
    private readonly source: ReplaySource<T>,
    private readonly target: ReplayTarget<T>,
  ) {}

  /** Whether a replay runs. */
  get running(): boolean {
    return this.replaying;
  }

  /** Whether live items are held rather than admitted (a replay runs or is due). */
  get holding(): boolean {
    return this.held !== undefined;
  }

  /** Live delivery may have lost items: keep live ones aside until the replay that follows. */
  hold(): void {
    this.held ??= [];
  }

  /** The subscription failed: nothing held is handed over any more. */
  drop(): void {
    this.held = undefined;
  }

  /** A live item the subscriber has no room for: it and what follows go at the subscriber's pace. */
  pace(entry: LiveEntry<T>): void {
    this.held = [entry];
    void this.run(false);
  }

  /** A live item heard while holding: kept, or, past `maxPending`, let go with all held, to be read from the store. */
  keep(entry: LiveEntry<T>): void {
    this.held ??= [];
    if (this.held.length >= this.source.maxPending) {
      // Let go, and read them from the store instead (once it has them): a subscriber behind
      // holds at most maxPending live items, and catches up from the store at its own pace.
      this.target.letGo(this.held);
      this.held = [];
      this.storeWanted = true;
      this.replayAgain = true;
      return;
    }
    this.held.push(entry);
  }

  /**
   * Replays stored items after the cursor, then releases what arrived live meanwhile (`fromStore`
   * false: only releases what waits). Replays never overlap (a second request makes the running one
   * loop once more), and a failed store read is retried: releasing live items past a gap would move
   * the cursor over it.
   */
  async run(fromStore = true): Promise<void> {
    const { outbox } = this.target;
    if (outbox.done || !outbox.cursor) return;
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
        // Items let go that the store does not have yet: keep holding until it does.
        if (this.target.partitions.owes()) return;
        // Still holding: the replay that closes the hold releases them.
        if (this.source.fanout.isHolding()) return;
        // What waited for the store, then what arrived meanwhile, in order, at the subscriber's pace.
        await this.admitPaced(this.target.takeWaiting());
        while (!outbox.done && !this.replayAgain && this.held.length > 0) {
          const arrived = this.held;
          this.held = [];
          await this.admitPaced(arrived);
        }
      } while (this.replayAgain && !outbox.done);
      this.held = undefined;
    } finally {
      this.replaying = false;
      if (!outbox.done) this.target.settle();
    }
  }

  /**
   * Replays stored items after the cursor up to the watermarks (retrying a failed read: releasing
   * live items past a gap would move the cursor over it), then records what that made whole.
   * False when the feed ended meanwhile.
   */
  private async replayStored(): Promise<boolean> {
    const { outbox, partitions, filter } = this.target;
    const { history, progress, topic, pageSize, log } = this.source;
    // A notice heard before the watermarks are read makes its partition whole (feedSubscription.ts),
    // once the store has everything published before this listened.
    const joinAt = new Map<number, number>();
    for (const [partition, state] of partitions.entries())
      if (state.noticed && state.target !== undefined) joinAt.set(partition, state.target);
    let watermarks: Map<number, number>;
    try {
      watermarks = await retryUntilDone(
        async () => {
          const upTo = await progress.watermarks(topic);
          for (;;) {
            const page = await history.between(outbox.cursor!, upTo, filter, pageSize);
            for (const a of page) {
              if (!outbox.hasRoom()) await outbox.waitForRoom();
              outbox.deliver(a);
            }
            if (page.length < pageSize || outbox.done) break;
          }
          return upTo;
        },
        {
          backoff: new Backoff(100, 2000),
          onFailure: (err, retryInMs) =>
            log.warn({ err: err.message, retryInMs }, 'replay from store failed; retrying'),
          beforeRetry: () => {
            if (outbox.done) throw new FeedEnded();
          },
        },
      );
    } catch (err) {
      if (err instanceof FeedEnded) return false;
      throw err;
    }
    if (outbox.done) return false;
    // Every stored item up to the watermarks read has now been delivered (or was before the cursor).
    // The cursor moves there too: on a partition where a subscription to some sensors delivers
    // nothing it stayed where it began, and every replay (a resuming client too) read all since.
    for (const [partition, offset] of watermarks) outbox.cursor!.advance({ partition, offset });
    for (const [partition, watermark] of watermarks) {
      const state = partitions.of(partition);
      state.advanceThrough(watermark);
      state.cover(watermark);
      if (watermark >= (joinAt.get(partition) ?? Infinity)) this.target.join(partition);
    }
    for (const [partition, state] of partitions.entries()) state.settleOwed(watermarks.get(partition) ?? -1);
    return true;
  }

  /** Admits live items in order, waiting while the subscriber has no room; arrivals meanwhile queue in `held`. */
  private async admitPaced(entries: readonly LiveEntry<T>[]): Promise<void> {
    const { outbox } = this.target;
    this.pacing = entries.length;
    try {
      for (const entry of entries) {
        if (outbox.done) return;
        if (!outbox.hasRoom()) {
          this.blocked = true;
          this.chargeKeptAside();
          await outbox.waitForRoom();
          this.blocked = false;
          this.chargeKeptAside();
        }
        this.pacing--;
        this.target.admit(entry.item, entry.link);
      }
    } finally {
      this.pacing = 0;
      this.blocked = false;
      this.chargeKeptAside();
    }
  }

  /** While the subscriber has no room, the live items still to hand over are charged to its socket's budget. */
  private chargeKeptAside(): void {
    this.target.outbox.keepAside(this.blocked ? this.pacing : 0);
  }
}
