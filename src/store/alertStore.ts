/**
 * Overheat alerts as stored: the `alerts` collection (pages of newest first, counts, retention) and,
 * beside it, their replay pages by stream position (store/alertPages.ts), which feeds read.
 */
import { AlertCursor } from '../domain/alertCursor.js';
import type { Collection, Db, Filter } from 'mongodb';
import type { OverheatAlert } from '../domain/alert.js';
import type { IncidentUpdate } from '../domain/incident.js';
import type { Location } from '../domain/reading.js';
import { allSettledOrThrow } from '../shared/retry.js';
import { itemsBetween, type AlertPages, type PositionPages } from './alertPages.js';
import { withDeadline } from './commandDeadline.js';
import { duplicateIndexes, isOnlyDuplicates } from './mongoErrors.js';
import type { ProgressStore } from './progressStore.js';

export const ALERTS = 'alerts';

export interface AlertDoc {
  _id: string;
  sensorId: string;
  temperature: number;
  threshold: number;
  ts: Date;
  location: Location;
  detectedAt: Date;
  partition: number;
  offset: number;
}

export interface Page<T> {
  items: T[];
  hasNextPage: boolean;
}

export interface AlertQuery {
  sensorId?: string | undefined;
  first: number;
  before?: { ts: Date; id: string } | undefined;
}

export interface AlertStore {
  /**
   * Stores alerts. Returns those this call owns: newly stored, or stored earlier from the very same
   * stream position (a replay after a crash). Re-sent duplicates from other positions are not returned.
   */
  insert(alerts: readonly OverheatAlert[]): Promise<OverheatAlert[]>;
  /** Stored alerts, newest first (by timestamp, then id). */
  page(query: AlertQuery): Promise<Page<OverheatAlert>>;
  /** The first `limit` alerts after `cursor` and at or before `watermarks`, ordered by partition then offset. */
  between(
    cursor: AlertCursor,
    watermarks: ReadonlyMap<number, number>,
    sensorIds: ReadonlySet<string> | undefined,
    limit: number,
  ): Promise<OverheatAlert[]>;
  /** Stored alerts of these sensors (all when omitted). */
  count(sensorIds?: readonly string[]): Promise<number>;
  /**
   * Removes alerts detected before `cutoff`. Records first, per partition, the offset up to which
   * alerts are gone, so a cursor from before it is refused instead of replaying a partial history.
   */
  purgeBefore(topic: string, cutoff: Date): Promise<number>;
  /** partition -> highest offset whose alerts may have been removed by retention. */
  purgedUpTo(topic: string): Promise<Map<number, number>>;
}

/** The stored form of an alert (exported for the field test, test/unit/alertFields.test.ts). */
export function toAlertDoc(a: OverheatAlert): AlertDoc {
  return {
    _id: a.id,
    sensorId: a.sensorId,
    temperature: a.temperature,
    threshold: a.threshold,
    ts: a.ts,
    location: a.location,
    detectedAt: a.detectedAt,
    partition: a.position.partition,
    offset: a.position.offset,
  };
}

export function fromAlertDoc(d: AlertDoc): OverheatAlert {
  return {
    id: d._id,
    sensorId: d.sensorId,
    temperature: d.temperature,
    threshold: d.threshold,
    ts: d.ts,
    location: d.location,
    detectedAt: d.detectedAt,
    position: { partition: d.partition, offset: d.offset },
  };
}

export async function ensureAlertIndexes(alertsDb: Db): Promise<void> {
  const alerts: Collection<AlertDoc> = alertsDb.collection(ALERTS);
  await Promise.all([
    alerts.createIndex({ ts: -1, _id: -1 }, { name: 'ts_id' }),
    alerts.createIndex({ sensorId: 1, ts: -1 }, { name: 'sensor_ts' }),
    alerts.createIndex({ partition: 1, offset: 1 }, { name: 'position' }),
  ]);
}

/** Every stored alert in stream order (to build the replay pages of a store older than them). */
export async function* storedAlerts(alertsDb: Db): AsyncIterable<OverheatAlert> {
  const alerts: Collection<AlertDoc> = alertsDb.collection(ALERTS);
  for await (const d of alerts.find({}).sort({ partition: 1, offset: 1 })) yield fromAlertDoc(d);
}

