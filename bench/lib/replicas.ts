/** API replicas for the benchmark: real processes, isolated topics/group/database per run. */
import { alertsCaughtUp, historyCaughtUp } from '../../test/support/consumerLag.js';
import { isolatedEnv } from '../../test/support/env.js';
import { spawnReplica, type ReplicaProcess } from '../../test/support/pipeline.js';

export interface Cluster {
  env: Record<string, string>;
  replicas: ReplicaProcess[];
  urls: string[];
  metrics(): Promise<Record<string, number>[]>;
  /** Runs a full garbage collection in every replica (they start with --expose-gc; see src/main.ts). */
  forceGc(): Promise<void>;
  /** Waits until the replicas have stored everything produced so far (scenarios must not overlap). */
  waitIdle(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startCluster(
  label: string,
  count: number,
  overrides: Record<string, string> = {},
  firstPort = 4501,
  profileDir?: string,
  /**
   * Processes that join only the history group (KAFKA_CONSUMERS=history), besides the `count`
   * replicas, which then run only the alert path. Not among `replicas`: clients do not use them.
   */
  historyWorkers = 0,
): Promise<Cluster> {
  // NODE_ENV=production as deployed (Dockerfile, compose): graphql-js skips its development-only checks.
  const env = isolatedEnv(label, {
    NODE_ENV: 'production',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn', // info: with TEST_REPLICA_LOG_DIR, to read what the replicas did
    KAFKA_PARTITIONS: '6',
    LIMIT_SUBSCRIBER_MAX_PENDING: '100000',
    ...(historyWorkers > 0 ? { KAFKA_CONSUMERS: 'alerts' } : {}),
    ...overrides,
  });
  // The bench measures the product's default history interval, not the tests' shorter one.
  if (!('HISTORY_WRITE_INTERVAL' in overrides)) delete env.HISTORY_WRITE_INTERVAL;
  // --profile: each replica writes a V8 CPU profile into profileDir when it stops.
  const nodeArgs = ['--expose-gc', ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])];
  const replicas = await Promise.all(
    Array.from({ length: count }, (_, i) => spawnReplica(env, firstPort + i, nodeArgs)),
  );
  const workers = await Promise.all(
    Array.from({ length: historyWorkers }, (_, i) =>
      spawnReplica({ ...env, KAFKA_CONSUMERS: 'history' }, firstPort + count + i, nodeArgs),
    ),
  );
  const cluster: Cluster = {
    env,
    replicas,
    urls: replicas.map((r) => r.url),
    async forceGc() {
      // Waits until every replica has run it (its forced_gcs count moved): a compacting collection
      // of a large heap takes longer than any fixed wait would allow for.
      const counts = async (): Promise<number[]> => (await cluster.metrics()).map((m) => m.process_forced_gcs ?? 0);
      const before = await counts();
      for (const r of replicas) r.child.kill('SIGUSR2');
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        if ((await counts()).every((n, i) => n > before[i]!)) return;
      }
      throw new Error('a replica did not run the forced collection within 30 s');
    },
    async metrics() {
      return Promise.all(
        replicas.map(async (r) => {
          const text = await (await fetch(r.url.replace('/graphql', '/metrics'))).text();
          const out: Record<string, number> = {};
          for (const line of text.split('\n')) {
            // Labelled series keep their labels in the key: alert_stage_seconds_sum{stage="store"}.
            const m = /^iot_(\w+(?:\{[^}]*\})?) ([\d.e+-]+)$/.exec(line);
            if (m) out[m[1]!] = Number(m[2]);
          }
          return out;
        }),
      );
    },
    async waitIdle(timeoutMs = 180_000) {
      // Both groups: reading storage, and the alert path (a replica that fell behind delivering, an
      // overloaded step, still judges and publishes that step's readings for a while after it).
      const deadline = Date.now() + timeoutMs;
      await Promise.all([historyCaughtUp(env, timeoutMs), alertsCaughtUp(env, timeoutMs)]).catch((err: Error) =>
        console.error(`  not idle: ${err.message}`),
      );
      while (Date.now() < deadline) {
        const pending = (await cluster.metrics()).reduce((sum, m) => sum + (m.readings_pending ?? 0), 0);
        if (pending === 0) return;
        await new Promise((r) => setTimeout(r, 500));
      }
    },
    async stop() {
      await Promise.all([...replicas, ...workers].map((r) => r.stop('SIGTERM')));
    },
  };
  return cluster;
}
