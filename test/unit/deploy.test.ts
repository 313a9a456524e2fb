/**
 * What ships agrees with the code and with itself: the Dockerfile and docker-compose.yml set only
 * variables the configuration declares, with values it accepts; every long-running service has a
 * health check that the services after it wait for; MongoDB is a replica set the API connects to as
 * one; and the image, CI and the type definitions are on one Node major, the one `engines` asks for.
 * test/integration/image.test.ts starts what the Dockerfile builds.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { KNOWN_VARIABLES, loadConfig } from '../../src/config.js';
import { apiServices, readCompose, serviceEnvironment } from '../support/compose.js';
import { envOf, parseDockerfile } from '../support/dockerfile.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string): string => readFileSync(`${root}/${path}`, 'utf8');
const stages = parseDockerfile(read('Dockerfile'));
const compose = readCompose();
const shell = { ADMIN_KEY: 'a'.repeat(32), GRAFANA_API_KEY: 'v'.repeat(32) };
const known = new Set<string>(KNOWN_VARIABLES);
interface CollectorConfig {
  receivers: Record<string, { protocols: Record<string, { endpoint: string } | undefined> } | undefined>;
  processors: Record<string, unknown>;
  exporters: Record<string, { endpoint: string } | undefined>;
  service: {
    pipelines: Record<string, { receivers: string[]; processors?: string[]; exporters: string[] } | undefined>;
  };
}
const seconds = (d: string): number => {
  const m = /^(\d+)(ms|s|m)$/.exec(d);
  if (!m) throw new Error(`not a compose duration: ${d}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60 }[m[2] as 'ms' | 's' | 'm'];
};

describe('the image and the API replicas in docker-compose.yml', () => {
  const apis = apiServices(compose);

  it('are two replicas, differing only by REPLICA_ID', () => {
    expect(apis.map(([name]) => name)).toEqual(['api-1', 'api-2']);
    const [a, b] = apis.map(([, s]) => serviceEnvironment(s, shell));
    expect({ ...a, REPLICA_ID: undefined }).toEqual({ ...b, REPLICA_ID: undefined });
    expect(a!.REPLICA_ID).not.toBe(b!.REPLICA_ID);
  });

  it('set only variables the configuration declares, with values it accepts', () => {
    const imageEnv = Object.assign(
      {},
      ...stages
        .at(-1)!
        .instructions.filter((i) => i.keyword === 'ENV')
        .map((i) => envOf(i.args)),
    ) as Record<string, string>;
    for (const [name, service] of apis) {
      const env = { ...imageEnv, ...serviceEnvironment(service, shell) };
      expect(
        Object.keys(env).filter((k) => !known.has(k)),
        name,
      ).toEqual([]);
      const config = loadConfig(env);
      expect(config.nodeEnv).toBe('production');
      expect(config.security.graphiql || config.security.introspection, 'GraphiQL or introspection on').toBe(false);
    }
  });

  it('are given longer to stop than their own shutdown deadline', () => {
    for (const [name, service] of apis) {
      const deadlineMs = loadConfig(serviceEnvironment(service, shell)).shutdownTimeoutMs;
      const grace = (service as { stop_grace_period?: string }).stop_grace_period ?? '10s';
      expect(seconds(grace) * 1000, name).toBeGreaterThan(deadlineMs);
    }
  });

  it('start once Kafka, MongoDB and Redis are healthy, and are healthy when ready', () => {
    for (const [name, service] of apis) {
      expect(service.depends_on, name).toEqual({
        kafka: { condition: 'service_healthy' },
        mongodb: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
      });
      expect(JSON.stringify(service.healthcheck?.test), name).toContain('/readyz');
    }
    const healthcheck = stages.at(-1)!.instructions.find((i) => i.keyword === 'HEALTHCHECK');
    expect(healthcheck?.args).toContain('/readyz');
  });

  it('connect to MongoDB as the replica set it runs, with majority writes', () => {
    const mongod = compose.services.mongodb!;
    const command = Array.isArray(mongod.command) ? mongod.command : (mongod.command ?? '').split(/\s+/);
    const set = command[command.indexOf('--replSet') + 1];
    expect(command).toContain('--replSet');
    expect(JSON.stringify(mongod.healthcheck?.test)).toContain(`_id: '${set}'`);
    for (const [name, service] of apis) {
      const url = new URL(serviceEnvironment(service, shell).MONGODB_URL!);
      expect(url.searchParams.get('replicaSet'), name).toBe(set);
      expect(url.searchParams.get('w'), name).toBe('majority');
    }
  });
});

describe('the services of docker-compose.yml', () => {
  it('each have a health check, but for jobs that end (restart: on-failure)', () => {
    const without = Object.entries(compose.services)
      .filter(([, s]) => s.restart !== 'on-failure' && (s.healthcheck?.test === undefined || s.healthcheck.disable))
      .map(([name]) => name);
    expect(without).toEqual([]);
  });

  it('wait for the services they depend on to be healthy', () => {
    const waits = Object.entries(compose.services).flatMap(([name, s]) =>
      Array.isArray(s.depends_on)
        ? s.depends_on.map((d) => `${name} -> ${d}: started`)
        : Object.entries(s.depends_on ?? {})
            .filter(([, c]) => c.condition !== 'service_healthy')
            .map(([d, c]) => `${name} -> ${d}: ${c.condition}`),
    );
    expect(waits).toEqual([]);
  });
});

describe('tracing in docker-compose.yml', () => {
  const collector = compose.services['otel-collector']!;
  const jaeger = compose.services.jaeger!;
  /** The collector's configuration, as the collector reads it (the file mounted where its command points). */
  const config = (() => {
    const command = Array.isArray(collector.command) ? collector.command : [collector.command ?? ''];
    const path = command.find((c) => c.startsWith('--config='))!.slice('--config='.length);
    const mount = (collector as { volumes?: string[] }).volumes!.find((v) => v.split(':')[1] === path);
    expect(mount, `a file mounted at ${path}`).toBeDefined();
    return parse(read(mount!.split(':')[0]!.replace(/^\.\//, ''))) as CollectorConfig;
  })();

  it('sends the replicas’ spans to the collector, on the port its OTLP/HTTP receiver listens on', () => {
    const receiver = new URL(`http://${config.receivers.otlp!.protocols.http!.endpoint}`);
    for (const [name, service] of apiServices(compose)) {
      const endpoint = loadConfig(serviceEnvironment(service, shell)).tracing.tracesUrl;
      expect(endpoint, name).toBeDefined();
      const url = new URL(endpoint!);
      expect(url.hostname, name).toBe('otel-collector');
      expect(url.port, name).toBe(receiver.port);
      expect(url.pathname, name).toBe('/v1/traces');
    }
  });

  it('forwards the traces pipeline from that receiver to Jaeger, which takes OTLP', () => {
    const traces = config.service.pipelines.traces!;
    expect(traces.receivers).toEqual(['otlp']);
    expect(traces.exporters).toHaveLength(1);
    const exporter = config.exporters[traces.exporters[0]!]!;
    const [host, port] = exporter.endpoint.split(':');
    expect(host).toBe('jaeger');
    // Jaeger's OTLP/gRPC port, with its OTLP receiver on.
    expect(port).toBe('4317');
    expect(serviceEnvironment(jaeger, shell).COLLECTOR_OTLP_ENABLED).toBe('true');
    for (const processor of traces.processors ?? []) expect(config.processors, processor).toHaveProperty(processor);
  });
});

describe('one Node major', () => {
  const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
  const major = Number(/^>=\s*(\d+)/.exec(engines)?.[1]);

  it('in the Dockerfile, every stage, as engines asks for', () => {
    expect(major).toBeGreaterThanOrEqual(24);
    for (const stage of stages) expect(stage.base).toMatch(new RegExp(`^node:${major}(\\.[\\d.]+)?-bookworm-slim$`));
  });

  it('in CI (.ci/run takes it from scripts/use-node.sh) and in @types/node', () => {
    expect(read('.ci/run')).toMatch(/^source scripts\/use-node\.sh$/m);
    expect(read('scripts/use-node.sh')).toContain(`NODE_MAJOR:-${major}}`);
    const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { version: string }> };
    expect(lock.packages['node_modules/@types/node']!.version).toMatch(new RegExp(`^${major}\\.`));
  });

  it.runIf(process.env.CI === 'true')('is the one CI runs the tests on', () => {
    expect(process.versions.node.split('.')[0]).toBe(String(major));
  });
});
