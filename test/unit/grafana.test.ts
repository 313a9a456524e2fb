/**
 * Grafana cannot run here, so its provisioning is checked offline: every file parses, every panel
 * and variable names a provisioned datasource, every query the sensor dashboard sends to the API
 * is a valid operation of schema.graphql, whose variables are all given and whose row and column
 * selectors name fields the response has, and every metric a Prometheus panel reads is one the
 * API's /metrics exposes (its registry, rendered as a scrape would).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildSchema,
  getNamedType,
  isObjectType,
  Kind,
  parse,
  validate,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createMetrics } from '../../src/observability/metrics.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const provisioning = join(root, 'deploy/grafana/provisioning');
const schema: GraphQLSchema = buildSchema(readFileSync(join(root, 'schema.graphql'), 'utf8'));

interface Target {
  refId: string;
  expr?: string;
  datasource?: { uid: string };
  type?: string;
  url_options?: { body_graphql_query?: string; body_graphql_variables?: string };
  root_selector?: string;
  columns?: { selector: string }[];
}
interface Panel {
  title: string;
  datasource?: { uid: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating?: { list: { name: string; datasource?: { uid: string }; query?: { infinityQuery?: Target } }[] };
}

const dashboards: Dashboard[] = readdirSync(join(provisioning, 'dashboards'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(provisioning, 'dashboards', f), 'utf8')) as Dashboard);
const datasources = readdirSync(join(provisioning, 'datasources')).flatMap(
  (f) =>
    (
      parseYaml(readFileSync(join(provisioning, 'datasources', f), 'utf8')) as {
        datasources: { uid: string; type: string }[];
      }
    ).datasources,
);

/** Grafana's macros as it would expand them. */
const expand = (text: string): string =>
  text
    .replace(/\$\{__from:date:iso\}/g, '2026-11-28T10:00:00.000Z')
    .replace(/\$\{__to:date:iso\}/g, '2026-11-28T11:00:00.000Z')
    .replace(/\$\{sensor\}/g, 'sensor-1');

/** The type at a dotted path of a response (`data.incidents.nodes`), lists unwrapped. */
function typeAt(start: GraphQLNamedType, path: readonly string[]): GraphQLNamedType {
  let type = start;
  for (const name of path) {
    if (!isObjectType(type)) throw new Error(`${type.name} has no field ${name}`);
    const field = type.getFields()[name];
    if (!field) throw new Error(`${type.name} has no field ${name}`);
    type = getNamedType(field.type);
  }
  return type;
}

const apiTargets = (d: Dashboard): { where: string; target: Target }[] => [
  ...d.panels.flatMap((p) => (p.targets ?? []).map((target) => ({ where: `${d.title} / ${p.title}`, target }))),
  ...(d.templating?.list ?? []).flatMap((v) =>
    v.query?.infinityQuery ? [{ where: `${d.title} / variable ${v.name}`, target: v.query.infinityQuery }] : [],
  ),
];

