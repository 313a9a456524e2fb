/**
 * A fast path for the one hot operation: `subscription { overheatAlerts(...) { ... } }`.
 *
 * graphql-js runs a full `execute` for every event of every subscriber. For a flat alert that is
 * most of the cost of fan-out, so when a subscription over a WebSocket is simple (one root field,
 * plain field selections, no fragments or directives) its selection is compiled into a JSON
 * template; each alert is serialized once per distinct selection (cached on the alert, which every
 * local subscriber shares), and each subscriber's `next` frame is that text with its own id and
 * cursor spliced in, written straight to the socket. No per-message promise, no graphql-ws await per
 * send: the socket's buffer holds the backlog, and the socket budget bounds it (close 4008). The
 * iterator handed to graphql-ws only reports the end (`complete`) or a failure (`error`), so the
 * protocol stays graphql-transport-ws. Anything else takes the regular graphql-js path, which stays
 * the reference: tests run both and compare their output.
 * stays graphql-transport-ws.
 */
import {
  GraphQLError,
  Kind,
  getNamedType,
  getNullableType,
  isLeafType,
  isListType,
  isObjectType,
  print,
  type GraphQLObjectType,
  OperationTypeNode,
  getArgumentValues,
  getVariableValues,
  subscribe as graphqlSubscribe,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { OverheatAlert } from '../domain/alert.js';
import type { AlertSink, DeliveredAlert } from '../fanout/alertFeed.js';
import { principalOf } from '../auth/policy.js';
import { overheatAlertsSubscribe } from '../resolvers/alert.resolver.js';
import { alertView } from '../schema/alert.type.js';
import type { GraphQLContext } from '../resolvers/services.js';

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

function findOperation(args: ExecutionArgs): OperationDefinitionNode | undefined {
  const ops = args.document.definitions.filter(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  );
  if (args.document.definitions.length !== ops.length) return undefined; // fragments: regular path
  return args.operationName
    ? ops.find((o) => o.name?.value === args.operationName)
    : ops.length === 1
      ? ops[0]
      : undefined;
}

/**
 * An iterator over `source` for graphql-ws. Written by hand rather than as an async generator: a
 * generator's `return()` waits behind a pending `next()`, and a quiet feed's `next()` may never
 * settle, so closing the socket would never reach the feed (its Redis interest, queue and timers
 * would outlive the socket). Here `return()` goes straight to the source.
 */
function resultsOf(
  source: AsyncIterableIterator<DeliveredAlert>,
  next: () => Promise<IteratorResult<ExecutionResult>>,
): AsyncIterableIterator<ExecutionResult> {
  const results: AsyncIterableIterator<ExecutionResult> = {
    next,
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

/** Where a direct subscription writes: one WebSocket, one subscription id (provided by the HTTP layer). */
export interface DirectTransport {
  readonly id: string;
  send(frame: string): void;
  /** Bytes written and not yet sent. */
  backlog(): number;
  readonly budgetBytes: number;
  /** Called when the backlog passes the budget: the socket is closed with 4008. */
  overBudget(): void;
}

const CURSOR_HOLE = Symbol('cursor');
type View = Record<string, unknown>;
type TemplatePiece = string | ((view: View) => string) | typeof CURSOR_HOLE;
/** The JSON text of a selection for one alert, cut where each subscriber's cursor goes. */
type Template = (a: OverheatAlert) => string[];

/**
 * JSON of `view`'s selected fields, as graphql-js would write them: values come from the resolvers'
 * own mapping (alertView), leaves are serialized by the schema's scalars (DateTime included). A
 * selection this cannot do exactly (lists, abstract types, arguments) returns undefined.
 */
function compileObject(
  selectionSet: SelectionSetNode | undefined,
  type: GraphQLObjectType,
  top: boolean,
): TemplatePiece[] | undefined {
  const fields = plainFields(selectionSet);
  if (!fields) return undefined;
  const pieces: TemplatePiece[] = [];
  const defs = type.getFields();
  for (const [i, f] of fields.entries()) {
    const name = f.name.value;
    pieces.push(`${i === 0 ? '{' : ','}${JSON.stringify(f.alias?.value ?? name)}:`);
    if ((f.arguments?.length ?? 0) > 0) return undefined;
    if (name === '__typename') {
      pieces.push(JSON.stringify(type.name));
      continue;
    }
    if (top && name === 'cursor' && !f.selectionSet) {
      pieces.push(CURSOR_HOLE);
      continue;
    }
    const def = defs[name];
    if (!def) return undefined;
    const named = getNamedType(def.type);
    if (isListType(getNullableType(def.type))) return undefined;
    if (isLeafType(named)) {
      if (f.selectionSet) return undefined;
      pieces.push((view) => (view[name] == null ? 'null' : JSON.stringify(named.serialize(view[name]))));
    } else if (isObjectType(named)) {
      const inner = compileObject(f.selectionSet, named, false);
      if (!inner || inner.includes(CURSOR_HOLE)) return undefined;
      pieces.push((view) => (view[name] == null ? 'null' : render(inner, view[name] as View)[0]!));
    } else return undefined;
  }
  pieces.push('}');
  return pieces;
}

function render(pieces: readonly TemplatePiece[], view: View): string[] {
  const segments: string[] = [];
  let current = '';
  for (const p of pieces) {
    if (p === CURSOR_HOLE) {
      segments.push(current);
      current = '';
    } else current += typeof p === 'string' ? p : p(view);
  }
  segments.push(current);
  return segments;
}

function compileTemplate(
  selectionSet: SelectionSetNode | undefined,
  alertType: GraphQLObjectType,
): Template | undefined {
  const pieces = compileObject(selectionSet, alertType, true);
  if (!pieces) return undefined;
  return (a) => render(pieces, alertView(a, null) as unknown as View);
}

/** Templates by selection, shared by every subscription with the same one. */
const templates = new Map<string, Template>();
/** Serialized alerts: alert -> selection -> segments. An alert object is shared by all local subscribers. */
const serialized = new WeakMap<OverheatAlert, Map<string, string[]>>();

function templateFor(field: FieldNode, alertType: GraphQLObjectType): { key: string; template: Template } | undefined {
  const key = field.selectionSet ? print(field.selectionSet) : '';
  let template = templates.get(key);
  if (!template) {
    template = compileTemplate(field.selectionSet, alertType);
    if (!template) return undefined;
    if (templates.size > 1000) templates.clear(); // selections are few; a flood of distinct ones must not grow this
    templates.set(key, template);
  }
  return { key, template };
}

function segmentsOf(alert: OverheatAlert, key: string, template: Template): string[] {
  let bySelection = serialized.get(alert);
  if (!bySelection) serialized.set(alert, (bySelection = new Map<string, string[]>()));
  let segments = bySelection.get(key);
  if (!segments) bySelection.set(key, (segments = template(alert)));
  return segments;
}

/** The feed in push mode, writing `next` frames itself; graphql-ws only sees the end or an error. */
function directStream(
  source: (sink: AlertSink) => AsyncIterableIterator<DeliveredAlert>,
  transport: DirectTransport,
  rootKey: string,
  key: string,
  template: Template,
): AsyncIterableIterator<ExecutionResult> {
  const head = `{"id":${JSON.stringify(transport.id)},"type":"next","payload":{"data":{${JSON.stringify(rootKey)}:`;
  const sink: AlertSink = {
    push(alert, cursor) {
      if (transport.backlog() > transport.budgetBytes) return transport.overBudget();
      const segments = segmentsOf(alert, key, template);
      let body = segments[0]!;
      if (segments.length > 1) {
        const c = JSON.stringify(cursor);
        for (let i = 1; i < segments.length; i++) body += c + segments[i]!;
      }
      transport.send(`${head}${body}}}}`);
    },
    backlog: () => transport.backlog(),
  };
  const feed = source(sink);
  // Settles only when the feed ends (done) or fails (rejects): its alerts went to the sink.
  return resultsOf(feed, async () => {
    await feed.next();
    return { value: undefined, done: true };
  });
}

/** graphql-ws `subscribe`: the fast path when it applies, graphql-js otherwise. */
export function subscribeWithFastPath(
  args: ExecutionArgs,
): ReturnType<typeof graphqlSubscribe> | AsyncIterableIterator<ExecutionResult> | ExecutionResult {
  const operation = findOperation(args);
  const root =
    operation?.operation === OperationTypeNode.SUBSCRIPTION ? plainFields(operation.selectionSet) : undefined;
  const field = root?.length === 1 && root[0]!.name.value === 'overheatAlerts' ? root[0]! : undefined;
  const fieldDef = args.schema.getSubscriptionType()?.getFields().overheatAlerts;
  const context = args.contextValue as GraphQLContext & { transport?: DirectTransport };
  const alertType = fieldDef ? getNamedType(fieldDef.type) : undefined;
  const compiled = field && context.transport && isObjectType(alertType) ? templateFor(field, alertType) : undefined;
  if (!operation || !field || !fieldDef || !compiled || !context.transport) return graphqlSubscribe(args);

  const variables = getVariableValues(args.schema, operation.variableDefinitions ?? [], args.variableValues ?? {});
  if (variables.errors) return { errors: variables.errors };
  try {
    const argValues = getArgumentValues(fieldDef, field, variables.coerced) as {
      sensorIds?: string[] | null;
      after?: string | null;
    };
    const transport = context.transport;
    const principal = principalOf(context);
    const rootKey = field.alias?.value ?? field.name.value;
    return directStream(
      (sink) =>
        overheatAlertsSubscribe(context.services, principal, { budget: context.budget, sink })(
          argValues,
        ) as AsyncIterableIterator<DeliveredAlert>,
      transport,
      rootKey,
      compiled.key,
      compiled.template,
    );
  } catch (err) {
    if (err instanceof GraphQLError) return { errors: [err] };
    throw err;
  }
}
