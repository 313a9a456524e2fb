/**
 * Incidents and per-sensor limits, as the alert path leaves them.
 *
 * - `incidents`: one document per incident, what the `incidents` query pages through.
 * - `sensor_limits`: one per sensor with its own threshold (by `_id`: the `sensorThresholds` query).
 * - `incident_partitions`: one per Kafka partition, the tracker's whole state (running incidents,
 *   threshold versions) and the offset it has applied; reloaded by the replica that takes the
 *   partition over. Written last, so a batch replayed after a crash recomputes the same documents.
 *
 * All written by the one consumer that holds the partition (FerretDB 1.24 loses concurrent updates
 * of one document), whole documents by `_id`, through the process's write gate (store/writeGate.ts).
 */
import type { AnyBulkWriteOperation, Collection, Db, Filter } from 'mongodb';
import type { Incident, IncidentChange, IncidentStatus, IncidentUpdate, SensorLimits } from '../domain/incident.js';
import { createPositionPages, type PageCodec, type PageNames, type PositionPages } from './alertPages.js';
import type { Location } from '../domain/reading.js';
import { GATED_MAX_STATEMENTS, createWriteGate, type WriteGate } from './writeGate.js';

export const INCIDENTS = 'incidents';
export const SENSOR_LIMITS = 'sensor_limits';
export const INCIDENT_PARTITIONS = 'incident_partitions';
/** The incidentUpdates stream, paged by stream position like alerts (store/alertPages.ts). */
export const INCIDENT_UPDATE_PAGE_NAMES: PageNames = {
  pages: 'incident_update_pages',
  dirs: 'incident_update_page_dirs',
  layout: 'incident_update_pages_layout',
};

interface IncidentDoc {
  _id: string;
  sensorId: string;
  status: IncidentStatus;
  openedAt: Date;
  updatedAt: Date;
  clearedAt: Date | null;
  thresholdC: number;
  hysteresisC: number;
  peakC: number;
  lastC: number;
  criticalReadings: number;
  location: Location;
  acknowledgedBy: string | null;
  acknowledgedAt: Date | null;
  note: string | null;
  coolReadings: number;
  coolSince: Date | null;
  partition: number;
  offset: number;
}

export interface SensorLimitsRecord extends SensorLimits {
  readonly sensorId: string;
  readonly setBy: string;
  readonly setAt: Date;
}

interface LimitsDoc {
  _id: string;
  thresholdC: number;
  hysteresisC: number;
  setBy: string;
  setAt: Date;
}

/** A threshold in force from the message after `from` (an offset) on. */
export interface LimitsVersion extends SensorLimits {
  readonly from: number;
}

/** What the tracker keeps per partition. */
export interface PartitionIncidentState {
  /** Last offset whose readings and commands were applied; older ones are not applied again. */
  readonly appliedOffset: number;
  readonly running: readonly Incident[];
  readonly limits: ReadonlyMap<string, readonly LimitsVersion[]>;
}

interface PartitionDoc {
  _id: string;
  appliedOffset: number;
  /** JSON: Incident[] (dates as epoch ms); one string so FerretDB decodes it at once. */
  running: string;
  /** JSON: [sensorId, LimitsVersion[]][] */
  limits: string;
}

export interface IncidentQuery {
  status?: IncidentStatus | undefined;
  sensorIds?: readonly string[] | undefined;
  first: number;
  /** Exclusive bound from a previous page (newest first by opening time, then id). */
  before?: { openedAt: Date; id: string } | undefined;
}

export interface IncidentStore {
  /** Incident updates by stream position, for incidentUpdates replays. */
  readonly updates: PositionPages<IncidentUpdate>;
  loadPartition(topic: string, partition: number): Promise<PartitionIncidentState | undefined>;
  savePartition(topic: string, partition: number, state: PartitionIncidentState): Promise<void>;
  write(incidents: readonly Incident[]): Promise<void>;
  writeLimits(records: readonly SensorLimitsRecord[]): Promise<void>;
  get(id: string): Promise<Incident | undefined>;
  /** Newest first. On FerretDB this scans the incidents kept (few: one per episode, not per reading). */
  page(query: IncidentQuery): Promise<{ items: Incident[]; hasNextPage: boolean }>;
  limitsOf(sensorIds: readonly string[]): Promise<Map<string, SensorLimitsRecord>>;
  /** Removes cleared incidents cleared before `cutoff`. */
  purgeClearedBefore(cutoff: Date): Promise<number>;
}

type Packed = Omit<Incident, 'openedAt' | 'updatedAt' | 'clearedAt' | 'acknowledgedAt' | 'coolSince'> & {
  openedAt: number;
  updatedAt: number;
  clearedAt: number | null;
  acknowledgedAt: number | null;
  coolSince: number | null;
};

const ms = (d: Date | null): number | null => (d ? d.getTime() : null);
const date = (n: number | null): Date | null => (n === null ? null : new Date(n));

function pack(i: Incident): Packed {
  return {
    ...i,
    openedAt: i.openedAt.getTime(),
    updatedAt: i.updatedAt.getTime(),
    clearedAt: ms(i.clearedAt),
    acknowledgedAt: ms(i.acknowledgedAt),
    coolSince: ms(i.coolSince),
  };
}

