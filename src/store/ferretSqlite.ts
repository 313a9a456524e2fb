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
import { existsSync } from 'node:fs';
import { join } from 'node:path';
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
