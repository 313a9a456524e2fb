/**
 * The alert path's batches once judged, and how consecutive ones of a partition are stored (the
 * store backlog, stream/storeBacklog.ts, calls storeJudged): every alert and, beside them, the
 * incident updates and the tracker's state; then the partition watermark; then the other alerts,
 * the updates and a progress notice are published on Redis. The alert path (stream/alertPath.ts)
 * keeps the offsets and the partitions; this file only stores and publishes.
 */
import type { ChainLink, OverheatAlert } from '../domain/alert.js';
import type { IncidentUpdate } from '../domain/incident.js';
import type { AlertFanout, Fanout } from '../fanout/alertFanout.js';
import type { Logger } from '../logger.js';
import type { PipelineObserver } from '../observability/metrics.js';
import { endSpan, traceOf, type Tracing } from '../observability/tracing.js';
import { allSettledOrThrow } from '../shared/retry.js';
import type { MongoStore } from '../store/mongoStore.js';
import type { AlertChain } from './alertChain.js';
import type { BatchOwner, GroupMember } from './groupMember.js';
import type { IncidentTracker, TrackedBatch } from './incidentTracker.js';

/** A batch judged, its surely new alerts published, waiting for storage (storeJudged). */
export interface JudgedBatch {
  readonly lastOffset: number;
  readonly alerts: readonly OverheatAlert[];
  /** Published before storing. */
  readonly early: readonly OverheatAlert[];
  /** Some alerts wait for storing (AlertChain.split), and the batches after it with them. */
  readonly held: boolean;
  readonly chain: AlertChain | undefined;
  readonly tracked: TrackedBatch;
  readonly judgedAt: number;
  readonly generation: number;
}

/** What storing judged batches needs from the alert path. */
export interface JudgedStore {
  readonly topic: string;
  readonly store: MongoStore;
  readonly incidents: IncidentTracker;
  readonly fanout: AlertFanout;
  readonly incidentFanout: Fanout<IncidentUpdate>;
  readonly observer: PipelineObserver;
  readonly log: Logger;
  /** On: a store of traced alerts gets a span in the first one's trace, linked to the others'. */
  readonly tracing?: Tracing | undefined;
  readonly durably: GroupMember['durably'];
  /** The alert path's counters, counted here as alerts and incident changes are stored. */
  readonly counts: { alertsRaised: number; incidentChanges: number };
  /** The partition's chain as it is now (it is dropped when the partition is taken up again). */
  chainOf(partition: number): AlertChain | undefined;
}

/**
 * Stores consecutive judged batches of one partition (stream/storeBacklog.ts): alerts and
 * incidents side by side, then the watermark beside the tracker's state, then the alerts held for
 * after storing, the incident updates and the progress notice are published.
 */
