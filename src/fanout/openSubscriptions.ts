/**
 * The open subscriptions of one feed on this replica, and who among them must hear a progress
 * notice: those with live items waiting for the store, and those that have not joined its partition
 * (fanout/feedSubscription.ts). A subscription that needs neither is not told, so a notice costs
 * nothing per subscriber at the live edge.
 */
import type { StreamProgress } from './alertFanout.js';

export interface ProgressListener {
  /** A partition's watermark moved: a progress notice, heard since listening. */
  onProgress(progress: StreamProgress): void;
}

/** The last notice heard from one chain of a partition (stream/alertChain.ts): where it began, and how far it is stored. */
export interface ChainProgress {
  readonly takenAt: number;
  readonly watermark: number;
}

/** Chains remembered per partition: the current one and those before it, enough to cover a hand-over or two. */
const CHAINS_KEPT = 4;

export class OpenSubscriptions<S extends ProgressListener> {
  readonly open = new Set<S>();
  /** Subscriptions with live items waiting for the store: they are told of progress. */
  private readonly waitingForStore = new Set<S>();
  /** Per partition notices were heard for, the subscriptions that have not joined it yet. */
  private readonly unjoined = new Map<number, Set<S>>();
  /** Per partition, the highest watermark any notice told this replica. */
  private readonly noticedWatermarks: number[] = [];
  /** Per partition, the latest chains notices came from, in the order of their `takenAt`. */
  private readonly chains: ChainProgress[][] = [];

  /** Tells a notice to the subscriptions that wait on it; the first for a partition goes to all. */
  heard(progress: StreamProgress): void {
    const { partition } = progress;
    this.noticedWatermarks[partition] = Math.max(progress.watermark, this.noticedWatermarks[partition] ?? -1);
    if (progress.takenAt !== undefined) this.heardChain(partition, progress.takenAt, progress.watermark);
    let joining = this.unjoined.get(partition);
    if (!joining) this.unjoined.set(partition, (joining = new Set(this.open)));
    for (const s of new Set([...joining, ...this.waitingForStore])) s.onProgress(progress);
  }

  /** The chains notices of the partition came from lately, each with the highest watermark heard from it. */
  chainsOf(partition: number): readonly ChainProgress[] {
    return this.chains[partition] ?? [];
  }

  private heardChain(partition: number, takenAt: number, watermark: number): void {
    const chains = (this.chains[partition] ??= []);
    const i = chains.findIndex((c) => c.takenAt >= takenAt);
    if (chains[i]?.takenAt === takenAt) {
      if (watermark > chains[i].watermark) chains[i] = { takenAt, watermark };
      return;
    }
    chains.splice(i < 0 ? chains.length : i, 0, { takenAt, watermark });
    if (chains.length > CHAINS_KEPT) chains.shift();
  }

  /** The highest watermark any notice told for the partition (-1: none). */
  noticedWatermark(partition: number): number {
    return this.noticedWatermarks[partition] ?? -1;
  }

  add(s: S): void {
    this.open.add(s);
    this.unjoinAll(s);
  }

  remove(s: S): void {
    this.waitingForStore.delete(s);
    for (const joining of this.unjoined.values()) joining.delete(s);
    this.open.delete(s);
  }

  waitsForStore(s: S, waits: boolean): void {
    if (waits) this.waitingForStore.add(s);
    else this.waitingForStore.delete(s);
  }

  joined(s: S, partition: number): void {
    this.unjoined.get(partition)?.delete(s);
  }

  /** The subscription joins every partition again at its next notice. */
  unjoinAll(s: S): void {
    for (const joining of this.unjoined.values()) joining.add(s);
  }
}
