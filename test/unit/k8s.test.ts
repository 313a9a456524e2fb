/**
 * The Kubernetes manifests (deploy/k8s): every overlay, as kustomize renders it, decodes strictly
 * into the Kubernetes API types and keeps the project's rules (deploy/k8s/validate, run here, built
 * on first use); the environment each Deployment gives the replica is one src/config.ts accepts; and
 * the check fails when a manifest is broken in the ways it guards against.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KNOWN_VARIABLES, loadConfig } from '../../src/config.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { k8sDir, validate, validatorBinary, type Outcome } from '../support/k8sValidator.js';

let binary: string;
let outcome: Outcome;
const copies: string[] = [];
const known = new Set<string>(KNOWN_VARIABLES);

beforeAll(async () => {
  // A fresh clone downloads the Go modules and compiles them, once: about a minute on two idle cores,
  // several on a machine busy with other builds.
  binary = (await validatorBinary()).path;
  outcome = await validate(binary);
}, 900_000);

afterAll(async () => {
  await Promise.all(copies.map((dir) => rm(dir, { recursive: true, force: true })));
});

const deployments = (o: Outcome = outcome) =>
  o.reports.flatMap((r) => r.deployments.map((d) => ({ overlay: r.overlay, ...d })));

/** What src/config.ts says of an environment: variables it does not declare, then its own problems. */
function configProblems(env: Record<string, string>): string[] {
  const unknown = Object.keys(env).filter((k) => !known.has(k));
  if (unknown.length > 0) return unknown.map((k) => `${k}: not declared by src/config.ts`);
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    return (err as { problems?: string[] }).problems ?? [String(err)];
  }
}

describe('the overlays under deploy/k8s', () => {
  it('are staging and production, and each renders and passes strict decoding and every rule', () => {
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stderr).toMatch(/^production: \d+ objects, valid$/m);
    expect(outcome.stderr).toMatch(/^staging: \d+ objects, valid$/m);
    expect(outcome.reports.map((r) => r.overlay)).toEqual(['production', 'staging']);
    for (const r of outcome.reports) expect(r.problems, r.overlay).toEqual([]);
  });

  it('ship a Deployment, Service, disruption budget, autoscaler and default-deny policy each', () => {
    for (const r of outcome.reports) {
      for (const kind of ['Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'ConfigMap']) {
        expect(
          r.objects.some((o) => o.startsWith(`${kind}/`)),
          `${r.overlay}: ${kind}`,
        ).toBe(true);
      }
      expect(r.objects, r.overlay).toContain(`NetworkPolicy/${r.objects[0]!.split('/')[1]}/default-deny`);
      expect(r.externalSecrets, r.overlay).toEqual(['iot-api-secrets']);
    }
  });

  it('give each replica only variables the configuration declares, with values it accepts', () => {
    expect(deployments().length).toBeGreaterThan(0);
    for (const d of deployments()) {
      const where = `${d.overlay}/${d.deployment}`;
      expect(configProblems(d.env), where).toEqual([]);
      const config = loadConfig(d.env);
      expect(config.nodeEnv, where).toBe('production');
      expect(config.security.graphiql || config.security.introspection, `${where}: GraphiQL or introspection`).toBe(
        false,
      );
      expect(config.http.host, where).toBe('0.0.0.0');
    }
  });

  it('scale on pod metrics the replica exports, as gauges', async () => {
    const exposition = await createMetrics().render();
    const used = [...new Set(outcome.reports.flatMap((r) => r.podMetrics))];
    expect(used).toEqual(['iot_websocket_connections']);
    for (const name of used) expect(exposition).toMatch(new RegExp(`^# TYPE ${name} gauge$`, 'm'));
  });

  it('split production into client-facing replicas and one Deployment per consumer group', () => {
    const roles = Object.fromEntries(
      deployments()
        .filter((d) => d.overlay === 'production')
        .map((d) => [d.deployment, loadConfig(d.env).kafka.consumers]),
    );
    expect(roles).toEqual({
      'iot-api': { alerts: false, history: false },
      'iot-api-alerts': { alerts: true, history: false },
      'iot-api-history': { alerts: false, history: true },
    });
    const staging = deployments().filter((d) => d.overlay === 'staging');
    expect(staging.map((d) => [d.deployment, loadConfig(d.env).kafka.consumers])).toEqual([
      ['iot-api', { alerts: true, history: true }],
    ]);
  });
});

/** A copy of deploy/k8s with one file changed; the change must apply, or the case proves nothing. */
async function brokenCopy(file: string, from: string | RegExp, to: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'k8s-'));
  copies.push(dir);
  await cp(k8sDir, dir, { recursive: true, filter: (src) => !src.includes('/validate') });
  const path = join(dir, file);
  const before = await readFile(path, 'utf8');
  const after = before.replace(from, to);
  expect(after, `${file} changed`).not.toBe(before);
  await writeFile(path, after);
  return dir;
}

