/**
 * The MongoDB store: the one place where readings, alerts, sensors and stream progress are written.
 * Every write is idempotent (natural keys as `_id`), so replaying a Kafka batch changes nothing.
 * Queries stick to what both MongoDB 7 and FerretDB 1.x support.
 *
 * This file connects and composes; each slice is its own file, and callers take the slices they
 * use: alerts (alertStore.ts), incidents (incidentStore.ts), sensors and fleet (fleetStore.ts),
 * reading history (readingHistory.ts), progress (progressStore.ts).
 */
import { join } from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import type { IncidentUpdate } from '../domain/incident.js';
import type { Logger } from '../logger.js';
import { ALERT_PAGES, ALERT_PAGE_DIRS, createAlertPages, itemsBetween } from './alertPages.js';
import { ALERTS, createAlertStore, ensureAlertIndexes, storedAlerts, type AlertStore } from './alertStore.js';
import { createClientWatchdog } from './clientWatchdog.js';
import { COMMAND_DEADLINE_MS } from './commandDeadline.js';
import { WAL_LIMIT_BYTES, ensureSqliteIdIndexes, isFerretDb, keepWalBounded } from './ferretSqlite.js';
import {
  createFleetStore,
  createSensorStore,
  ensureSensorIndexes,
  type FleetStore,
  type SensorStore,
} from './fleetStore.js';
import {
  INCIDENTS,
  INCIDENT_PARTITIONS,
  INCIDENT_UPDATE_PAGE_NAMES,
  SENSOR_LIMITS,
  createIncidentStore,
  type IncidentStore,
} from './incidentStore.js';
import { translateErrors } from './mongoErrors.js';
import { STREAM_PROGRESS, createProgressStore, type ProgressStore } from './progressStore.js';
import { BUCKETS, DAYS, SENSORS, createReadingHistory, type ReadingHistory } from './readingHistory.js';
import { createStorePriority } from './storePriority.js';
import type { StreamHistory } from './streamHistory.js';
import { GATE_CONCURRENCY, createWriteGate, type WriteGate } from './writeGate.js';

export type { AlertQuery, AlertStore, Page } from './alertStore.js';
export type { FleetStore, ReplicaLease, SensorStore } from './fleetStore.js';
export type { ProgressStore } from './progressStore.js';

export interface MongoStore {
  /** Reading history in the bucket layout (store/readingHistory.ts). */
  readonly readings: ReadingHistory;
  /** Incidents and per-sensor limits (store/incidentStore.ts). */
  readonly incidents: IncidentStore;
  /** The incidentUpdates stream as its feed reads it (same positions and retention as alerts). */
  readonly incidentUpdates: StreamHistory<IncidentUpdate>;
  /** Overheat alerts and their replay pages (store/alertStore.ts). */
  readonly alerts: AlertStore;
  /** Simulated sensors (store/fleetStore.ts). */
  readonly sensors: SensorStore;
  /** Replica leases and the fleet's change stamp (store/fleetStore.ts). */
  readonly fleet: FleetStore;
  /** Stream watermarks and handovers of the alert path (store/progressStore.ts). */
  readonly progress: ProgressStore;
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

/** Every call failing as unreachable this long makes the watchdog probe the server. */
const STUCK_AFTER_MS = 15_000;
const WATCHDOG_CHECK_MS = 5_000;

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
  const progress = createProgressStore(alertsDb);
  const alerts = createAlertStore({
    alertsDb,
    pages: alertPages,
    incidentUpdatePages: incidents.updates,
    progress,
    deadlineMs,
  });

  await Promise.all([ensureAlertIndexes(alertsDb), ensureSensorIndexes(db)]);
  const walKeeper = await prepareFerretSqlite({ db, alertsDb, pagesDb, incidentsDb }, options.ferretSqliteDir, log);
  // A store written before the replay pages existed: one replica builds them from the alerts kept.
  const built = await alertPages.ensureBuilt(() => storedAlerts(alertsDb));
  if (built > 0) log.info({ alerts: built }, 'built the alert replay pages from the stored alerts');
  log.debug({ database: options.database }, 'connected');

  // Every method: an unreachable store surfaces as DependencyError('mongodb'), the one error other
  // modules read (clients see STORE_UNAVAILABLE, errors.ts); anything else passes through unchanged.
  const api = translateErrors<Omit<MongoStore, 'clientReconnects' | 'forgetWrites' | 'urgent'>>(
    {
      readings: createReadingHistory(db, { commandDeadlineMs: deadlineMs, priority }),
      incidents,
      incidentUpdates: {
        between: (cursor, watermarks, sensorIds, limit) =>
          itemsBetween(incidents.updates, cursor, watermarks, sensorIds, limit),
        purgedUpTo: (topic) => alerts.purgedUpTo(topic),
      },
      alerts,
      sensors: createSensorStore(db),
      fleet: createFleetStore(db),
      progress,
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
 * On FerretDB/SQLite: ensures the `_id` expression indexes every lookup by `_id` needs, and keeps
 * the databases' WAL files bounded (store/ferretSqlite.ts). Returns the WAL keeper to dispose.
 */
async function prepareFerretSqlite(
  { db, alertsDb, pagesDb, incidentsDb }: { db: Db; alertsDb: Db; pagesDb: Db; incidentsDb: Db },
  sqliteDir: string | undefined,
  log: Logger,
): Promise<{ dispose(): void } | undefined> {
  if (!sqliteDir) {
    if (await isFerretDb(db).catch(() => false)) {
      log.warn(
        "FerretDB without MONGODB_FERRETDB_SQLITE_DIR: every history lookup scans its collection; set it to FerretDB's SQLite directory",
      );
    }
    return undefined;
  }
  // Without the index every history lookup scans its collection: slow, but correct. Start anyway.
  await Promise.all([
    ensureSqliteIdIndexes(db, sqliteDir, [BUCKETS, DAYS, SENSORS]),
    ensureSqliteIdIndexes(pagesDb, sqliteDir, [ALERT_PAGES, ALERT_PAGE_DIRS]),
    // Alerts are looked up by `_id` when an insert meets ones stored before (a batch replayed).
    ensureSqliteIdIndexes(alertsDb, sqliteDir, [ALERTS, STREAM_PROGRESS]),
    ensureSqliteIdIndexes(incidentsDb, sqliteDir, [
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
        { err: err.message, dir: sqliteDir },
        'could not ensure the FerretDB SQLite _id indexes; history lookups will scan',
      ),
  );
  const files = [...new Set([db, alertsDb, pagesDb, incidentsDb].map((d) => d.databaseName))].map((name) =>
    join(sqliteDir, `${name}.sqlite`),
  );
  return keepWalBounded({
    files,
    onCheckpoint: (file, walBytes, ms, result) => {
      // `busy|frames|checkpointed`: busy means readers held on and the WAL was not emptied. Said
      // aloud once it is far past the limit: a long read (a scan) is starving the checkpoints.
      const starved = result.startsWith('1|') && walBytes > 4 * WAL_LIMIT_BYTES;
      (starved ? log.warn.bind(log) : log.debug.bind(log))(
        { file, walBytes, ms: Math.round(ms), result },
        starved ? 'FerretDB SQLite WAL not emptied: a long read holds it' : 'FerretDB SQLite WAL checkpointed',
      );
    },
    onError: (file, err) => log.warn({ file, err: err.message }, 'FerretDB SQLite WAL checkpoint failed'),
  });
}
