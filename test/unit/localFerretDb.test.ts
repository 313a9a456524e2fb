/**
 * A bare `npm start` finds the SQLite directory of the FerretDB scripts/services.sh runs, and only
 * of that one: a stand-in process with FerretDB's flags plays the script's FerretDB here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { localFerretSqliteDir } from '../../src/localFerretDb.js';
import { eventually } from '../support/wait.js';

const KEYS = { API_KEYS: 'admin:admin-secret-00000001' };
let runDir: string;
let ferret: ChildProcess;

/** Writes the pid file scripts/services.sh would, naming `pid`. */
function pidFile(pid: number | string): void {
  writeFileSync(join(runDir, 'ferretdb', 'ferretdb.pid'), `${pid}\n`);
}

beforeAll(async () => {
  runDir = mkdtempSync(join(tmpdir(), 'iot-run-'));
  mkdirSync(join(runDir, 'ferretdb'));
  // The flags scripts/services.sh gives FerretDB, on a process that only waits.
  ferret = spawn(
    process.execPath,
    [
      '-e',
      'setTimeout(() => {}, 120_000)',
      '--',
      '--handler=sqlite',
      `--sqlite-url=file:${runDir}/ferretdb/data/`,
      '--listen-addr=127.0.0.1:27999',
    ],
    { stdio: 'ignore' },
  );
  await eventually(
    () => readFileSync(`/proc/${ferret.pid}/cmdline`, 'utf8'),
    (cmdline) => cmdline.includes('--listen-addr='),
    { what: "the stand-in's command line" },
  );
});
afterAll(() => {
  ferret.kill('SIGKILL');
  rmSync(runDir, { recursive: true, force: true });
});

describe.runIf(process.platform === 'linux')('the local FerretDB', () => {
  it("is found from the script's pid file when the store URL names its port", () => {
    pidFile(ferret.pid!);
    const dir = join(runDir, 'ferretdb', 'data');
    expect(localFerretSqliteDir('mongodb://127.0.0.1:27999', runDir)).toBe(dir);
    expect(localFerretSqliteDir('mongodb://localhost:27999/?w=majority', runDir)).toBe(dir);
  });

  it('is not taken for a FerretDB elsewhere: another port, another host, several hosts, SRV', () => {
    pidFile(ferret.pid!);
    for (const url of [
      'mongodb://127.0.0.1:27017',
      'mongodb://mongodb:27999',
      'mongodb://127.0.0.1:27999,127.0.0.2:27999',
      'mongodb+srv://cluster.example.net',
    ])
      expect(localFerretSqliteDir(url, runDir), url).toBeUndefined();
  });

  it('is not taken when the script did not start it, or its process is gone', () => {
    rmSync(join(runDir, 'ferretdb', 'ferretdb.pid'), { force: true });
    expect(localFerretSqliteDir('mongodb://127.0.0.1:27999', runDir)).toBeUndefined();
    pidFile(process.pid); // alive, but not FerretDB
    expect(localFerretSqliteDir('mongodb://127.0.0.1:27999', runDir)).toBeUndefined();
    pidFile('not-a-pid');
    expect(localFerretSqliteDir('mongodb://127.0.0.1:27999', runDir)).toBeUndefined();
  });

  it('yields to an explicit MONGODB_FERRETDB_SQLITE_DIR', () => {
    const config = loadConfig({ ...KEYS, MONGODB_FERRETDB_SQLITE_DIR: '/srv/ferretdb' });
    expect(config.mongo.ferretSqliteDir).toBe('/srv/ferretdb');
  });
});
