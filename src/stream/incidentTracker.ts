/**
 * The incident tracker of the alert path: per partition it holds each sensor's running incident and
 * threshold versions, judges every reading by the limits in force at its offset, and moves incidents
 * through their lifecycle (domain/incident.ts).
 *
 * Exact under crashes and rebalances:
 * - the state of a partition is stored with the last offset applied (`appliedOffset`). A replica that
 *   takes the partition over loads it, and does not apply again what is at or before that offset;
 * - a threshold is a version that starts after its command's offset, and a few versions are kept,
 *   so a replayed reading is judged by the same threshold as the first time;
 * - a batch is applied to a copy, which becomes the state the next batch is judged by at once: the
 *   alert path judges a batch while the ones before it are still being stored. A batch given up
 *   (partition moved, consumer stopping, a store step failed) is followed by forget(), and the
 *   partition's state is loaded again from what the store has.
 */
import type { StreamPosition } from '../domain/alert.js';
import {
  IncidentChange,
  applyAcknowledgement,
  applyReading,
  type ClearingRule,
  type Incident,
  type IncidentUpdate,
  type SensorLimits,
} from '../domain/incident.js';
import type { Reading } from '../domain/reading.js';
import type { SensorCommand } from '../domain/sensorCommand.js';
import { allSettledOrThrow } from '../shared/retry.js';
import type { IncidentStore, PartitionIncidentState, SensorLimitsRecord } from '../store/incidentStore.js';

/** Threshold versions kept per sensor: enough for any replay (a replay goes back one commit interval). */
const LIMIT_VERSIONS_KEPT = 4;

export type BatchItem =
  { readonly offset: number; readonly reading: Reading } | { readonly offset: number; readonly command: SensorCommand };

export interface TrackedBatch {
  /** Each reading of the batch with the limits it is judged by, in offset order. */
  readonly judged: readonly { readonly offset: number; readonly reading: Reading; readonly limits: SensorLimits }[];
  /**
   * Lifecycle changes this batch made (not the replayed part of it). Store them with store(), before
   * commit(): once committed, a replay of the batch does not make them again.
   */
  readonly events: readonly IncidentUpdate[];
  /**
   * The offsets of this batch applied before (a replay after a crash or a rebalance), if any: the
   * updates they made are stored already, and must be published again (they may never have been).
   */
  readonly replayed: { readonly from: number; readonly to: number } | undefined;
  /** Stores what changed, with `alongside` (the batch's incident updates) at the same time. Idempotent. */
  store(alongside?: () => Promise<void>): Promise<void>;
  /**
   * Then stores the tracker's state with this batch applied: once stored, a replay does not make the
   * batch's changes again. Idempotent. It may run beside the watermark: a batch whose state did not
   * get stored is applied again by whoever replays it, to the same result (its updates and incidents
   * are rewritten as they are, and published again).
   */
  commit(): Promise<void>;
}

/** Consecutive batches of one partition stored as one: store() and commit() as for the last of them. */
export type StoredBatches = Pick<TrackedBatch, 'store' | 'commit'>;

export interface IncidentTracker {
  process(partition: number, items: readonly BatchItem[], lastOffset: number): Promise<TrackedBatch>;
  /** Consecutive processed batches of one partition, in order, to store with one write each. */
  combine(batches: readonly TrackedBatch[]): StoredBatches;
  /** Drops what is held for these partitions (or all): reloaded from the store at the next batch. */
  forget(partitions?: readonly number[]): void;
  /** Running incidents held by this replica. */
  running(): number;
}

const updateOf = (change: IncidentChange, incident: Incident): IncidentUpdate => ({
  sensorId: incident.sensorId,
  position: incident.position,
  change,
  incident,
});

