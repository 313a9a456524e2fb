/**
 * What one feed subscription knows of one partition of its stream: how far it has every item, the
 * live items that wait for the store, what it let go, and where it stands in joining the partition
 * (fanout/feedSubscription.ts says what each of these is for).
 */
import type { ChainLink } from '../domain/alert.js';
import type { StreamProgress } from './alertFanout.js';

/** A live item as heard: `link` is its place in its partition's chains (undefined: stored before it was published). */
export interface LiveEntry<T> {
  readonly item: T;
  readonly link: ChainLink | undefined;
}

export class PartitionState<T> {
  /** All sensors: the offset up to which every item was delivered or is known absent (some sensors: what a replay read). */
  through = -1;
  /** Live items waiting for the store, in arrival order (undefined: none wait). */
  waiting: LiveEntry<T>[] | undefined;
  /** While items wait: the offset the store must reach (unset: some sensors, waiting for the join). */
  need: number | undefined;
  /** The offset of the last live item let go (too many waiting): the store must reach it before any other. */
  owed: number | undefined;
  /** The highest watermark known (unset: none above -1 yet). */
  covered: number | undefined;
  /** Whether a progress notice was heard since listening (or since the last loss). */
  noticed = false;
  /**
   * Live items arrive whole: a notice heard since listening showed nothing was missed before it,
   * or a replay followed it.
   */
  joined = false;
  /** The highest `last` heard. */
  heardLast = -1;
  /**
   * `last` of the first notice heard since listening: every item published before this listened is
   * at or before it. Joined once everything up to it was delivered (the store may reach it after
   * that notice: items of later batches go out before earlier ones are stored).
   */
  target: number | undefined;

  /** Whether every item up to `offset` was delivered or is known absent. */
  has(offset: number): boolean {
    return offset <= this.through;
  }

  /** Every item up to `offset` was delivered or is known absent. */
  advanceThrough(offset: number): void {
    if (offset > this.through) this.through = offset;
  }

  /** The store is known to hold every item up to `watermark`. */
  cover(watermark: number): void {
    if (watermark > (this.covered ?? -1)) this.covered = watermark;
  }

  /** A progress notice was heard. */
  hear(progress: StreamProgress): void {
    this.noticed = true;
    this.heardLast = Math.max(progress.last, this.heardLast);
    this.cover(progress.watermark);
  }

  /** Live delivery may have lost items: the partition is joined again at its next notice. */
  unjoin(): void {
    this.joined = false;
    this.noticed = false; // a notice heard before the loss does not join
    this.target = undefined;
  }

  /** Starts the queue of live items waiting for the store to reach `need` (or for the join). */
  startWaiting(entry: LiveEntry<T>, need: number | undefined): void {
    this.waiting = [entry];
    if (need !== undefined) this.need = need;
  }

  /** Ends the wait: the items that waited, in arrival order. */
  stopWaiting(): LiveEntry<T>[] {
    const entries = this.waiting ?? [];
    this.waiting = undefined;
    this.need = undefined;
    return entries;
  }

  /** A live item at `offset` was let go: the store must reach it before anything after it goes out. */
  owe(offset: number): void {
    this.owed = Math.max(offset, this.owed ?? -1);
  }

  /** The store reached `watermark`: what was let go up to there is read from it. */
  settleOwed(watermark: number): void {
    if (this.owed !== undefined && this.owed <= watermark) this.owed = undefined;
  }
}

/** A subscription's partitions, created as they are first met, visited in partition order. */
export class Partitions<T> {
  private readonly states: PartitionState<T>[] = [];

  of(partition: number): PartitionState<T> {
    return (this.states[partition] ??= new PartitionState<T>());
  }

  /** The partitions met so far, in partition order, with their numbers. */
  *entries(): IterableIterator<[number, PartitionState<T>]> {
    for (const [partition, state] of this.states.entries()) if (state) yield [partition, state];
  }

  private some(test: (state: PartitionState<T>) => boolean): boolean {
    return this.states.some((state) => state !== undefined && test(state));
  }

  /** Whether the store owes live items that were let go (on any partition). */
  owes(): boolean {
    return this.some((s) => s.owed !== undefined);
  }

  /** Whether live items wait for the store, or some let go are owed by it. */
  waitsForStore(): boolean {
    return this.some((s) => s.waiting !== undefined || s.owed !== undefined);
  }
}