describe('the manifests check fails', () => {
  it.each([
    {
      when: 'a field is misspelt (unknown to the API type)',
      file: 'replica/deployment.yaml',
      from: 'terminationGracePeriodSeconds: 30',
      to: 'terminationGracePeriodSecond: 30',
      says: /unknown field "spec\.template\.spec\.terminationGracePeriodSecond"/,
    },
    {
      when: 'a field has the wrong type',
      file: 'replica/deployment.yaml',
      from: 'memory: 512Mi',
      to: 'memory: lots',
      says: /quantities must match/,
    },
    {
      when: 'the readiness probe asks another path',
      file: 'replica/deployment.yaml',
      from: 'path: /readyz',
      to: 'path: /ready',
      says: /the readiness probe asks "\/ready", the replica answers it on \/readyz/,
    },
    {
      when: 'the liveness probe asks a port the replica does not listen on',
      file: 'replica/deployment.yaml',
      from: /(livenessProbe:\n\s+httpGet:\n\s+path: \/healthz\n\s+port:) http/,
      to: '$1 8080',
      says: /the liveness probe's port 8080 is not the replica's PORT 4000/,
    },
    {
      when: 'the grace period is shorter than preStop plus the shutdown deadline',
      file: 'replica/deployment.yaml',
      from: 'terminationGracePeriodSeconds: 30',
      to: 'terminationGracePeriodSeconds: 20',
      says: /terminationGracePeriodSeconds 20 s is less than preStop 5000 ms \+ SHUTDOWN_TIMEOUT_MS 15000 ms/,
    },
    {
      when: 'the container requests no memory',
      file: 'replica/deployment.yaml',
      from: /\n\s+memory: 512Mi/,
      to: '',
      says: /no memory request/,
    },
    {
      when: 'a variable is set twice in one container',
      file: 'replica/deployment.yaml',
      from: '          env:\n',
      to: '          env:\n            - name: REPLICA_ID\n              value: api-1\n',
      says: /REPLICA_ID is set twice/,
    },
    {
      when: 'the client-facing replicas scale on CPU alone',
      file: 'roles/api/kustomization.yaml',
      from: /\npatches:[\s\S]*$/,
      to: '\n',
      says: /"iot-api": takes client traffic but does not scale on iot_websocket_connections/,
    },
    {
      when: 'their connections target is not below the limit at which they refuse connections',
      file: 'base/config.env',
      from: 'LIMIT_CONNECTIONS=10000',
      to: 'LIMIT_CONNECTIONS=8000',
      says: /iot_websocket_connections target 8k is not below LIMIT_CONNECTIONS 8000/,
    },
    {
      when: 'the replicas limit sockets per address, which behind the proxy is the proxy',
      file: 'base/config.env',
      from: /\nLIMIT_CONNECTIONS_PER_ADDRESS=10000/,
      to: '',
      says: /LIMIT_CONNECTIONS_PER_ADDRESS \(""\) is below LIMIT_CONNECTIONS 10000/,
    },
    {
      when: 'the egress policy forgets MongoDB',
      file: 'base/networkpolicies.yaml',
      from: 'port: 27017',
      to: 'port: 27018',
      says: /no NetworkPolicy lets it reach MONGODB_URL on TCP port 27017/,
    },
    {
      when: "the Service's selector picks no replica",
      file: 'base/service.yaml',
      from: 'app.kubernetes.io/component: api',
      to: 'app.kubernetes.io/component: web',
      says: /Service "iot-api": its selector picks no Deployment's pods/,
    },
    {
      when: 'the replicas of one consumer group may grow past its partitions',
      file: 'overlays/production/kustomization.yaml',
      from: 'KAFKA_PARTITIONS=48',
      to: 'KAFKA_PARTITIONS=12',
      says: /"iot-api-history": maxReplicas 20 above KAFKA_PARTITIONS 12 for replicas of the history group alone/,
    },
    {
      when: "an operator's resource is rendered, which no API type here describes",
      file: 'overlays/staging/kustomization.yaml',
      from: 'resources:\n  - ../../base',
      to: 'resources:\n  - ../../base\n  - kafka.yaml',
      says: /kafka\.strimzi\.io\/v1beta2 Kafka is not a kind this project ships/,
    },
  ])('when $when', async ({ file, from, to, says }) => {
    const tree = await brokenCopy(file, from, to);
    await writeFile(
      join(tree, 'overlays/staging/kafka.yaml'),
      'apiVersion: kafka.strimzi.io/v1beta2\nkind: Kafka\nmetadata:\n  name: iot-kafka\nspec: {}\n',
    );
    const broken = await validate(binary, tree);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(says);
  });
});

describe('the configuration check of the rendered environments fails', () => {
  it('when the ConfigMap sets a variable src/config.ts does not declare', async () => {
    const tree = await brokenCopy(
      'base/config.env',
      'KAFKA_PARTITIONS=12',
      'KAFKA_PARTITIONS=12\nKAFKA_PARTITION_COUNT=12',
    );
    const rendered = await validate(binary, tree);
    expect(rendered.code).toBe(0);
    const staging = deployments(rendered).find((d) => d.overlay === 'staging')!;
    expect(configProblems(staging.env)).toEqual(['KAFKA_PARTITION_COUNT: not declared by src/config.ts']);
  });

  it('when a value is one the configuration refuses', async () => {
    const tree = await brokenCopy('base/config.env', 'KAFKA_CONSUMERS=all', 'KAFKA_CONSUMERS=some');
    const staging = deployments(await validate(binary, tree)).find((d) => d.overlay === 'staging')!;
    expect(configProblems(staging.env)).toEqual([expect.stringContaining('KAFKA_CONSUMERS')]);
  });
});
