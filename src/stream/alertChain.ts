/**
 * What lets the alert path publish an overheat alert the moment it is detected, before it is stored,
 * for one partition this replica consumes (made afresh whenever partitions may have moved).
 *
 * Which alerts may go before storing: the store keeps one alert per reading (sensor and timestamp).
 * A reading sent again (same sensor, same timestamp, a later position) is not an alert of its own;
 * only the store can say so, so such an alert must wait for it. An alert is surely new when its
 * timestamp is above every alert timestamp stored on the partition when this replica took it
 * (`floorTs`, kept beside the watermark) and above every alert of its sensor seen since. Those go at
 * once; from the first that is not, the rest of the batch goes after storing, in offset order.
 * So does an alert whose reading is old enough (`oldestTs`) that a replica replaying the batch a
 * little later could refuse it as too old: what goes out early must be what the store will keep.
 *
 * The chains: every alert is published with `prev`, the offset of the alert published before it on
 * the partition, and `sensorPrev`, that of its sensor's alert published before it on the partition
 * (for the first of each, an offset at or past it: everything before the first batch is stored, so
 * a subscriber whose store replay reached it misses nothing). Subscriptions to all sensors follow
 * the partition's chain, subscriptions to some sensors their sensors' chains, to see what they
 * missed (fanout/alertFeed.ts). A sensor's link is kept for every sensor alerting on the partition
 * since it was taken: one number per sensor, as `lastTs` already is.
 *
 * Alerts at or before the watermark the partition was taken at (`storedUpTo`) are stored already:
 * fetched again after a rebalance or a restart, since committed offsets trail the store. They are
 * dropped (`unstored`), not held for after storing: held, they would hold every batch after them,
 * and while the new owner catches up, that is every batch until its store does. The chains start at
 * that watermark, so a subscriber that missed one of them reads it from the store.
 *
 * Batches are judged (and their early alerts published) while earlier ones are still being stored.
 * The chain must stay in offset order, so once a batch has alerts held for after storing, every
 * alert of the batches after it is held too, until those are published (`linkLate`).
 */
import type { ChainLink, OverheatAlert } from '../domain/alert.js';

/**
 * A progress notice of the chain: the watermark, the chain's head (`last`), and where the chain
 * begins (`takenAt`, the bound before its first alert). Every alert after `takenAt` up to the
 * watermark is this chain's, and was published before the notice is sent: a subscription to some
 * sensors that has everything up to `takenAt` has everything up to the watermark once it heard it.
 */
export interface ChainNotice {
  readonly watermark: number;
  readonly last: number;
  readonly takenAt: number;
}

export class AlertChain {
  /** Offset of the last alert published on the partition (or the bound before the first). */
  private head: number;
  /** The bound before the first alert: everything at or before it was stored when the partition was taken. */
  private readonly before: number;
  /** Per sensor, the offset of its last alert published since the partition was taken. */
  private readonly sensorHeads = new Map<string, number>();
  /** Per sensor, the highest alert timestamp judged since the partition was taken. */
  private readonly lastTs = new Map<string, number>();
  /** The watermark of the last progress notice sent. */
  private noticed: number | undefined;
  /** Batches judged whose held alerts are not published yet: until then nothing goes early. */
  private heldBatches = 0;

  /**
   * @param floorTs highest alert timestamp stored on the partition up to its watermark (ms)
   * @param firstOffset offset of the first message this replica consumes on the partition
   * @param storedUpTo the partition's watermark when it was taken (-1: none)
   */
  constructor(
    private readonly floorTs: number,
    firstOffset: number,
    private readonly storedUpTo = -1,
  ) {
    this.before = Math.max(firstOffset - 1, storedUpTo);
    this.head = this.before;
  }

  /** The alerts not stored already (beyond the watermark the partition was taken at), in order. */
  unstored(alerts: readonly OverheatAlert[]): readonly OverheatAlert[] {
    return alerts.length > 0 && alerts[0]!.position.offset <= this.storedUpTo
      ? alerts.filter((a) => a.position.offset > this.storedUpTo)
      : alerts;
  }

  /**
   * Splits a batch's alerts (in offset order): those surely new, to publish now, and the rest.
   * `oldestTs`: alerts of readings taken before it go after storing.
   */
  split(alerts: readonly OverheatAlert[], oldestTs = -Infinity): { early: OverheatAlert[]; late: OverheatAlert[] } {
    let cut = this.heldBatches > 0 ? 0 : alerts.length;
    alerts.forEach((a, i) => {
      const ts = a.ts.getTime();
      const sensorTs = this.lastTs.get(a.sensorId) ?? -Infinity;
      if (cut === alerts.length && !(ts > this.floorTs && ts > sensorTs && ts >= oldestTs)) cut = i;
      if (ts > sensorTs) this.lastTs.set(a.sensorId, ts);
    });
    if (cut < alerts.length) this.heldBatches++;
    return { early: alerts.slice(0, cut), late: alerts.slice(cut) };
  }

  /** The chain's head: the offset of the last alert published (or the bound before the first). */
  get last(): number {
    return this.head;
  }

  /** Each alert's place in the chains, for alerts about to be published in this order. */
  link(alerts: readonly OverheatAlert[]): ChainLink[] {
    return alerts.map((a) => {
      const { offset } = a.position;
      const link = { prev: this.head, sensorPrev: this.sensorHeads.get(a.sensorId) ?? this.before };
      this.head = Math.max(this.head, offset);
      if (offset > link.sensorPrev) this.sensorHeads.set(a.sensorId, offset);
      return link;
    });
  }

  /**
   * Links a batch's held alerts, once stored (those the store kept: a reading sent again is not an
   * alert of its own); the batches after it may publish early again. Once per batch that had any.
   */
  linkHeld(alerts: readonly OverheatAlert[]): ChainLink[] {
    this.heldBatches = Math.max(0, this.heldBatches - 1);
    return this.link(alerts);
  }

  /**
   * The progress notice for a watermark about to be sent, with the chain's head as `last`: every
   * alert published so far is at or before it (later batches' early alerts may be beyond the
   * watermark: a subscriber that joins then waits for the store to reach it).
   */
  notice(watermark: number): ChainNotice {
    this.noticed = Math.max(watermark, this.noticed ?? -1);
    return { watermark: this.noticed, last: this.head, takenAt: this.before };
  }

  /** The last notice again, if nothing was published beyond it since (see alertPath's PROGRESS_REPEAT_MS). */
  repeatable(): ChainNotice | undefined {
    return this.noticed !== undefined && this.head <= this.noticed
      ? { watermark: this.noticed, last: this.head, takenAt: this.before }
      : undefined;
  }
}
