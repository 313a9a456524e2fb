/**
 * Shape limits on a GraphQL request, checked on the parsed document before validation and
 * execution, over HTTP and WebSocket alike. Each refusal is a GraphQLError with code
 * LIMIT_EXCEEDED, `extensions.limit` naming the limit, `max` its value and `actual` what was sent.
 *
 * - `depth`: nesting of selections (fragments expanded); below `__schema`/`__type`, 16 more levels.
 * - `aliases`: aliased fields in the whole document.
 * - `directives`: directive uses in the whole document.
 * - `cost`: every field costs 1, times the list sizes above it; a list size is the field's `first`
 *   argument (literal or variable, default 50), so `readings(first: 1000) { ... }` counts its
 *   selection a thousand times and 500 aliases of it are refused.
 * - `operationName`: length of any operation's name.
 * - `variablesDepth`: nesting of the variables' JSON (checked without recursion).
 * The document's token count is bounded by the parser (`maxTokens`), before any of these.
 */
import { GraphQLError, Kind, type DocumentNode, type FieldNode, type FragmentDefinitionNode, type SelectionSetNode, type ValueNode } from 'graphql';
import { ErrorCode } from '../errors.js';

export interface OperationLimits {
  readonly maxDepth: number;
  readonly maxAliases: number;
  readonly maxDirectives: number;
  readonly maxCost: number;
  readonly maxOperationNameLength: number;
  readonly maxVariablesDepth: number;
  readonly maxTokens: number;
  /** List size assumed for a field with `first` not given. */
  readonly defaultListSize: number;
}

export function limitError(limit: string, max: number, actual: number, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: ErrorCode.LIMIT_EXCEEDED, limit, max, actual, http: { status: 400 } } });
}

/** Depth of a JSON value, without recursion (a 100,000-level value must not blow the stack). */
export function jsonDepth(value: unknown, stopAt: number): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > stopAt) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v as object)) stack.push([child, d + 1]);
  }
  return max;
}

export function checkVariables(variables: unknown, limits: OperationLimits): GraphQLError | undefined {
  if (variables === undefined || variables === null) return undefined;
  const depth = jsonDepth(variables, limits.maxVariablesDepth);
  if (depth > limits.maxVariablesDepth) {
    return limitError('variablesDepth', limits.maxVariablesDepth, depth, `Variables are nested more than ${limits.maxVariablesDepth} levels deep`);
  }
  return undefined;
}

/** Depth allowed below `__schema` / `__type`: GraphiQL's and codegen's introspection queries nest 13 levels. */
const INTROSPECTION_DEPTH = 16;

function listSize(field: FieldNode, variables: Readonly<Record<string, unknown>>, fallback: number): number {
  const first = field.arguments?.find((a) => a.name.value === 'first');
  if (!first) return 1;
  const value = valueOf(first.value, variables);
  // At least 1: every field visited then adds to the cost, which bounds the walk itself (fragment bombs).
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.max(1, value) : fallback;
}

function valueOf(node: ValueNode, variables: Readonly<Record<string, unknown>>): unknown {
  if (node.kind === Kind.INT || node.kind === Kind.FLOAT) return Number(node.value);
  if (node.kind === Kind.VARIABLE) return variables[node.name.value];
  return undefined;
}

/** Checks a parsed document (all its operations) against the limits; the first refusal, if any. */
export function checkDocument(document: DocumentNode, variables: Readonly<Record<string, unknown>> | undefined, limits: OperationLimits): GraphQLError | undefined {
  const vars = variables ?? {};
  const fragments = new Map<string, FragmentDefinitionNode>();
  let aliases = 0;
  let directives = 0;
  for (const d of document.definitions) {
    if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    if (d.kind === Kind.OPERATION_DEFINITION && (d.name?.value.length ?? 0) > limits.maxOperationNameLength) {
      const actual = d.name!.value.length;
      return limitError('operationName', limits.maxOperationNameLength, actual, `Operation names may be at most ${limits.maxOperationNameLength} characters (got ${actual})`);
    }
  }

  // One pass over each operation, fragments expanded in place (a spread already on the path is a
  // cycle, which validation refuses; it adds nothing here). Stops as soon as a limit is passed.
  let refused: GraphQLError | undefined;
  const walk = (set: SelectionSetNode, depth: number, multiplier: number, path: ReadonlySet<string>, maxDepth = limits.maxDepth): number => {
    let cost = 0;
    for (const s of set.selections) {
      if (refused) return cost;
      directives += s.directives?.length ?? 0;
      if (s.kind === Kind.FIELD) {
        if (s.alias) aliases++;
        if (depth > maxDepth) {
          refused = limitError('depth', maxDepth, depth, `Selections are nested more than ${maxDepth} levels deep`);
          return cost;
        }
        cost += multiplier;
        // Introspection nests type references (ofType { ofType { ... } }) deeper than any data query.
        const innerMax = s.name.value === '__schema' || s.name.value === '__type' ? depth + INTROSPECTION_DEPTH : maxDepth;
        if (s.selectionSet) cost += walk(s.selectionSet, depth + 1, multiplier * listSize(s, vars, limits.defaultListSize), path, innerMax);
      } else if (s.kind === Kind.INLINE_FRAGMENT) {
        cost += walk(s.selectionSet, depth, multiplier, path, maxDepth);
      } else {
        const f = fragments.get(s.name.value);
        if (f && !path.has(f.name.value)) {
          directives += f.directives?.length ?? 0;
          cost += walk(f.selectionSet, depth, multiplier, new Set([...path, f.name.value]), maxDepth);
        }
      }
      if (aliases > limits.maxAliases) {
        refused = limitError('aliases', limits.maxAliases, aliases, `At most ${limits.maxAliases} aliases per request`);
      } else if (directives > limits.maxDirectives) {
        refused = limitError('directives', limits.maxDirectives, directives, `At most ${limits.maxDirectives} directives per request`);
      } else if (cost > limits.maxCost) {
        refused = limitError('cost', limits.maxCost, Math.round(cost), `The request would cost more than ${limits.maxCost} (each field counts once per item of the lists above it; lower "first" or split the request)`);
      }
    }
    return cost;
  };
  for (const d of document.definitions) {
    if (d.kind !== Kind.OPERATION_DEFINITION) continue;
    directives += d.directives?.length ?? 0;
    walk(d.selectionSet, 1, 1, new Set());
    if (refused) return refused;
  }
  return refused;
}
