/** The store (MongoDB, or FerretDB locally): where it is, and which database holds what. */
import { localFerretSqliteDir } from '../localFerretDb.js';
import { optionalText, text, url, type Declarations, type Parsed } from './values.js';

export const STORE_VARIABLES = {
  MONGODB_URL: { schema: url('mongodb://127.0.0.1:27017', ['mongodb:', 'mongodb+srv:']), doc: 'the store' },
  MONGODB_DATABASE: { schema: text('iot', /^[a-zA-Z0-9_-]{1,56}$/), doc: 'readings and sensors' },
  MONGODB_ALERTS_DATABASE: {
    schema: optionalText(/^[a-zA-Z0-9_-]{1,63}$/),
    doc: 'alerts and stream progress (default <MONGODB_DATABASE>_alerts)',
  },
  MONGODB_ALERT_PAGES_DATABASE: {
    schema: optionalText(/^[a-zA-Z0-9_-]{1,63}$/),
    doc: "the alerts' replay pages (default: the alerts database); on FerretDB/SQLite give it its own",
  },
  MONGODB_INCIDENTS_DATABASE: {
    schema: optionalText(/^[a-zA-Z0-9_-]{1,63}$/),
    doc: 'incidents, sensor limits and tracker state (default: the alerts database); on FerretDB/SQLite give it its own',
  },
  MONGODB_FERRETDB_SQLITE_DIR: {
    schema: optionalText(),
    doc: 'FerretDB on SQLite only: where the API keeps its _id indexes (found by itself for the FerretDB scripts/services.sh runs)',
  },
} as const satisfies Declarations;

export interface StoreSettings {
  readonly url: string;
  readonly database: string;
  /** Alerts and stream progress (the alert path); default `<database>_alerts`. */
  readonly alertsDatabase: string;
  /** The alerts' replay pages; default the alerts database. */
  readonly alertPagesDatabase: string;
  /** Incidents, their updates, sensor limits and the incident tracker's state; default the alerts database. */
  readonly incidentsDatabase: string;
  /** FerretDB's SQLite directory, when the store is FerretDB on SQLite: the `_id` indexes are kept there. */
  readonly ferretSqliteDir: string | undefined;
}

export function storeSettings(e: Parsed<typeof STORE_VARIABLES>): StoreSettings {
  const alertsDatabase = e.MONGODB_ALERTS_DATABASE ?? `${e.MONGODB_DATABASE}_alerts`;
  return {
    url: e.MONGODB_URL,
    database: e.MONGODB_DATABASE,
    alertsDatabase,
    alertPagesDatabase: e.MONGODB_ALERT_PAGES_DATABASE ?? alertsDatabase,
    incidentsDatabase: e.MONGODB_INCIDENTS_DATABASE ?? alertsDatabase,
    // Unset: found by itself when the store is the FerretDB scripts/services.sh runs (localFerretDb.ts).
    ferretSqliteDir: e.MONGODB_FERRETDB_SQLITE_DIR ?? localFerretSqliteDir(e.MONGODB_URL),
  };
}