export function createIncidentTracker(o: {
  store: IncidentStore;
  topic: string;
  defaults: SensorLimits;
  rule: ClearingRule;
  /** An incident's document is rewritten for an update at most this often (lifecycle changes at once). */
  refreshMs: number;
}): IncidentTracker {
  const states = new Map<number, PartitionIncidentState>();
  /** Reading time of each running incident's last version written (or on its way). */
  const writtenAt = new Map<string, number>();
  /** Incidents changed by batches not stored yet, by id: what an acknowledgement finds first. */
  const unstored = new Map<string, Incident>();
  /** What a processed batch leaves to write, for combine(). */
  interface Pending {
    partition: number;
    changed: boolean;
    after: PartitionIncidentState;
    toWrite: readonly Incident[];
    /** Every incident version the batch made (some not written: refreshMs). */
    touched: readonly Incident[];
    limitRecords: readonly SensorLimitsRecord[];
  }
  const pending = new WeakMap<TrackedBatch, Pending>();

  const writeAll = async (
    toWrite: readonly Incident[],
    limitRecords: readonly SensorLimitsRecord[],
    alongside?: () => Promise<void>,
  ): Promise<void> => {
    // Only what there is to write: a call with nothing to write succeeds without the server, and
    // would tell the store's watchdog it was reached while the store is down (clientWatchdog.ts).
    const incidents = async (): Promise<void> => {
      if (toWrite.length > 0) await o.store.write(toWrite);
      if (limitRecords.length > 0) await o.store.writeLimits(limitRecords);
    };
    await allSettledOrThrow([incidents(), alongside?.() ?? Promise.resolve()]);
  };
  const saveState = async (batches: readonly Pending[]): Promise<void> => {
    const last = batches.findLast((b) => b.changed);
    if (last) await o.store.savePartition(o.topic, last.partition, last.after);
    for (const b of batches) for (const i of b.touched) if (unstored.get(i.id) === i) unstored.delete(i.id);
  };

  const limitsAt = (state: PartitionIncidentState, sensorId: string, offset: number): SensorLimits => {
    const versions = state.limits.get(sensorId);
    if (versions) for (let i = versions.length - 1; i >= 0; i--) if (versions[i]!.from < offset) return versions[i]!;
    return o.defaults;
  };

  const load = async (partition: number): Promise<PartitionIncidentState> => {
    let state = states.get(partition);
    if (!state) {
      state = (await o.store.loadPartition(o.topic, partition)) ?? {
        appliedOffset: -1,
        running: [],
        limits: new Map(),
      };
      states.set(partition, state);
    }
    return state;
  };

  return {
    async process(partition, items, lastOffset) {
      const before = await load(partition);
      const running = new Map(before.running.map((i) => [i.sensorId, i]));
      const limits = new Map(before.limits);
      const judged: { offset: number; reading: Reading; limits: SensorLimits }[] = [];
      const events: IncidentUpdate[] = [];
      /** Latest version of each incident this batch touched, and whether a lifecycle change forces its write. */
      const touched = new Map<string, { incident: Incident; force: boolean }>();
      const limitRecords: SensorLimitsRecord[] = [];
      const state = (): PartitionIncidentState => ({ appliedOffset: before.appliedOffset, running: [], limits });

      for (const item of items) {
        const fresh = item.offset > before.appliedOffset;
        const position: StreamPosition = { partition, offset: item.offset };
        if ('reading' in item) {
          const judgedBy = limitsAt(state(), item.reading.sensorId, item.offset);
          judged.push({ offset: item.offset, reading: item.reading, limits: judgedBy });
          if (!fresh) continue;
          const t = applyReading(running.get(item.reading.sensorId), item.reading, judgedBy, o.rule, position);
          if (!t) continue;
          const cleared = t.change === IncidentChange.CLEARED;
          if (cleared) running.delete(item.reading.sensorId);
          else running.set(item.reading.sensorId, t.incident);
          const forced = t.change !== undefined && t.change !== IncidentChange.UPDATED;
          touched.set(t.incident.id, {
            incident: t.incident,
            force: forced || touched.get(t.incident.id)?.force === true,
          });
          if (t.change) events.push(updateOf(t.change, t.incident));
          continue;
        }
        if (!fresh) continue;
        const c = item.command;
        if (c.kind === 'threshold') {
          const versions = [...(limits.get(c.sensorId) ?? [])].filter((v) => v.from !== item.offset);
          versions.push({ from: item.offset, thresholdC: c.thresholdC, hysteresisC: c.hysteresisC });
          limits.set(c.sensorId, versions.slice(-LIMIT_VERSIONS_KEPT));
          limitRecords.push({
            sensorId: c.sensorId,
            thresholdC: c.thresholdC,
            hysteresisC: c.hysteresisC,
            setBy: c.issuedBy,
            setAt: c.issuedAt,
          });
          continue;
        }
        // An acknowledgement: of the running incident, or of one already cleared.
        const ack = { incidentId: c.incidentId, by: c.issuedBy, at: c.issuedAt, note: c.note };
        const target =
          running.get(c.sensorId)?.id === c.incidentId
            ? running.get(c.sensorId)
            : (touched.get(c.incidentId)?.incident ?? unstored.get(c.incidentId) ?? (await o.store.get(c.incidentId)));
        if (!target || target.sensorId !== c.sensorId) continue;
        const t = applyAcknowledgement(target, ack, position);
        if (!t) continue;
        if (running.get(c.sensorId)?.id === c.incidentId) running.set(c.sensorId, t.incident);
        touched.set(t.incident.id, { incident: t.incident, force: true });
        events.push(updateOf(IncidentChange.ACKNOWLEDGED, t.incident));
      }

      const changed = touched.size > 0 || limitRecords.length > 0;
      const after: PartitionIncidentState = {
        appliedOffset: changed ? lastOffset : before.appliedOffset,
        running: [...running.values()],
        limits,
      };
      const toWrite = [...touched.values()]
        .filter(({ incident, force }) => {
          const last = writtenAt.get(incident.id);
          return force || last === undefined || incident.updatedAt.getTime() - last >= o.refreshMs;
        })
        .map((t) => t.incident);

      const stale = items.filter((i) => i.offset <= before.appliedOffset);
      const replayed = stale.length > 0 ? { from: stale[0]!.offset, to: stale.at(-1)!.offset } : undefined;

      for (const i of toWrite) {
        if (i.status === 'CLEARED') writtenAt.delete(i.id);
        else writtenAt.set(i.id, i.updatedAt.getTime());
      }
      const versions = [...touched.values()].map((t) => t.incident);
      for (const i of versions) unstored.set(i.id, i);
      // The next batch is judged by this one's result (unless the partition was forgotten meanwhile).
      if (states.get(partition) === before) states.set(partition, after);
      const own: Pending = { partition, changed, after, toWrite, touched: versions, limitRecords };
      const batch: TrackedBatch = {
        judged,
        events,
        replayed,
        store: (alongside) => writeAll(toWrite, limitRecords, alongside),
        commit: () => saveState([own]),
      };
      pending.set(batch, own);
      return batch;
    },
    combine(batches) {
      const all = batches.map((b) => pending.get(b)!);
      if (all.length === 1) return batches[0]!;
      // Each incident as the last batch left it.
      const toWrite = new Map<string, Incident>();
      for (const b of all) for (const i of b.toWrite) toWrite.set(i.id, i);
      const limitRecords = all.flatMap((b) => b.limitRecords);
      return {
        store: (alongside) => writeAll([...toWrite.values()], limitRecords, alongside),
        commit: () => saveState(all),
      };
    },
    forget(partitions) {
      if (!partitions) states.clear();
      else for (const p of partitions) states.delete(p);
      // Batches given up may not have written what these say was written.
      writtenAt.clear();
      unstored.clear();
    },
    running() {
      let n = 0;
      for (const s of states.values()) n += s.running.length;
      return n;
    },
  };
}
