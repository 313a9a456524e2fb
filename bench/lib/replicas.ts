/** API replicas for the benchmark: real processes, isolated topics/group/database per run. */
import { Kafka, logLevel } from 'kafkajs';
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
): Promise<Cluster> {
  // NODE_ENV=production as deployed (Dockerfile, compose): graphql-js skips its development-only checks.
  const env = isolatedEnv(label, {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    KAFKA_PARTITIONS: '6',
    LIMIT_SUBSCRIBER_MAX_PENDING: '100000',
    ...overrides,
  });
  // --profile: each replica writes a V8 CPU profile into profileDir when it stops.
  const nodeArgs = ['--expose-gc', ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])];
  const replicas = await Promise.all(
    Array.from({ length: count }, (_, i) => spawnReplica(env, firstPort + i, nodeArgs)),
  );
  const cluster: Cluster = {
    env,
    replicas,
    urls: replicas.map((r) => r.url),
    async forceGc() {
      for (const r of replicas) r.child.kill('SIGUSR2');
      await new Promise((r) => setTimeout(r, 300));
    },
    async metrics() {
      return Promise.all(
        replicas.map(async (r) => {
          const text = await (await fetch(r.url.replace('/graphql', '/metrics'))).text();
          const out: Record<string, number> = {};
          for (const line of text.split('\n')) {
            const m = /^iot_(\w+) ([\d.e+-]+)$/.exec(line);
            if (m) out[m[1]!] = Number(m[2]);
          }
          return out;
        }),
      );
    },
    async waitIdle(timeoutMs = 180_000) {
      const kafka = new Kafka({ clientId: 'bench-idle', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
      const admin = kafka.admin();
      await admin.connect();
      const topic = env.KAFKA_READINGS_TOPIC!;
      try {
        const deadline = Date.now() + timeoutMs;
        let quiet = 0;
        while (Date.now() < deadline && quiet < 2) {
          const [ends, committed, metrics] = await Promise.all([
            admin.fetchTopicOffsets(topic),
            // The history group (reading storage) is the one that lags; the alert path commits sooner.
            admin.fetchOffsets({ groupId: `${env.KAFKA_GROUP_ID!}.history`, topics: [topic] }),
            cluster.metrics(),
          ]);
          const done = new Map(committed[0]!.partitions.map((p) => [p.partition, Number(p.offset)]));
          const lag = ends.reduce(
            (sum, p) => sum + Math.max(0, Number(p.high) - Math.max(0, done.get(p.partition) ?? 0)),
            0,
          );
          const pending = metrics.reduce((sum, m) => sum + (m.readings_pending ?? 0), 0);
          quiet = lag === 0 && pending === 0 ? quiet + 1 : 0;
          await new Promise((r) => setTimeout(r, 500));
        }
      } finally {
        await admin.disconnect();
      }
    },
    async stop() {
      await Promise.all(replicas.map((r) => r.stop('SIGTERM')));
    },
  };
  return cluster;
}
