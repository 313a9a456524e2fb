/**
 * FerretDB 1.24 on SQLite serves `{_id: X}` with a full table scan: its own `_id` index is on
 * `_ferretdb_sjson->"_id"` while its queries use `_ferretdb_sjson->'$._id'`, and SQLite only uses an
 * index whose expression matches the query's text. This module adds the matching expression index to
 * the collections whose every lookup is by `_id` (the bucket layout), turning 1.9 s scans at 1M
 * documents into sub-millisecond lookups.
 *
 * It goes around FerretDB's API (FerretDB does not know the index; a dump/restore or a recreated
 * collection loses it), so it is re-created, idempotently, at every start. Only used when
 * MONGODB_FERRETDB_SQLITE_DIR points at FerretDB's SQLite directory; MongoDB needs none of this.
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { MongoServerError, type Db } from 'mongodb';

const run = promisify(execFile);
const NAMESPACE_EXISTS = 48;
const SAFE = /^[A-Za-z0-9_.-]+$/;

async function sqlite(file: string, sql: string): Promise<string> {
  // .timeout: wait for FerretDB's write lock instead of failing with SQLITE_BUSY.
  const { stdout } = await run('sqlite3', ['-cmd', '.timeout 15000', file, sql], { timeout: 30_000 });
  return stdout.trim();
}

/** Creates the collections if needed, then the `_id` expression index on each. Returns the indexes ensured. */
export async function ensureSqliteIdIndexes(
  db: Db,
  sqliteDir: string,
  collections: readonly string[],
): Promise<string[]> {
  if (!SAFE.test(db.databaseName))
    throw new Error(`database name ${db.databaseName} is not safe to use as a file name`);
  for (const name of collections) {
    await db.createCollection(name).catch((err: unknown) => {
      if (!(err instanceof MongoServerError && err.code === NAMESPACE_EXISTS)) throw err;
    });
  }
  const file = join(sqliteDir, `${db.databaseName}.sqlite`);
  if (!existsSync(file))
    throw new Error(
      `FerretDB SQLite file ${file} not found (is MONGODB_FERRETDB_SQLITE_DIR FerretDB's --sqlite-url directory?)`,
    );
  const ensured: string[] = [];
  for (const name of collections) {
    if (!SAFE.test(name)) throw new Error(`collection name ${name} is not safe in SQL`);
    const table = await sqlite(file, `SELECT table_name FROM _ferretdb_collections WHERE name = '${name}'`);
    if (!SAFE.test(table)) throw new Error(`FerretDB has no table for collection ${name}`);
    const index = `${table}_iot_id_path`;
    await sqlite(file, `CREATE INDEX IF NOT EXISTS "${index}" ON "${table}" (_ferretdb_sjson->'$._id')`);
    ensured.push(index);
  }
  return ensured;
}

/** Whether the server is FerretDB (which answers buildInfo with `ferretdbVersion`). */
export async function isFerretDb(db: Db): Promise<boolean> {
  const info = await db.admin().command({ buildInfo: 1 });
  return typeof info.ferretdbVersion === 'string';
}

/** A WAL past this is checkpointed and truncated (see keepWalBounded). */
export const WAL_LIMIT_BYTES = 16 * 1_048_576;
/** How often the WALs are looked at. */
const WAL_CHECK_MS = 5000;

/**
 * Keeps the WAL of each of these FerretDB SQLite files under `limitBytes`.
 *
 * Why: FerretDB's own connections checkpoint passively, and a passive checkpoint cannot restart a
 * WAL that a reader is still using; under sustained writes some reader always is, so the WAL only
 * grows (measured: 207 MB for the readings file and 70 MB for the alerts file in a two-minute
 * storm), and every read searches it. A TRUNCATE checkpoint waits (briefly: `.timeout`) for the
 * readers of older snapshots to finish, copies the WAL into the file and empties it. It holds
 * writers back while it copies, so it runs as soon as a WAL passes the limit, while the copy is
 * small. Any replica may run it: SQLite serialises checkpoints, and one finding the WAL already
 * small does nothing.
 */
export function keepWalBounded(o: {
  files: readonly string[];
  limitBytes?: number;
  everyMs?: number;
  onCheckpoint?: (file: string, walBytes: number, ms: number, result: string) => void;
  onError?: (file: string, err: Error) => void;
}): { dispose(): void } {
  const limit = o.limitBytes ?? WAL_LIMIT_BYTES;
  let running = false;
  const check = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      for (const file of o.files) {
        let walBytes: number;
        try {
          walBytes = statSync(`${file}-wal`).size;
        } catch {
          continue; // no WAL (yet): nothing to do
        }
        if (walBytes <= limit) continue;
        const started = performance.now();
        try {
          // Waits 100 ms at most for readers: a FerretDB update that read before it and writes meanwhile is refused
          // (SQLITE_BUSY), and the alert path retries it. Prints busy, frames in the WAL, frames checkpointed.
          const result = await run('sqlite3', ['-cmd', '.timeout 100', file, 'PRAGMA wal_checkpoint(TRUNCATE);'], {
            timeout: 20_000,
          });
          o.onCheckpoint?.(file, walBytes, performance.now() - started, result.stdout.trim());
        } catch (err) {
          o.onError?.(file, err as Error);
        }
      }
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void check(), o.everyMs ?? WAL_CHECK_MS);
  timer.unref();
  return { dispose: () => clearInterval(timer) };
}
