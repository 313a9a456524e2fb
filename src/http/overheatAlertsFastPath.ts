/**
 * A fast path for the one hot operation: `subscription { overheatAlerts(...) { ... } }`.
 *
 * graphql-js runs a full `execute` for every event of every subscriber. For a flat alert that is
 * most of the cost of fan-out, so when a subscription over a WebSocket is simple (one root field,
 * plain field selections, no fragments or directives) its selection is compiled into a JSON
 * template; each alert is serialized once per distinct selection (cached on the alert, which every
 * local subscriber shares), and once more per distinct cursor: subscribers at the live edge share
 * theirs, so they share the bytes of the message too. A subscriber's `next` frame is its own id
 * followed by those bytes, copied, written straight to the socket. No per-message promise, no await per send: the
 * socket's buffer holds the backlog, and the socket budget bounds it (close 4008). The feed tells
 * the subscription its end (`complete`) or failure (`error`), so the protocol stays
 * graphql-transport-ws. Anything else takes the regular graphql-js path, which stays the reference:
 * tests run both and compare their output.
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
  type ExecutionArgs,
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
 * Where a direct subscription writes: its connection (http/subscriptionServer.ts). One object per
 * socket, shared by its subscriptions, so a subscription holds no closures of its own.
 */
export interface FrameWriter {
  /** Writes one text frame carrying the UTF-8 text `head` then `body`. */
  sendJoined(head: Buffer, body: Buffer): void;
  /** Bytes written and not yet sent. */
  backlog(): number;
  readonly budgetBytes: number;
  /** Unsent bytes at which feeds stop handing the socket more; sitting there without reading closes it (4008). */
  readonly pauseLineBytes: number;
  /** Called when the backlog passes the budget: the socket is closed with 4008. */
  overBudget(): void;
  /** The subscription `id` ended: `complete` it, or send `error` when it failed. */
  ended(id: string, error?: unknown): void;
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

/**
 * A `next` message as its subscriptions share it, after their ids: `"type":"next","payload":{"data":`
 * and the root field's key (its alias, if any), then the selection's template. One per root key and
 * selection, shared by every subscription with the same ones.
 */
export interface Shape {
  readonly start: string;
  readonly template: Template;
  /** Whether the selection holds the cursor: otherwise its bytes are the same for every subscriber. */
  readonly withCursor: boolean;
}
const shapes = new Map<string, Shape>();

export function shapeFor(field: FieldNode, alertType: GraphQLObjectType): Shape | undefined {
  const rootKey = field.alias?.value ?? field.name.value;
  const key = `${rootKey}\n${field.selectionSet ? print(field.selectionSet) : ''}`;
  let shape = shapes.get(key);
  if (!shape) {
    const pieces = compileObject(field.selectionSet, alertType, true);
    if (!pieces) return undefined;
    shape = {
      start: `"type":"next","payload":{"data":{${JSON.stringify(rootKey)}:`,
      template: (a) => render(pieces, alertView(a, null) as unknown as View),
      withCursor: pieces.includes(CURSOR_HOLE),
    };
    if (shapes.size > 1000) shapes.clear(); // selections are few; a flood of distinct ones must not grow this
    shapes.set(key, shape);
  }
  return shape;
}

/** One alert in one shape: its text cut where the cursor goes, and the last bytes made from it. */
interface Written {
  readonly segments: string[];
  cursor: string | undefined;
  bytes: Buffer | undefined;
}
/** Alert -> shape -> written. An alert object is shared by all local subscribers. */
const written = new WeakMap<OverheatAlert, Map<Shape, Written>>();

/** The bytes of `alert`'s message in `shape` after a subscriber's id, carrying `cursor`. */
export function messageBytes(alert: OverheatAlert, shape: Shape, cursor: string): Buffer {
  let byShape = written.get(alert);
  if (!byShape) written.set(alert, (byShape = new Map<Shape, Written>()));
  let w = byShape.get(shape);
  if (!w) byShape.set(shape, (w = { segments: shape.template(alert), cursor: undefined, bytes: undefined }));
  if (w.bytes && (!shape.withCursor || w.cursor === cursor)) return w.bytes;
  const segments = w.segments;
  let text = shape.start + segments[0]!;
  if (segments.length > 1) {
    const c = JSON.stringify(cursor);
    for (let i = 1; i < segments.length; i++) text += c + segments[i]!;
  }
  w.bytes = Buffer.from(`${text}}}}`);
  w.cursor = cursor;
  return w.bytes;
}

/**
 * One overheatAlerts subscription on the direct path: the feed's sink, writing each alert's `next`
 * frame itself (its id, then the alert's bytes for its shape and cursor, shared).
 */
class DirectSubscription implements AlertSink {
  feed: AsyncIterableIterator<DeliveredAlert> | undefined;
  /** `{"id":<id>,` */
  private readonly head: Buffer;

  constructor(
    private readonly writer: FrameWriter,
    private readonly id: string,
    private readonly shape: Shape,
  ) {
    this.head = Buffer.from(`{"id":${JSON.stringify(id)},`);
  }

  push(alert: OverheatAlert, cursor: string): void {
    if (this.writer.backlog() > this.writer.budgetBytes) return this.writer.overBudget();
    this.writer.sendJoined(this.head, messageBytes(alert, this.shape, cursor));
  }

  get pauseLineBytes(): number {
    return this.writer.pauseLineBytes;
  }

  backlog(): number {
    return this.writer.backlog();
  }

  end(error?: unknown): void {
    this.writer.ended(this.id, error);
  }

  /** The client completed it, or its socket closed: free the feed (Redis interest, timers). */
  stop(): void {
    void this.feed?.return?.();
  }
}

/**
 * Starts `subscription { overheatAlerts(...) { ... } }` on the direct path when it applies: the
 * running subscription (stop() it to end it), or the errors of its arguments. Undefined when the
 * operation is anything else: graphql-js runs it.
 */
export function subscribeDirect(
  args: ExecutionArgs,
  writer: FrameWriter,
  id: string,
): { running: { stop(): void } } | { errors: readonly GraphQLError[] } | undefined {
  const operation = findOperation(args);
  const root =
    operation?.operation === OperationTypeNode.SUBSCRIPTION ? plainFields(operation.selectionSet) : undefined;
  const field = root?.length === 1 && root[0]!.name.value === 'overheatAlerts' ? root[0]! : undefined;
  const fieldDef = args.schema.getSubscriptionType()?.getFields().overheatAlerts;
  const alertType = fieldDef ? getNamedType(fieldDef.type) : undefined;
  const shape = field && isObjectType(alertType) ? shapeFor(field, alertType) : undefined;
  if (!operation || !field || !fieldDef || !shape) return undefined;

  const context = args.contextValue as GraphQLContext;
  const variables = getVariableValues(args.schema, operation.variableDefinitions ?? [], args.variableValues ?? {});
  if (variables.errors) return { errors: variables.errors };
  try {
    const argValues = getArgumentValues(fieldDef, field, variables.coerced) as {
      sensorIds?: string[] | null;
      after?: string | null;
    };
    const subscription = new DirectSubscription(writer, id, shape);
    subscription.feed = overheatAlertsSubscribe(context.services, principalOf(context), {
      budget: context.budget,
      sink: subscription,
    })(argValues) as AsyncIterableIterator<DeliveredAlert>;
    return { running: subscription };
  } catch (err) {
    if (err instanceof GraphQLError) return { errors: [err] };
    throw err;
  }
}
