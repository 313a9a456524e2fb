/**
 * The simulated fleet as stored: the sensors replicas spawned (with their state), and the replica
 * leases by which a survivor adopts the sensors of a replica that went away.
 */
import { MongoServerError, type Collection, type Db, type Filter } from 'mongodb';
import type { ReplaySpec, Scenario, SensorStatus, SimulatedSensor } from '../domain/sensor.js';
import { DUPLICATE_KEY } from './mongoErrors.js';

/** How a sensor is stored (`_id` is its id); outside this module it is a SimulatedSensor. */
interface SensorDoc {
  _id: string;
  scenario: Scenario;
  intervalMs: number;
  seed: number;
  /** Position in its spawn request: with the seed, it fixes the sensor's readings. */
  index: number;
  status: SensorStatus;
  /** Replica that spawned it; while that replica's lease lapses, its adopter runs the sensor (see ReplicaLease). */
  replicaId: string;
  createdAt: Date;
  stoppedAt: Date | null;
  /** Credential that spawned it (Principal.id): per-key caps count by it. Absent on older documents. */
  owner?: string;
  /** REPLAY sensors only. */
  replay?: ReplaySpec;
}

/**
 * One per replica, renewed by it: the only document lease renewal writes, however many sensors the
 * replica runs. When it lapses, one survivor claims it (`adoptedBy`) and runs its sensors.
 */
export interface ReplicaLease {
  _id: string;
  until: Date;
  adoptedBy?: string | null;
}

export interface SensorStore {
  insert(sensors: readonly SimulatedSensor[]): Promise<void>;
  list(): Promise<SimulatedSensor[]>;
  countRunning(): Promise<number>;
  /** Running sensors spawned by this credential, and the readings/s they produce together. */
  usageOf(owner: string): Promise<{ count: number; rate: number }>;
  running(): Promise<SimulatedSensor[]>;
  /**
   * Marks running sensors stopped (all when ids is undefined); returns the ids it found running.
   * Nothing but this writes a sensor after its spawn, so a stop is never overwritten.
   */
  stop(ids: readonly string[] | undefined): Promise<string[]>;
  /** Removes sensors stopped before `before`. */
  purgeStopped(before: Date): Promise<number>;
}

/** Replica leases and the fleet's change stamp (what replicas poll instead of every sensor). */
export interface FleetStore {
  leases(): Promise<ReplicaLease[]>;
  renewLease(replicaId: string, until: Date): Promise<void>;
  /** Claims a lapsed lease for `adopter`; true for exactly one claimant per lapse. */
  claimLease(lease: ReplicaLease, adopter: string): Promise<boolean>;
  /** Changes whenever sensors are spawned, stopped or adopted. */
  version(): Promise<string | undefined>;
  bumpVersion(): Promise<void>;
}

function toSensorDoc(s: SimulatedSensor): SensorDoc {
  const { id, owner, ...rest } = s;
  return { _id: id, ...rest, ...(owner ? { owner } : {}) };
}

function fromSensorDoc(d: SensorDoc): SimulatedSensor {
  const { _id, ...rest } = d;
  return { id: _id, ...rest };
}

export async function ensureSensorIndexes(db: Db): Promise<void> {
  await db.collection<SensorDoc>('sensors').createIndex({ status: 1 }, { name: 'status' });
}

export function createSensorStore(db: Db): SensorStore {
  const sensors: Collection<SensorDoc> = db.collection('sensors');
  return {
    async insert(batch) {
      if (batch.length > 0) await sensors.insertMany(batch.map(toSensorDoc), { ordered: false });
    },
    list: async () => (await sensors.find({}).sort({ createdAt: 1, _id: 1 }).toArray()).map(fromSensorDoc),
    countRunning: () => sensors.countDocuments({ status: 'RUNNING' }),
    async usageOf(owner) {
      const docs = await sensors.find({ status: 'RUNNING', owner }, { projection: { intervalMs: 1 } }).toArray();
      return { count: docs.length, rate: docs.reduce((sum, d) => sum + 1000 / d.intervalMs, 0) };
    },
    running: async () => (await sensors.find({ status: 'RUNNING' }).toArray()).map(fromSensorDoc),
    async stop(ids) {
      const filter: Filter<SensorDoc> = { status: 'RUNNING' };
      if (ids) filter._id = { $in: [...ids] };
      const running = (await sensors.find(filter, { projection: { _id: 1 } }).toArray()).map((d) => d._id);
      const stoppedAt = new Date();
      // Filters by bare `_id` (pushed down to SQL on FerretDB), 25 statements per command.
      for (let i = 0; i < running.length; i += 25) {
        await sensors.bulkWrite(
          running.slice(i, i + 25).map((_id) => ({
            updateOne: { filter: { _id }, update: { $set: { status: 'STOPPED' as const, stoppedAt } } },
          })),
          { ordered: false },
        );
      }
      return running;
    },
    async purgeStopped(before) {
      return (await sensors.deleteMany({ status: 'STOPPED', stoppedAt: { $lt: before } })).deletedCount;
    },
  };
}

export function createFleetStore(db: Db): FleetStore {
  const leases: Collection<ReplicaLease> = db.collection('replica_leases');
  const leaseClaims: Collection<{ _id: string; by: string; at: Date }> = db.collection('replica_lease_claims');
  const fleetState: Collection<{ _id: string; v: string }> = db.collection('fleet_state');
  return {
    leases: () => leases.find({}).toArray(),
    async renewLease(replicaId, until) {
      await leases.updateOne({ _id: replicaId }, { $set: { until, adoptedBy: null } }, { upsert: true });
    },
    async claimLease(lease, adopter) {
      try {
        // Insert-only claim, unique per lapse: exactly one adopter wins, on MongoDB and FerretDB alike.
        await leaseClaims.insertOne({ _id: `${lease._id}@${lease.until.getTime()}`, by: adopter, at: new Date() });
      } catch (err) {
        if (err instanceof MongoServerError && err.code === DUPLICATE_KEY) return false;
        throw err;
      }
      await leases.updateOne({ _id: lease._id }, { $set: { adoptedBy: adopter } });
      return true;
    },
    async version() {
      return (await fleetState.findOne({ _id: 'version' }))?.v;
    },
    async bumpVersion() {
      await fleetState.updateOne(
        { _id: 'version' },
        { $set: { v: `${Date.now()}-${Math.random().toString(36).slice(2)}` } },
        { upsert: true },
      );
    },
  };
}
