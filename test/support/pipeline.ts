/** Starts real API replicas (in-process or as child processes) against the real local services. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAppWithParts, type App, type AppParts } from '../../src/app.js';
import { createLogger } from '../../src/logger.js';
import { createPipelineClient, type PipelineClient, type PipelineClientOptions } from '../../client/index.js';
import { configFrom } from './env.js';
import { freePort } from './ports.js';

export interface InProcessReplica {
  app: App;
  /** The replica's running parts, to look inside it. */
  parts: AppParts;
  client: PipelineClient;
  stop(): Promise<void>;
}

export async function startReplica(
  env: Record<string, string>,
  clientOptions: PipelineClientOptions = {},
): Promise<InProcessReplica> {
  const config = configFrom(env);
  const { app, parts } = await startAppWithParts(config, createLogger(config.logLevel));
  const client = createPipelineClient(app.url(), { retryAttempts: 0, ...clientOptions });
  return {
    app,
    parts,
    client,
    async stop() {
      await client.dispose();
      await app.stop('test finished');
    },
  };
}

export interface ReplicaProcess {
  url: string;
  port: number;
  /** REPLICA_ID of the process (`replica-<port>`). */
  replicaId: string;
  child: ChildProcess;
  client: PipelineClient;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** The end of what the process wrote (stdout and stderr, at most OUTPUT_KEPT characters). */
  recentOutput(): string;
}

/** Characters of a child replica's output kept for failure reports. */
const OUTPUT_KEPT = 256 * 1024;

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Runs `src/main.ts` as its own process, exactly as `npm start` does, and waits for /readyz. The
 * port comes from test/support/ports.ts unless the caller needs a given one (a restart in place).
 */
export async function spawnReplica(
  env: Record<string, string>,
  port?: number,
  nodeArgs: readonly string[] = [],
  clientOptions: PipelineClientOptions = {},
): Promise<ReplicaProcess> {
  port ??= await freePort();
  const replicaId = `replica-${port}`;
  // A process left over on this port would answer the readiness check below in the new one's place.
  const taken = await fetch(`http://127.0.0.1:${port}/readyz`).then(
    () => true,
    () => false,
  );
  if (taken) throw new Error(`port ${port} is already taken (a replica left over from an earlier run?)`);
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/main.ts'], {
    cwd: repoRoot,
    env: { ...process.env, ...env, PORT: String(port), REPLICA_ID: replicaId },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (d: Buffer): void => {
    output += d.toString();
    if (output.length > OUTPUT_KEPT * 2) output = output.slice(-OUTPUT_KEPT);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // TEST_REPLICA_LOG_DIR keeps each replica's log in a file, for diagnosing a failed run.
  const logDir = process.env.TEST_REPLICA_LOG_DIR;
  if (logDir) {
    mkdirSync(logDir, { recursive: true });
    const file = createWriteStream(join(logDir, `${replicaId}-${Date.now()}.log`));
    child.stdout?.pipe(file, { end: false });
    child.stderr?.pipe(file, { end: false });
    child.once('close', () => file.end());
  }
  const url = `http://127.0.0.1:${port}/graphql`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`replica on ${port} exited with ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`replica on ${port} not ready in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const client = createPipelineClient(url, { retryAttempts: 0, ...clientOptions });
  return {
    url,
    port,
    replicaId,
    child,
    client,
    recentOutput: () => output.slice(-OUTPUT_KEPT),
    async stop(signal = 'SIGTERM') {
      await client.dispose();
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit') as Promise<[number | null]>;
      child.kill(signal);
      const [code] = await exited;
      return code;
    },
  };
}
