/** API replicas for the benchmark: real processes, isolated topics/group/database per run. */
import { isolatedEnv } from '../../test/support/env.js';
import { spawnReplica, type ReplicaProcess } from '../../test/support/pipeline.js';

export interface Cluster {
  env: Record<string, string>;
  replicas: ReplicaProcess[];
  urls: string[];
  metrics(): Promise<Record<string, number>[]>;
  stop(): Promise<void>;
}

export async function startCluster(label: string, count: number, overrides: Record<string, string> = {}, firstPort = 4501): Promise<Cluster> {
  const env = isolatedEnv(label, { LOG_LEVEL: 'warn', KAFKA_PARTITIONS: '6', LIMIT_SUBSCRIBER_MAX_PENDING: '100000', ...overrides });
  const replicas = await Promise.all(Array.from({ length: count }, (_, i) => spawnReplica(env, firstPort + i)));
  return {
    env,
    replicas,
    urls: replicas.map((r) => r.url),
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
    async stop() {
      await Promise.all(replicas.map((r) => r.stop('SIGTERM')));
    },
  };
}
