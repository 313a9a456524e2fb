/**
 * The FerretDB that scripts/services.sh runs for development: when the store URL points at it, its
 * SQLite directory (where the store keeps its `_id` indexes, store/ferretSqlite.ts) is known
 * without MONGODB_FERRETDB_SQLITE_DIR, so a bare `npm start` gets the indexes too.
 *
 * The directory is read from the running FerretDB's own command line, found through the pid file
 * the script writes, and only when that process listens on the URL's port: a FerretDB the project
 * did not start (or one it started elsewhere) yields nothing, and the store warns as before.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const DEFAULT_PORT = '27017';

/** The checkout's `.services/` (scripts/services.sh's run directory), from src/ and dist/src/ alike. */
function defaultRunDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'scripts', 'services.sh'))) return join(dir, '.services');
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * FerretDB's SQLite directory when `storeUrl` names the FerretDB scripts/services.sh started and it
 * is running; otherwise undefined. Linux only (it reads /proc), as the script is.
 */
export function localFerretSqliteDir(storeUrl: string, runDir = defaultRunDir()): string | undefined {
  if (runDir === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(storeUrl);
  } catch {
    return undefined;
  }
  // One loopback host: a list of hosts or an SRV name is a deployment, not the local FerretDB.
  if (url.protocol !== 'mongodb:' || !LOOPBACK.has(url.hostname)) return undefined;
  const port = url.port || DEFAULT_PORT;
  let args: string[];
  try {
    const pid = readFileSync(join(runDir, 'ferretdb', 'ferretdb.pid'), 'utf8').trim();
    if (!/^\d+$/.test(pid)) return undefined;
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined; // not started by the script, or no longer running
  }
  const flag = (name: string): string | undefined =>
    args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const listen = flag('listen-addr');
  const sqlite = flag('sqlite-url');
  if (listen === undefined || sqlite === undefined || !sqlite.startsWith('file:')) return undefined;
  if (listen.slice(listen.lastIndexOf(':') + 1) !== port) return undefined;
  const dir = sqlite.slice('file:'.length).split('?')[0]!.replace(/\/+$/, '');
  return dir === '' ? undefined : dir;
}
