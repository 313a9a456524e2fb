/**
 * The production image starts and serves, proven without Docker: the Dockerfile's last stage is
 * staged from its own lines (test/support/dockerfile.ts: the build stage's `npm run build`, exactly
 * its COPY lines, `npm ci --omit=dev`), then its CMD runs with its ENV and the environment
 * docker-compose.yml gives the API replicas, against the local services.
 *
 * What differs from a container, and why:
 * - the compose host names (kafka, mongodb, redis) are the local services on 127.0.0.1, and the
 *   replica listens on 127.0.0.1 (nothing here listens elsewhere) on a free port;
 * - the replica-set parameter is dropped from MONGODB_URL: FerretDB is no replica set (majority
 *   writes are kept, and FerretDB accepts them);
 * - topic, group, database and channel names are this file's own, as the services are shared;
 * - the build stage's `npm ci` is the checkout's install of the same lockfile, and `npm cache clean`
 *   is skipped (here it would be the machine's cache); `USER node` is not taken on;
 * - node is the one running the tests (CI's is the image's major: test/unit/deploy.test.ts).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertsCursorDocument, createPipelineClient, IngestReadingsDocument } from '../../client/index.js';
import { collectAlerts } from '../support/alertCollector.js';
import { apiServices, readCompose, serviceEnvironment } from '../support/compose.js';
import { parseDockerfile, stageImage, type StagedImage } from '../support/dockerfile.js';
import { uniqueName } from '../support/env.js';
import { freePort } from '../support/ports.js';
import { eventually } from '../support/wait.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const ADMIN_KEY = randomBytes(16).toString('hex');
const VIEWER_KEY = randomBytes(16).toString('hex');

/** The compose environment of an API replica, pointed at this machine's services and names. */
function onThisMachine(env: Record<string, string>, port: number): Record<string, string> {
  const local = (hostPort: string): string => hostPort.replace(/^(kafka|mongodb|redis)(?=:|$)/, '127.0.0.1');
  const mongo = new URL(env.MONGODB_URL!);
  mongo.hostname = '127.0.0.1';
  mongo.searchParams.delete('replicaSet');
  const redis = new URL(env.REDIS_URL!);
  redis.hostname = '127.0.0.1';
  const id = uniqueName('image');
  return {
    ...env,
    HOST: '127.0.0.1',
    PORT: String(port),
    KAFKA_BROKERS: env.KAFKA_BROKERS!.split(',').map(local).join(','),
    MONGODB_URL: mongo.toString(),
    REDIS_URL: redis.toString(),
    KAFKA_READINGS_TOPIC: `${id}.readings`,
    KAFKA_DLQ_TOPIC: `${id}.readings.dlq`,
    KAFKA_GROUP_ID: `${id}-group`,
    MONGODB_DATABASE: id.replace(/[^a-zA-Z0-9_-]/g, '_'),
    REDIS_CHANNEL_PREFIX: id,
  };
}

/** What the staging does for each RUN step; false for one it cannot stand in for. */
async function runStep(step: string, cwd: string, stage: { final: boolean }): Promise<string | false> {
  const words = step.split(/\s+/);
  if (words[0] !== 'npm') return false;
  if (words[1] === 'ci' && !stage.final) {
    // The build stage installs the same lockfile the checkout installed: use that install.
    expect(readFileSync(join(cwd, 'package-lock.json'), 'utf8')).toBe(
      readFileSync(join(root, 'package-lock.json'), 'utf8'),
    );
    symlinkSync(join(root, 'node_modules'), join(cwd, 'node_modules'), 'dir');
    return "the checkout's node_modules";
  }
  if (words[1] === 'ci') {
    // From the machine's npm cache when it has the packages (CI's `npm ci` just filled it).
    await run('npm', [...words.slice(1), '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd,
      timeout: 300_000,
    });
    return 'ran';
  }
  if (words[1] === 'run') {
    await run('npm', words.slice(1), { cwd, timeout: 300_000 });
    return 'ran';
  }
  if (words[1] === 'cache' && words[2] === 'clean') return 'skipped';
  return false;
}

let image: StagedImage;
let dir: string;
let env: Record<string, string>;
let replica: ChildProcess;
let output = '';
let base: string;
const timings: Record<string, number> = {};

