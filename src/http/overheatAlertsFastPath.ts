/**
 * A fast path for the one hot operation: `subscription { overheatAlerts(...) { ... } }`.
 *
 * graphql-js runs a full `execute` for every event of every subscriber. For a flat alert that is
 * most of the cost of fan-out, so when a subscription document is simple (one root field, plain
 * field selections, no fragments or directives) the selection is compiled once into a projector and
 * each delivery is a plain object build. Anything else takes the regular graphql-js path, which
 * stays the reference: tests run both and compare their output.
 */
import {
  GraphQLError,
  Kind,
  getArgumentValues,
  getVariableValues,
  subscribe as graphqlSubscribe,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { DeliveredAlert } from '../fanout/alertFeed.js';
import { overheatAlertsSubscribe } from '../resolvers/alert.resolver.js';
import type { GraphQLContext } from '../resolvers/services.js';

type Projector = (alert: DeliveredAlert) => Record<string, unknown>;

const LOCATION_FIELDS: Record<string, (l: { lat: number; lon: number }) => unknown> = {
  lat: (l) => l.lat,
  lon: (l) => l.lon,
  __typename: () => 'Location',
};

/** An alert's dates are shared by every subscriber's copy: format each once, not once per delivery. */
const isoCache = new WeakMap<Date, string>();
function iso(date: Date): string {
  let text = isoCache.get(date);
  if (text === undefined) {
    text = date.toISOString();
    isoCache.set(date, text);
  }
  return text;
}

const ALERT_FIELDS: Record<string, (a: DeliveredAlert) => unknown> = {
  id: (a) => a.id,
  sensorId: (a) => a.sensorId,
  temperature: (a) => a.temperature,
  threshold: (a) => a.threshold,
  ts: (a) => iso(a.ts),
  detectedAt: (a) => iso(a.detectedAt),
  cursor: (a) => a.cursor,
  __typename: () => 'OverheatAlert',
};

/** Plain fields only: no fragments, no directives. Returns undefined when the fast path does not apply. */
function plainFields(selectionSet: SelectionSetNode | undefined): FieldNode[] | undefined {
  if (!selectionSet) return undefined;
  const fields: FieldNode[] = [];
  for (const s of selectionSet.selections) {
    if (s.kind !== Kind.FIELD || (s.directives?.length ?? 0) > 0) return undefined;
    fields.push(s);
  }
  return fields;
}

function compileProjector(selectionSet: SelectionSetNode | undefined): Projector | undefined {
  const fields = plainFields(selectionSet);
  if (!fields) return undefined;
  const steps: ((a: DeliveredAlert, out: Record<string, unknown>) => void)[] = [];
  for (const f of fields) {
    const key = f.alias?.value ?? f.name.value;
    if (f.name.value === 'location') {
      const sub = plainFields(f.selectionSet);
      if (!sub || sub.some((x) => !(x.name.value in LOCATION_FIELDS))) return undefined;
      const parts = sub.map((x) => [x.alias?.value ?? x.name.value, LOCATION_FIELDS[x.name.value]!] as const);
      steps.push((a, out) => {
        const loc: Record<string, unknown> = {};
        for (const [k, get] of parts) loc[k] = get(a.location);
        out[key] = loc;
      });
      continue;
    }
    const get = ALERT_FIELDS[f.name.value];
    if (!get || f.selectionSet) return undefined;
    steps.push((a, out) => {
      out[key] = get(a);
    });
  }
  return (a) => {
    const out: Record<string, unknown> = {};
    for (const step of steps) step(a, out);
    return out;
  };
}

function findOperation(args: ExecutionArgs): OperationDefinitionNode | undefined {
  const ops = args.document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  if (args.document.definitions.length !== ops.length) return undefined; // fragments: regular path
  return args.operationName ? ops.find((o) => o.name?.value === args.operationName) : ops.length === 1 ? ops[0] : undefined;
}

/**
 * Maps the feed to execution results. Written by hand rather than as an async generator: a
 * generator's `return()` waits behind a pending `next()`, and a quiet feed's `next()` may never
 * settle, so closing the socket would never reach the feed (its Redis interest, queue and timers
 * would outlive the socket). Here `return()` goes straight to the source.
 */
function project(source: AsyncIterableIterator<DeliveredAlert>, key: string, projector: Projector): AsyncIterableIterator<ExecutionResult> {
  const results: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      const r = await source.next();
      return r.done ? { value: undefined, done: true } : { value: { data: { [key]: projector(r.value) } }, done: false };
    },
    async return() {
      await source.return?.();
      return { value: undefined, done: true };
    },
    async throw(err?: unknown) {
      await source.return?.();
      throw err;
    },
    [Symbol.asyncIterator]: () => results,
  };
  return results;
}

/** graphql-ws `subscribe`: the fast path when it applies, graphql-js otherwise. */
export function subscribeWithFastPath(args: ExecutionArgs): ReturnType<typeof graphqlSubscribe> | AsyncIterableIterator<ExecutionResult> | ExecutionResult {
  const operation = findOperation(args);
  const root = operation?.operation === 'subscription' ? plainFields(operation.selectionSet) : undefined;
  const field = root?.length === 1 && root[0]!.name.value === 'overheatAlerts' ? root[0]! : undefined;
  const projector = field ? compileProjector(field.selectionSet) : undefined;
  const fieldDef = args.schema.getSubscriptionType()?.getFields().overheatAlerts;
  if (!operation || !field || !projector || !fieldDef) return graphqlSubscribe(args);

  const variables = getVariableValues(args.schema, operation.variableDefinitions ?? [], args.variableValues ?? {});
  if (variables.errors) return { errors: variables.errors };
  try {
    const argValues = getArgumentValues(fieldDef, field, variables.coerced) as { sensorIds?: string[] | null; after?: string | null };
    const context = args.contextValue as GraphQLContext;
    const source = overheatAlertsSubscribe(context.services, context.budget)(argValues);
    return project(source as AsyncIterableIterator<DeliveredAlert>, field.alias?.value ?? field.name.value, projector);
  } catch (err) {
    if (err instanceof GraphQLError) return { errors: [err] };
    throw err;
  }
}