export async function storeJudged(
  s: JudgedStore,
  partition: number,
  batches: readonly JudgedBatch[],
  owner: BatchOwner,
): Promise<void> {
  const { observer, topic } = s;
  const flushStartedAt = performance.now();
  const last = batches.at(-1)!;
  const alerts = batches.flatMap((b) => b.alerts);
  const fresh = batches.flatMap((b) => b.tracked.events);
  const replayed = batches.flatMap((b) => (b.tracked.replayed ? [b.tracked.replayed] : []));
  const incidents = s.incidents.combine(batches.map((b) => b.tracked));
  // Alerts, and incidents, are stored side by side; each before the watermark below, so readers
  // never see past what is stored.
  const storeAlerts = async (): Promise<OverheatAlert[]> =>
    alerts.length === 0
      ? []
      : s.durably('store alerts', owner, async () => {
          const t0 = performance.now();
          const span = s.tracing && storeSpan(s.tracing, partition, alerts);
          try {
            const stored = await s.store.alerts.insert(alerts);
            span?.end();
            observer.storeWrite('alerts', performance.now() - t0);
            return stored;
          } catch (err) {
            if (span) endSpan(span, err);
            throw err;
          }
        });
  // Incident updates beside the incidents; the tracker's state comes after, beside the watermark
  // (once it is stored, a replay does not make the updates again). A replayed stretch's updates
  // are stored, but were they published? Again.
  const storeIncidents = async (): Promise<IncidentUpdate[]> => {
    const again = Promise.all(
      replayed.map((r) =>
        s.durably('read replayed incident updates', owner, () =>
          s.store.incidents.updates.read(partition, r.from - 1, r.to, undefined, 100_000),
        ),
      ),
    );
    again.catch(() => undefined); // awaited below; a batch given up meanwhile is not unhandled
    const writeUpdates =
      fresh.length === 0
        ? undefined
        : async (): Promise<void> => {
            const t = performance.now();
            await s.store.incidents.updates.write(fresh);
            observer.storeWrite('incident updates', performance.now() - t);
          };
    const t0 = performance.now();
    await s.durably('store incidents', owner, () => incidents.store(writeUpdates));
    observer.storeWrite('incidents', performance.now() - t0);
    return [...(await again).flat(), ...fresh];
  };
  // Ahead of reading history at the store: these are what a subscriber is waiting for.
  const [owned, updates] = await s.store.urgent(() => Promise.all([storeAlerts(), storeIncidents()]));
  const storedAt = performance.now();
  s.counts.incidentChanges += fresh.length;
  // The watermark, beside the tracker's state (see TrackedBatch.commit for why that is safe).
  const advance = alerts.length > 0 || updates.length > 0;
  const alertTs = alerts.length > 0 ? new Date(Math.max(...alerts.map((a) => a.ts.getTime()))) : undefined;
  await s.durably('advance watermark', owner, () =>
    s.store.urgent(() =>
      allSettledOrThrow([
        advance ? s.store.progress.advance(topic, { partition, offset: last.lastOffset }, alertTs) : Promise.resolve(),
        incidents.commit(),
      ]),
    ),
  );
  if (!advance) return;
  const watermarkedAt = performance.now();
  s.counts.alertsRaised += owned.length;
  const kept = new Set(owned.map((a) => a.position.offset));
  // The held alerts the store kept, batch by batch (a reading sent again is not an alert of its own).
  const rest: OverheatAlert[] = [];
  const links: ChainLink[] = [];
  for (const b of batches) {
    const early = new Set(b.early.map((a) => a.position.offset));
    const wrong = b.early.filter((a) => !kept.has(a.position.offset));
    if (wrong.length > 0)
      s.log.error(
        { partition, early: b.early.length, wrong: wrong.length },
        'an alert published before it was stored turned out to be a reading sent again',
      );
    if (b.held && b.chain) {
      const held = b.alerts.filter((a) => !early.has(a.position.offset) && kept.has(a.position.offset));
      rest.push(...held);
      links.push(...b.chain.linkHeld(held));
    }
  }
  // Published after the watermark moved, then the notice: see alertFeed for why this order makes
  // resumption gap-free. The chain learns of the notice only once they are published, so that the
  // notice repeated meanwhile (alertPath's PROGRESS_REPEAT_MS) is the one before it.
  await Promise.all([s.fanout.publish(rest, links), s.incidentFanout.publish(updates)]);
  const chain = last.chain ?? s.chainOf(partition);
  const notice = chain
    ? chain.notice(last.lastOffset)
    : // No chain: nothing published early here; `last` at the watermark is a bound all the same.
      { watermark: last.lastOffset, last: last.lastOffset };
  await s.fanout.publishProgress({ partition, ...notice });
  const publishedAt = Date.now();
  for (const a of rest) observer.alertPublished(publishedAt - a.ts.getTime());
  if (alerts.length > 0) {
    observer.alertStage('backlog', flushStartedAt - batches[0]!.judgedAt);
    observer.alertStage('store', storedAt - flushStartedAt);
    observer.alertStage('watermark', watermarkedAt - storedAt);
    observer.alertStage('publish', performance.now() - watermarkedAt);
  }
}

/** The span of one store write of alerts, when some are traced: in the first one's trace, linked to the rest. */
function storeSpan(tracing: Tracing, partition: number, alerts: readonly OverheatAlert[]) {
  const traces = alerts.flatMap((a) => traceOf(a) ?? []);
  if (traces.length === 0) return undefined;
  return tracing.start('store alerts', traces[0], {
    links: traces.slice(1),
    attributes: { 'db.operation.name': 'insert', 'alerts.count': alerts.length, partition: partition },
  });
}