beforeAll(async () => {
  const t0 = Date.now();
  dir = mkdtempSync(join(tmpdir(), 'iot-image-'));
  image = await stageImage({
    context: root,
    stages: parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8')),
    dir,
    runStep,
  });
  timings.stagedMs = Date.now() - t0;

  const [name, api] = apiServices(readCompose())[0]!;
  expect(name).toBeDefined();
  const composeEnv = serviceEnvironment(api, { ADMIN_KEY, GRAFANA_API_KEY: VIEWER_KEY });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // A container's environment: the image's ENV, then the service's; nothing from this process but PATH.
  env = { PATH: process.env.PATH!, ...image.env, ...onThisMachine(composeEnv, port) };
  const [command, ...args] = image.cmd;
  replica = spawn(command === 'node' ? process.execPath : command!, args, {
    cwd: image.workdir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d: Buffer): void => {
    output = (output + d.toString()).slice(-20_000);
  };
  replica.stdout!.on('data', keep);
  replica.stderr!.on('data', keep);
  const started = Date.now();
  await eventually(
    async () => {
      if (replica.exitCode !== null) throw new Error(`the image's CMD exited with ${replica.exitCode}:\n${output}`);
      return fetch(`${base}/readyz`).then(
        (r) => r.status,
        () => 0,
      );
    },
    (status) => status === 200,
    { timeoutMs: 90_000, intervalMs: 200, what: `/readyz of the staged image (output:\n${output})` },
  );
  timings.readyMs = Date.now() - started;
}, 300_000);

afterAll(async () => {
  if (replica && replica.exitCode === null && replica.signalCode === null) {
    replica.kill('SIGKILL');
    await once(replica, 'exit');
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.info(`image stage: staged in ${timings.stagedMs} ms, ready ${timings.readyMs} ms after its CMD`);
});

describe('the production image (Dockerfile, last stage, staged without Docker)', () => {
  it("starts with NODE_ENV=production and compose's environment, and /readyz answers 200", async () => {
    expect(env.NODE_ENV).toBe('production');
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it("answers its own HEALTHCHECK (on the replica's port)", async () => {
    const check = /\bCMD\s+(.*)$/.exec(image.healthcheck ?? '')?.[1];
    expect(check, 'the image has a HEALTHCHECK CMD').toBeDefined();
    expect(check).toContain(`:${image.env.PORT}/readyz`);
    await run('/bin/sh', ['-c', check!.replace(`:${image.env.PORT}/`, `:${env.PORT}/`)], {
      env: { PATH: process.env.PATH! },
      timeout: 10_000,
    });
  });

  it('serves the dashboard and its own files', async () => {
    const page = await fetch(`${base}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const script = await fetch(`${base}/dashboard/app.js`);
    expect(script.status).toBe(200);
    expect(await script.text()).toBe(readFileSync(join(root, 'public/dashboard/app.js'), 'utf8'));
  });

  it('needs a key, and with one answers a query and delivers an overheat alert over a subscription', async () => {
    const url = `${base}/graphql`;
    const anonymous = createPipelineClient(url, { retryAttempts: 0 });
    await expect(anonymous.request(AlertsCursorDocument, {})).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });

    const viewer = createPipelineClient(url, { retryAttempts: 0, credential: VIEWER_KEY });
    const admin = createPipelineClient(url, { retryAttempts: 0, credential: ADMIN_KEY });
    try {
      const { alertsCursor } = await viewer.request(AlertsCursorDocument, {});
      const subscriber = collectAlerts(viewer, { after: alertsCursor });
      const sensorId = uniqueName('image-hot');
      await admin.request(IngestReadingsDocument, {
        readings: [
          {
            sensorId,
            ts: new Date(Date.now() - 500).toISOString(),
            temperature: Number(env.ALERT_THRESHOLD_C) + 15,
            humidity: 20,
            location: { lat: 0, lon: 0 },
          },
        ],
      });
      const [alert] = await eventually(
        () => subscriber.alerts,
        (alerts) => alerts.length > 0,
        { what: 'the overheat alert over the subscription', timeoutMs: 30_000 },
      );
      expect(alert!.sensorId).toBe(sensorId);
      expect(subscriber.errors).toEqual([]);
      subscriber.stop();
    } finally {
      await Promise.all([viewer.dispose(), admin.dispose(), anonymous.dispose()]);
    }
  });

  it('has GraphiQL and introspection off', async () => {
    const page = await fetch(`${base}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-type')).not.toMatch(/text\/html/);
    const admin = createPipelineClient(`${base}/graphql`, { retryAttempts: 0, credential: ADMIN_KEY });
    const introspection = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
      body: JSON.stringify({ query: '{ __schema { queryType { name } } }' }),
    });
    const body = (await introspection.json()) as { data?: unknown; errors?: { message: string }[] };
    expect(body.data ?? undefined).toBeUndefined();
    expect(body.errors?.[0]?.message).toMatch(/introspection/i);
    await admin.dispose();
  });

  it('drains on SIGTERM within its shutdown deadline: subscribers get 1001, the process exits 0', async () => {
    const viewer = createPipelineClient(`${base}/graphql`, { retryAttempts: 0, credential: VIEWER_KEY });
    const { alertsCursor } = await viewer.request(AlertsCursorDocument, {});
    const subscriber = collectAlerts(viewer, { after: alertsCursor });
    // The subscription is running once the server holds it (its gauge counts it).
    await eventually(
      async () => (await (await fetch(`${base}/metrics`)).text()).match(/^iot_subscriptions (\d+)/m)?.[1],
      (n) => Number(n) > 0,
      { what: 'the subscription to start' },
    );
    const deadline = Number(env.SHUTDOWN_TIMEOUT_MS);
    const started = Date.now();
    const exited = once(replica, 'exit') as Promise<[number | null, string | null]>;
    replica.kill('SIGTERM');
    const [code] = await exited;
    const tookMs = Date.now() - started;
    expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });
    expect(tookMs).toBeLessThan(deadline);
    await eventually(
      () => subscriber.errors.length,
      (n) => n === 1,
      { what: 'the subscription to end' },
    );
    expect((subscriber.errors[0] as { code?: number }).code).toBe(1001);
    await viewer.dispose();
    console.info(`image stage: drained in ${tookMs} ms (deadline ${deadline} ms)`);
  });
});