function unpack(p: Packed): Incident {
  return {
    ...p,
    openedAt: new Date(p.openedAt),
    updatedAt: new Date(p.updatedAt),
    clearedAt: date(p.clearedAt),
    acknowledgedAt: date(p.acknowledgedAt),
    coolSince: date(p.coolSince),
  };
}

/** An incident update on the wire (Redis) and in pages: [offset, sensorId, change, packed incident]. */
export const incidentUpdateCodec: PageCodec<IncidentUpdate> & {
  encode(this: void, u: IncidentUpdate): string;
  decode(this: void, text: string): IncidentUpdate;
} = {
  pack: (u) => [u.position.offset, u.sensorId, u.change, pack(u.incident)],
  unpack(partition, p) {
    const [offset, sensorId, change, packed] = p as [number, string, IncidentChange, Packed];
    const incident = unpack(packed);
    return { sensorId, change, incident, position: { partition, offset } };
  },
  encode: (u) => JSON.stringify([u.position.partition, u.position.offset, u.sensorId, u.change, pack(u.incident)]),
  decode(text) {
    const [partition, offset, sensorId, change, packed] = JSON.parse(text) as [
      number,
      number,
      string,
      IncidentChange,
      Packed,
    ];
    return { sensorId, change, incident: unpack(packed), position: { partition, offset } };
  },
};

function toDoc(i: Incident): IncidentDoc {
  const { id, position, ...rest } = i;
  return { _id: id, ...rest, partition: position.partition, offset: position.offset };
}

function fromDoc(d: IncidentDoc): Incident {
  const { _id, partition, offset, ...rest } = d;
  return { id: _id, ...rest, position: { partition, offset } };
}

async function inCommands<T extends { _id: string }>(
  gate: WriteGate,
  collection: Collection<T>,
  ops: AnyBulkWriteOperation<T>[],
): Promise<void> {
  for (let i = 0; i < ops.length; i += GATED_MAX_STATEMENTS)
    await gate(() => collection.bulkWrite(ops.slice(i, i + GATED_MAX_STATEMENTS), { ordered: true }));
}

export function createIncidentStore(db: Db, gate: WriteGate = createWriteGate()): IncidentStore {
  const incidents: Collection<IncidentDoc> = db.collection(INCIDENTS);
  const limits: Collection<LimitsDoc> = db.collection(SENSOR_LIMITS);
  const partitions: Collection<PartitionDoc> = db.collection(INCIDENT_PARTITIONS);

  return {
    updates: createPositionPages(db, INCIDENT_UPDATE_PAGE_NAMES, incidentUpdateCodec, gate),
    async loadPartition(topic, partition) {
      const d = await partitions.findOne({ _id: `${topic}:${partition}` });
      if (!d) return undefined;
      return {
        appliedOffset: d.appliedOffset,
        running: (JSON.parse(d.running) as Packed[]).map(unpack),
        limits: new Map(JSON.parse(d.limits) as [string, LimitsVersion[]][]),
      };
    },
    async savePartition(topic, partition, state) {
      await gate(() =>
        partitions.replaceOne(
          { _id: `${topic}:${partition}` },
          {
            appliedOffset: state.appliedOffset,
            running: JSON.stringify(state.running.map(pack)),
            limits: JSON.stringify([...state.limits]),
          },
          { upsert: true },
        ),
      );
    },
    async write(batch) {
      await inCommands(
        gate,
        incidents,
        batch.map((i) => {
          const { _id, ...replacement } = toDoc(i);
          return { replaceOne: { filter: { _id }, replacement, upsert: true } };
        }),
      );
    },
    async writeLimits(records) {
      await inCommands(
        gate,
        limits,
        records.map((r) => ({
          replaceOne: {
            filter: { _id: r.sensorId },
            replacement: { thresholdC: r.thresholdC, hysteresisC: r.hysteresisC, setBy: r.setBy, setAt: r.setAt },
            upsert: true,
          },
        })),
      );
    },
    async get(id) {
      const d = await incidents.findOne({ _id: id });
      return d ? fromDoc(d) : undefined;
    },
    async page(q) {
      const filter: Filter<IncidentDoc> = {};
      if (q.status) filter.status = q.status;
      if (q.sensorIds) filter.sensorId = { $in: [...q.sensorIds] };
      if (q.before)
        filter.$or = [
          { openedAt: { $lt: q.before.openedAt } },
          { openedAt: q.before.openedAt, _id: { $lt: q.before.id } },
        ];
      const docs = await incidents
        .find(filter)
        .sort({ openedAt: -1, _id: -1 })
        .limit(q.first + 1)
        .toArray();
      return { items: docs.slice(0, q.first).map(fromDoc), hasNextPage: docs.length > q.first };
    },
    async limitsOf(sensorIds) {
      const out = new Map<string, SensorLimitsRecord>();
      // By bare `_id`, one at a time: the one filter FerretDB serves from an index.
      for (const sensorId of sensorIds) {
        const d = await limits.findOne({ _id: sensorId });
        if (d)
          out.set(sensorId, {
            sensorId,
            thresholdC: d.thresholdC,
            hysteresisC: d.hysteresisC,
            setBy: d.setBy,
            setAt: d.setAt,
          });
      }
      return out;
    },
    async purgeClearedBefore(cutoff) {
      return (await incidents.deleteMany({ status: 'CLEARED', clearedAt: { $lt: cutoff } })).deletedCount;
    },
  };
}
