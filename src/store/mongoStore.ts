/**
 * The MongoDB store: the one place where readings, alerts, sensors and stream progress are written.
 * Every write is idempotent (natural keys as `_id`), so replaying a Kafka batch changes nothing.
 * Queries stick to what both MongoDB 7 and FerretDB 1.x support.
 */
import { MongoBulkWriteError, MongoClient, MongoServerError, type Collection, type Db, type Filter } from 'mongodb';
import type { OverheatAlert, StreamPosition } from '../domain/alert.js';
import type { IncidentUpdate } from '../domain/incident.js';
import type { StreamHistory } from './streamHistory.js';
import type { AlertCursor } from '../domain/alertCursor.js';
import type { Location } from '../domain/reading.js';
import type { Logger } from '../logger.js';
import { ALERT_PAGES, ALERT_PAGE_DIRS, createAlertPages, itemsBetween } from './alertPages.js';
import { join } from 'node:path';
import { ensureSqliteIdIndexes, isFerretDb, keepWalBounded } from './ferretSqlite.js';
import { createClientWatchdog, type ClientWatchdog } from './clientWatchdog.js';
import { COMMAND_DEADLINE_MS, CommandDeadlineError, withDeadline } from './commandDeadline.js';
import { allSettledOrThrow } from '../shared/retry.js';
import { createStorePriority } from './storePriority.js';
import { sharedReads } from './sharedReads.js';
import { GATE_CONCURRENCY, createWriteGate, type WriteGate } from './writeGate.js';
import {
  INCIDENTS,
  INCIDENT_PARTITIONS,
  INCIDENT_UPDATE_PAGE_NAMES,
  SENSOR_LIMITS,
  createIncidentStore,
  type IncidentStore,
} from './incidentStore.js';
import { BUCKETS, DAYS, SENSORS, createReadingHistory, type ReadingHistory } from './readingHistory.js';
import type { ReplaySpec, Scenario, SensorStatus, SimulatedSensor } from '../domain/sensor.js';
import { DependencyError } from '../errors.js';

