/**
 * `eval "$(scripts/services.sh env)"; npm start` works: the script prints only variables the API
 * understands (its configuration refuses unknown KAFKA_/MONGODB_/REDIS_ ones), and an app started
 * from them is ready and answers history queries through the FerretDB indexes it names. Without
 * them, the FerretDB directory is found all the same (src/localFerretDb.ts).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ReadingHistoryDocument } from '../../client/index.js';
import { loadConfig } from '../../src/config.js';
import { isolatedEnv } from '../support/env.js';
import { startReplica } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

async function servicesEnv(): Promise<Record<string, string>> {
  const { stdout } = await promisify(execFile)('bash', ['scripts/services.sh', 'env'], { cwd: root });
  const vars: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) vars[m[1]!] = m[2]!;
  }
  return vars;
}

describe('scripts/services.sh env', () => {
  it('prints only variables the configuration accepts', async () => {
    const vars = await servicesEnv();
    expect(Object.keys(vars).sort()).toEqual([
      'KAFKA_BROKERS',
      'MONGODB_FERRETDB_SQLITE_DIR',
      'MONGODB_URL',
      'REDIS_URL',
    ]);
    const config = loadConfig({ ...vars, AUTH_ANONYMOUS_ROLE: 'viewer' });
    expect(config.mongo.url).toBe(vars.MONGODB_URL);
    expect(config.mongo.ferretSqliteDir).toBe(vars.MONGODB_FERRETDB_SQLITE_DIR);
  });

  // A bare start looks in the checkout's own .services/, not in one SERVICES_RUN_DIR moved elsewhere.
  it.skipIf(process.env.SERVICES_RUN_DIR !== undefined)(
    'is not needed for the store indexes: a bare start finds the directory the script names',
    async () => {
      const { MONGODB_FERRETDB_SQLITE_DIR: dir } = await servicesEnv();
      // `npm start` with no variable at all (a credential aside): the local default URL is this FerretDB.
      expect(loadConfig({ AUTH_ANONYMOUS_ROLE: 'viewer' }).mongo.ferretSqliteDir).toBe(dir);
    },
  );

  it('starts an app that is ready and serves history', async () => {
    const replica = await startReplica({ ...isolatedEnv('svcenv'), ...(await servicesEnv()) });
    try {
      await eventually(
        () => replica.app.readiness().ready,
        (ready) => ready,
        { what: 'ready' },
      );
      const page = await replica.client.request(ReadingHistoryDocument, { sensorId: 'nobody-here', first: 5 });
      expect(page.readings.edges).toEqual([]);
    } finally {
      await replica.stop();
    }
  });
});