describe('Grafana provisioning', () => {
  it('provisions datasources with unique uids, and dashboards with unique uids', () => {
    expect(new Set(datasources.map((d) => d.uid)).size).toBe(datasources.length);
    expect(datasources.map((d) => d.type)).toEqual(
      expect.arrayContaining(['prometheus', 'yesoreyeram-infinity-datasource']),
    );
    expect(new Set(dashboards.map((d) => d.uid)).size).toBe(dashboards.length);
    expect(dashboards.map((d) => d.uid)).toEqual(expect.arrayContaining(['iot-sensors']));
  });

  it('has every panel, query and variable name a provisioned datasource', () => {
    const uids = new Set(datasources.map((d) => d.uid));
    for (const d of dashboards) {
      for (const p of d.panels) if (p.datasource) expect(uids, `${d.title} / ${p.title}`).toContain(p.datasource.uid);
      for (const { where, target } of apiTargets(d))
        if (target.datasource) expect(uids, where).toContain(target.datasource.uid);
    }
  });

  it('sends only valid operations of schema.graphql, with their variables, reading fields that exist', () => {
    const queries = dashboards.flatMap(apiTargets).filter(({ target }) => target.type === 'graphql');
    expect(queries.length).toBeGreaterThanOrEqual(5);
    for (const { where, target } of queries) {
      const text = target.url_options?.body_graphql_query ?? '';
      const document = parse(text);
      expect(
        validate(schema, document).map((e) => e.message),
        where,
      ).toEqual([]);
      const operation = document.definitions.find(
        (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
      )!;
      const given = JSON.parse(expand(target.url_options?.body_graphql_variables ?? '{}')) as Record<string, unknown>;
      for (const v of operation.variableDefinitions ?? []) expect(given, where).toHaveProperty(v.variable.name.value);
      for (const value of Object.values(given)) expect(String(value), where).not.toContain('${');

      const [first, ...path] = (target.root_selector ?? '').split('.');
      expect(first, where).toBe('data');
      const rowType = typeAt(schema.getQueryType()!, path);
      for (const c of target.columns ?? []) expect(() => typeAt(rowType, c.selector.split('.')), where).not.toThrow();
    }
  });
});

/** Metric families of /metrics by name and type, from the `# TYPE` lines of a render. */
async function exposedFamilies(): Promise<Map<string, string>> {
  const text = await createMetrics().render();
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** The series names a PromQL expression reads (names of this app start with `iot_`). */
const seriesIn = (expr: string): string[] => [...new Set(expr.match(/\biot_[a-z0-9_]+/g) ?? [])];

describe('Prometheus panels', () => {
  const pipeline = dashboards.find((d) => d.uid === 'iot-pipeline')!;
  const prometheusTargets = dashboards.flatMap((d) =>
    d.panels
      .filter((p) => p.datasource?.uid === 'prometheus')
      .flatMap((p) => (p.targets ?? []).map((t) => ({ where: `${d.title} / ${p.title}`, expr: t.expr ?? '' }))),
  );

  it('read only metrics the API exposes, histograms through their _bucket, _sum or _count series', async () => {
    const families = await exposedFamilies();
    expect(prometheusTargets.length).toBeGreaterThanOrEqual(10);
    for (const { where, expr } of prometheusTargets) {
      const series = seriesIn(expr);
      expect(series, `${where}: ${expr}`).not.toEqual([]);
      for (const name of series) {
        const histogram = /^(.+)_(bucket|sum|count)$/.exec(name);
        const known =
          (families.has(name) && families.get(name) !== 'histogram') ||
          (histogram !== null && families.get(histogram[1]!) === 'histogram');
        expect(known, `${where} reads ${name}, which /metrics does not expose`).toBe(true);
      }
    }
  });

  it('show consumer lag per group and partition, taking the max of what every replica reports', () => {
    const lag = prometheusTargets.filter((t) => seriesIn(t.expr).includes('iot_consumer_lag_messages'));
    expect(lag.map((t) => t.where)).toEqual([`${pipeline.title} / Consumer lag (messages) by group and partition`]);
    expect(lag[0]!.expr.replace(/\s+/g, ' ')).toMatch(/^max by \(group, partition\) \(iot_consumer_lag_messages\)$/);
  });

  it('show alert delivery latency by subscription kind, and latency to publish, as p50 and p99', () => {
    const quantiles = (series: string, by: string) =>
      prometheusTargets
        .filter((t) => seriesIn(t.expr).includes(series))
        .map(
          (t) =>
            new RegExp(`^histogram_quantile\\((0\\.\\d+), sum by \\(${by}\\) \\(rate\\(${series}\\[`).exec(t.expr)?.[1],
        )
        .sort();
    expect(quantiles('iot_alert_delivery_seconds_bucket', 'kind, le')).toEqual(['0.5', '0.99']);
    expect(quantiles('iot_alert_latency_seconds_bucket', 'le')).toEqual(['0.5', '0.99']);
  });
});