export function createAlertStore(deps: {
  alertsDb: Db;
  /** The alerts' replay pages. */
  pages: AlertPages;
  /** Incident updates share the alerts' positions and retention: their pages are purged with the alerts'. */
  incidentUpdatePages: Pick<PositionPages<IncidentUpdate>, 'purge'>;
  /** The partitions retention walks are those with a watermark. */
  progress: Pick<ProgressStore, 'watermarks'>;
  deadlineMs: number;
}): AlertStore {
  const alerts: Collection<AlertDoc> = deps.alertsDb.collection(ALERTS);
  const purges: Collection<{ _id: string; topic: string; partition: number; offset: number }> =
    deps.alertsDb.collection('alert_purges');
  const purgedUpTo = async (topic: string): Promise<Map<number, number>> =>
    new Map((await purges.find({ topic }).toArray()).map((d) => [d.partition, d.offset]));

  /** Stores alerts; returns those newly stored, or stored earlier from the very same stream position. */
  async function insertOwned(batch: readonly OverheatAlert[]): Promise<OverheatAlert[]> {
    try {
      await withDeadline(
        alerts.insertMany(batch.map(toAlertDoc), { ordered: false }),
        deps.deadlineMs,
        'insert of alerts',
      );
      return [...batch];
    } catch (err) {
      if (!isOnlyDuplicates(err)) throw err;
      const dup = new Set(duplicateIndexes(err));
      const owned = batch.filter((_, i) => !dup.has(i));
      const dupAlerts = batch.filter((_, i) => dup.has(i));
      // One `{_id}` lookup each: FerretDB serves only that form from its index ($in scans every alert).
      const existing = await Promise.all(dupAlerts.map((a) => alerts.findOne({ _id: a.id })));
      const byId = new Map(existing.flatMap((d) => (d ? [[d._id, d] as const] : [])));
      for (const a of dupAlerts) {
        const d = byId.get(a.id);
        if (d && d.partition === a.position.partition && d.offset === a.position.offset) owned.push(fromAlertDoc(d));
      }
      return owned.sort((x, y) => x.position.offset - y.position.offset);
    }
  }

  return {
    async insert(batch) {
      if (batch.length === 0) return [];
      // The pages need not wait for the insert: readers never read past the watermark, and it
      // moves after both. A re-sent reading's alert (stored before, from another position) is
      // not an alert of its own: it comes off its page again, before the watermark moves.
      const [owned] = await allSettledOrThrow([insertOwned(batch), deps.pages.write(batch)]);
      if (owned.length < batch.length) {
        const kept = new Set(owned.map((a) => `${a.position.partition}:${a.position.offset}`));
        await deps.pages.remove(batch.filter((a) => !kept.has(`${a.position.partition}:${a.position.offset}`)));
      }
      return owned;
    },
    async page(q) {
      const filter: Filter<AlertDoc> = {};
      if (q.sensorId) filter.sensorId = q.sensorId;
      if (q.before) {
        filter.$or = [{ ts: { $lt: q.before.ts } }, { ts: q.before.ts, _id: { $lt: q.before.id } }];
      }
      const docs = await alerts
        .find(filter)
        .sort({ ts: -1, _id: -1 })
        .limit(q.first + 1)
        .toArray();
      return { items: docs.slice(0, q.first).map(fromAlertDoc), hasNextPage: docs.length > q.first };
    },
    between: (cursor, watermarks, sensorIds, limit) => itemsBetween(deps.pages, cursor, watermarks, sensorIds, limit),
    count: (sensorIds) => alerts.countDocuments(sensorIds ? { sensorId: { $in: [...sensorIds] } } : {}),
    async purgeBefore(topic, cutoff) {
      let removed = 0;
      const purged = await purgedUpTo(topic);
      for (const [partition, watermark] of await deps.progress.watermarks(topic)) {
        // The oldest alert kept, from its replay page (reads by `_id`): most runs find it newer than
        // the cutoff and stop here. The query below is a scan of every alert on FerretDB, and its
        // long read kept SQLite from truncating the WAL (185 MB in a storm over 1M stored alerts).
        const [oldest] = await itemsBetween(
          deps.pages,
          AlertCursor.fromWatermarks(new Map([[partition, purged.get(partition) ?? -1]])),
          new Map([[partition, watermark]]),
          undefined,
          1,
        );
        if (!oldest || oldest.detectedAt >= cutoff) continue;
        const newest = await alerts
          .find({ partition, detectedAt: { $lt: cutoff } }, { projection: { offset: 1 } })
          .sort({ offset: -1 })
          .limit(1)
          .next();
        if (!newest) continue;
        // A separate document from the watermark: FerretDB rewrites whole documents, and the
        // consumer advances the watermark concurrently.
        await purges.updateOne(
          { _id: `${topic}:${partition}` },
          { $max: { offset: newest.offset }, $setOnInsert: { topic, partition } },
          { upsert: true },
        );
        removed += (await alerts.deleteMany({ partition, offset: { $lte: newest.offset } })).deletedCount;
        await deps.pages.purge(partition, newest.offset);
        await deps.incidentUpdatePages.purge(partition, newest.offset);
      }
      return removed;
    },
    purgedUpTo: (topic) => purgedUpTo(topic),
  };
}