interface AlertDoc {
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

interface ProgressDoc {
  _id: string;
  topic: string;
  partition: number;
  /** Last offset whose readings and alerts are durably stored. */
  offset: number;
  /** Highest timestamp of the alerts stored up to `offset` (absent: none, or stored before it was kept). */
  alertTs?: Date;
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

export interface MongoStore {
  /** Reading history in the bucket layout (store/readingHistory.ts). */
  readonly readings: ReadingHistory;
  /** Incidents and per-sensor limits (store/incidentStore.ts). */
  readonly incidents: IncidentStore;
  /** The incidentUpdates stream as its feed reads it (same positions and retention as alerts). */
  readonly incidentUpdates: StreamHistory<IncidentUpdate>;
  readonly alerts: {
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
  };
  readonly sensors: {
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
  };
  /** Replica leases and the fleet's change stamp (what replicas poll instead of every sensor). */
  readonly fleet: {
    leases(): Promise<ReplicaLease[]>;
    renewLease(replicaId: string, until: Date): Promise<void>;
    /** Claims a lapsed lease for `adopter`; true for exactly one claimant per lapse. */
    claimLease(lease: ReplicaLease, adopter: string): Promise<boolean>;
    /** Changes whenever sensors are spawned, stopped or adopted. */
    version(): Promise<string | undefined>;
    bumpVersion(): Promise<void>;
  };
  readonly progress: {
    /**
     * Records that everything up to `offset` in this partition is stored, and `alertTs`, the highest
     * timestamp of the alerts just stored (if any). Neither moves backwards.
     */
    advance(topic: string, position: StreamPosition, alertTs?: Date): Promise<void>;
    watermarks(topic: string): Promise<Map<number, number>>;
    /**
     * The partition's watermark document: the watermark, and the highest alert timestamp stored up
     * to it (`null` when it was never recorded: a store written before it was kept); undefined when
     * the partition has no watermark.
     */
    storedUpTo(topic: string, partition: number): Promise<{ offset: number; alertTs: Date | null } | undefined>;
    /**
     * A consumer of the alert path has stored everything it had judged when it joined the group for
     * the `seq`-th time (stream/handoverAssigner.ts). Records older than a day are dropped meanwhile.
     */
    handedOver(instance: string, seq: number): Promise<void>;
    /** The last `seq` recorded by handedOver for this consumer, if any. */
    handoverOf(instance: string): Promise<number | undefined>;
  };
  ping(): Promise<void>;
  /** Times the client was found stuck and connected again (store/clientWatchdog.ts). */
  clientReconnects(): number;
  /**
   * Partitions may have moved (a consumer-group rebalance): what the alert path's writer keeps of
   * its own last writes (the replay pages it wrote last) is read from the store again.
   */
  forgetWrites(): void;
  /**
   * Runs alert-path store work ahead of reading history: history bulk commands wait while any is
   * under way (store/storePriority.ts).
   */
  urgent<T>(work: () => Promise<T>): Promise<T>;
  dispose(): Promise<void>;
}

const DUPLICATE_KEY = 11000;
/** Every call failing as unreachable this long makes the watchdog probe the server. */
const STUCK_AFTER_MS = 15_000;
const WATCHDOG_CHECK_MS = 5_000;

/** The driver types `writeErrors` as one error or a list. */
function writeErrorsOf(err: MongoBulkWriteError): { code: number; index: number }[] {
  const raw = err.writeErrors as unknown;
  return (Array.isArray(raw) ? raw : [raw]) as { code: number; index: number }[];
}

function isOnlyDuplicates(err: unknown): err is MongoBulkWriteError {
  if (!(err instanceof MongoBulkWriteError)) return false;
  const errors = writeErrorsOf(err);
  return errors.length > 0 && errors.every((e) => e.code === DUPLICATE_KEY);
}

function duplicateIndexes(err: MongoBulkWriteError): number[] {
  return writeErrorsOf(err).map((e) => e.index);
}

function toAlertDoc(a: OverheatAlert): AlertDoc {
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

function toSensorDoc(s: SimulatedSensor): SensorDoc {
  const { id, owner, ...rest } = s;
  return { _id: id, ...rest, ...(owner ? { owner } : {}) };
}

function fromSensorDoc(d: SensorDoc): SimulatedSensor {
  const { _id, ...rest } = d;
  return { id: _id, ...rest };
}

function fromAlertDoc(d: AlertDoc): OverheatAlert {
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

/**
 * Readings and sensors live in `database`; alerts and stream progress, the alert path, in
 * `alertsDatabase` (default `<database>_alerts`); the alerts' replay pages in `alertPagesDatabase`
 * and incidents in `incidentsDatabase` (both default to the alerts database). On MongoDB that is
 * only tidy. On FerretDB/SQLite each database is its own file with its own write lock: bulk reading
 * inserts never queue the small alert writes behind them, and the writes one batch makes side by
 * side (alerts, pages, incidents) only run side by side when they are in different files.
 */
export async function connectMongoStore(options: {
  url: string;
  database: string;
  alertsDatabase?: string;
  alertPagesDatabase?: string;
  incidentsDatabase?: string;
  /** FerretDB's SQLite directory: when set, the `_id` expression indexes are ensured (see ferretSqlite.ts). */
  ferretSqliteDir?: string;
  /** Deadline of one write command (store/commandDeadline.ts); COMMAND_DEADLINE_MS unless a test needs less. */
  commandDeadlineMs?: number;
  logger: Logger;
}): Promise<MongoStore> {
  const log = options.logger.child({ module: 'store.mongo' });
  const client = new MongoClient(options.url, {
    serverSelectionTimeoutMS: 5000,
    // Writes retry once on transient errors; the consumer retries beyond that.
    retryWrites: true,
    maxPoolSize: 20,
    appName: 'iot-realtime-pipeline',
  });
  await client.connect();
  // Heals a client whose view of the server got stuck (store/clientWatchdog.ts).
  const watchdog = createClientWatchdog({
    stuckAfterMs: STUCK_AFTER_MS,
    logger: log,
    probe: async () => {
      const fresh = new MongoClient(options.url, { serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000 });
      try {
        await fresh.connect();
        await fresh.db('admin').command({ ping: 1 });
        return true;
      } finally {
        await fresh.close().catch(() => undefined);
      }
    },
    reconnect: async () => {
      await client.close().catch(() => undefined);
      await client.connect();
    },
  });
  const watchdogTimer = setInterval(() => void watchdog.check(), WATCHDOG_CHECK_MS).unref();
  const db = client.db(options.database);
  const alertsDb = client.db(options.alertsDatabase ?? `${options.database}_alerts`);
  const alerts: Collection<AlertDoc> = alertsDb.collection('alerts');
  const sensors: Collection<SensorDoc> = db.collection('sensors');
  const leases: Collection<ReplicaLease> = db.collection('replica_leases');
  const leaseClaims: Collection<{ _id: string; by: string; at: Date }> = db.collection('replica_lease_claims');
  const fleetState: Collection<{ _id: string; v: string }> = db.collection('fleet_state');
  const progress: Collection<ProgressDoc> = alertsDb.collection('stream_progress');
  // Every subscription reads the watermarks when it opens and when it replays: thousands together.
  const readWatermarks = sharedReads(async (topic) => {
    const docs = await progress.find({ topic }).toArray();
    return new Map(docs.map((d) => [d.partition, d.offset]));
  });
  const purges: Collection<ProgressDoc> = alertsDb.collection('alert_purges');
  const handovers: Collection<{ _id: string; seq: number; at: Date }> = alertsDb.collection('alert_path_handovers');
  // The alert path's writes go ahead of reading history (store/storePriority.ts).
  const priority = createStorePriority();
  // One gate per database for the alert path's writes in this process (store/writeGate.ts): the
  // bound it keeps is per database (FerretDB's connection pool).
  const deadlineMs = options.commandDeadlineMs ?? COMMAND_DEADLINE_MS;
  const gates = new Map<string, WriteGate>();
  const gateOf = (d: Db): WriteGate => {
    let gate = gates.get(d.databaseName);
    if (!gate) gates.set(d.databaseName, (gate = createWriteGate(GATE_CONCURRENCY, deadlineMs)));
    return gate;
  };
  const pagesDb = options.alertPagesDatabase ? client.db(options.alertPagesDatabase) : alertsDb;
  const incidentsDb = options.incidentsDatabase ? client.db(options.incidentsDatabase) : alertsDb;
  const alertPages = createAlertPages(pagesDb, gateOf(pagesDb));
  const incidents = createIncidentStore(incidentsDb, gateOf(incidentsDb));
  const purgedUpTo = async (topic: string): Promise<Map<number, number>> =>
    new Map((await purges.find({ topic }).toArray()).map((d) => [d.partition, d.offset]));

  await Promise.all([
    alerts.createIndex({ ts: -1, _id: -1 }, { name: 'ts_id' }),
    alerts.createIndex({ sensorId: 1, ts: -1 }, { name: 'sensor_ts' }),
    alerts.createIndex({ partition: 1, offset: 1 }, { name: 'position' }),
    sensors.createIndex({ status: 1 }, { name: 'status' }),
  ]);
  let walKeeper: { dispose(): void } | undefined;
  if (options.ferretSqliteDir) {
    // Without the index every history lookup scans its collection: slow, but correct. Start anyway.
    await Promise.all([
      ensureSqliteIdIndexes(db, options.ferretSqliteDir, [BUCKETS, DAYS, SENSORS]),
      ensureSqliteIdIndexes(pagesDb, options.ferretSqliteDir, [ALERT_PAGES, ALERT_PAGE_DIRS]),
      // Alerts are looked up by `_id` when an insert meets ones stored before (a batch replayed).
      ensureSqliteIdIndexes(alertsDb, options.ferretSqliteDir, ['alerts', 'stream_progress']),
      ensureSqliteIdIndexes(incidentsDb, options.ferretSqliteDir, [
        INCIDENTS,
        SENSOR_LIMITS,
        INCIDENT_PARTITIONS,
        INCIDENT_UPDATE_PAGE_NAMES.pages,
        INCIDENT_UPDATE_PAGE_NAMES.dirs,
      ]),
    ]).then(
      (indexes) => log.debug({ indexes: indexes.flat() }, 'FerretDB SQLite _id indexes ensured'),
      (err: Error) =>
        log.error(
          { err: err.message, dir: options.ferretSqliteDir },
          'could not ensure the FerretDB SQLite _id indexes; history lookups will scan',
        ),
    );
    const sqliteDir = options.ferretSqliteDir;
    const files = [...new Set([db, alertsDb, pagesDb, incidentsDb].map((d) => d.databaseName))].map((name) =>
      join(sqliteDir, `${name}.sqlite`),
    );
    walKeeper = keepWalBounded({
      files,
      onCheckpoint: (file, walBytes, ms, result) =>
        log.debug({ file, walBytes, ms: Math.round(ms), result }, 'FerretDB SQLite WAL checkpointed'),
      onError: (file, err) => log.warn({ file, err: err.message }, 'FerretDB SQLite WAL checkpoint failed'),
    });
  } else if (await isFerretDb(db).catch(() => false)) {
    log.warn(
      "FerretDB without MONGODB_FERRETDB_SQLITE_DIR: every history lookup scans its collection; set it to FerretDB's SQLite directory",
    );
  }
  // A store written before the replay pages existed: one replica builds them from the alerts kept.
  const built = await alertPages.ensureBuilt(async function* () {
    for await (const d of alerts.find({}).sort({ partition: 1, offset: 1 })) yield fromAlertDoc(d);
  });
  if (built > 0) log.info({ alerts: built }, 'built the alert replay pages from the stored alerts');
  log.debug({ database: options.database }, 'connected');

  /** Stores alerts; returns those newly stored, or stored earlier from the very same stream position. */
  async function insertOwned(batch: readonly OverheatAlert[]): Promise<OverheatAlert[]> {
    try {
      await withDeadline(alerts.insertMany(batch.map(toAlertDoc), { ordered: false }), deadlineMs, 'insert of alerts');
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

  // Every method: an unreachable store surfaces as DependencyError('mongodb'), the one error other
  // modules read (http/ maps it to STORE_UNAVAILABLE); anything else passes through unchanged.
  const api = translateErrors<Omit<MongoStore, 'clientReconnects' | 'forgetWrites' | 'urgent'>>(
    {
      readings: createReadingHistory(db, { commandDeadlineMs: deadlineMs, priority }),
      incidents,
      incidentUpdates: {
        between: (cursor, watermarks, sensorIds, limit) =>
          itemsBetween(incidents.updates, cursor, watermarks, sensorIds, limit),
        purgedUpTo: (topic) => purgedUpTo(topic),
      },
      alerts: {
        async insert(batch) {
          if (batch.length === 0) return [];
          // The pages need not wait for the insert: readers never read past the watermark, and it
          // moves after both. A re-sent reading's alert (stored before, from another position) is
          // not an alert of its own: it comes off its page again, before the watermark moves.
          const [owned] = await allSettledOrThrow([insertOwned(batch), alertPages.write(batch)]);
          if (owned.length < batch.length) {
            const kept = new Set(owned.map((a) => `${a.position.partition}:${a.position.offset}`));
            await alertPages.remove(batch.filter((a) => !kept.has(`${a.position.partition}:${a.position.offset}`)));
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
        between: (cursor, watermarks, sensorIds, limit) =>
          itemsBetween(alertPages, cursor, watermarks, sensorIds, limit),
        count: (sensorIds) => alerts.countDocuments(sensorIds ? { sensorId: { $in: [...sensorIds] } } : {}),
        async purgeBefore(topic, cutoff) {
          let removed = 0;
          for (const { partition } of await progress.find({ topic }).toArray()) {
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
            await alertPages.purge(partition, newest.offset);
            await incidents.updates.purge(partition, newest.offset);
          }
          return removed;
        },
        purgedUpTo: (topic) => purgedUpTo(topic),
      },
      sensors: {
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
      },
      fleet: {
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
      },
      progress: {
        async advance(topic, position, alertTs) {
          await progress.updateOne(
            { _id: `${topic}:${position.partition}` },
            {
              $max: alertTs ? { offset: position.offset, alertTs } : { offset: position.offset },
              $setOnInsert: { topic, partition: position.partition },
            },
            { upsert: true },
          );
        },
        async storedUpTo(topic, partition) {
          const d = await progress.findOne({ _id: `${topic}:${partition}` });
          return d ? { offset: d.offset, alertTs: d.alertTs ?? null } : undefined;
        },
        async handedOver(instance, seq) {
          await handovers.updateOne({ _id: instance }, { $max: { seq }, $set: { at: new Date() } }, { upsert: true });
          await handovers.deleteMany({ at: { $lt: new Date(Date.now() - 86_400_000) } });
        },
        async handoverOf(instance) {
          return (await handovers.findOne({ _id: instance }))?.seq;
        },
        async watermarks(topic) {
          // A copy each: callers share the read (see readWatermarks), not the map.
          return new Map(await readWatermarks(topic));
        },
      },
      async ping() {
        await db.command({ ping: 1 });
      },
      async dispose() {
        clearInterval(watchdogTimer);
        walKeeper?.dispose();
        await client.close();
      },
    },
    watchdog,
  );
  return {
    ...api,
    clientReconnects: () => watchdog.reconnects(),
    forgetWrites() {
      alertPages.forget();
      incidents.updates.forget();
    },
    urgent: (work) => priority.urgent(work),
  };
}

/**
 * Wraps every function of `api` (plain objects nested in it too) so that unavailability becomes
 * DependencyError, and tells `health` whether each call reached the server.
 */
function translateErrors<T extends object>(api: T, health: Pick<ClientWatchdog, 'reached' | 'unreachable'>): T {
  const wrap =
    (fn: (...args: unknown[]) => unknown, self: object) =>
    async (...args: unknown[]): Promise<unknown> => {
      try {
        const result = await fn.apply(self, args);
        health.reached();
        return result;
      } catch (err) {
        if (isMongoUnavailable(err)) {
          health.unreachable();
          throw new DependencyError('mongodb', `the store is unreachable: ${(err as Error).message}`, true, {
            cause: err,
          });
        }
        if (err instanceof MongoServerError) health.reached(); // the server answered, with an error
        throw err;
      }
    };
  const wrapAll = (obj: object): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(obj)) {
      if (typeof value === 'function') out[key] = wrap(value as (...args: unknown[]) => unknown, obj);
      else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype)
        out[key] = wrapAll(value as object);
      else out[key] = value;
    }
    return out;
  };
  return wrapAll(api) as T;
}

/**
 * Whether the store could not be reached: a network, server selection or closed-client error, also
 * when a bulk write wraps it (a MongoBulkWriteError with no write errors keeps it in errorResponse).
 */
function isMongoUnavailable(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 3) return false;
  if (err instanceof CommandDeadlineError) return true;
  if (err instanceof MongoBulkWriteError && writeErrorsOf(err).length === 0)
    return isMongoUnavailable(err.errorResponse, depth + 1);
  if (err instanceof MongoServerError) return false;
  return /Mongo(Network|ServerSelection|NotConnected|Topology)/.test(err.name);
}
