/**
 * Shape limits on a GraphQL request, checked on the parsed document before validation and
 * execution, over HTTP and WebSocket alike. Each refusal is a GraphQLError with code
 * LIMIT_EXCEEDED, `extensions.limit` naming the limit, `max` its value and `actual` what was sent.
 *
 * - `depth`: nesting of selections (fragments expanded); below `__schema`/`__type`, 16 more levels.
 * - `aliases`: aliased fields, counted once per place a fragment is spread.
 * - `directives`: directive uses, counted the same way.
 * - `cost`: every field costs 1, times the list sizes above it; a list size is the field's `first`
 *   argument (literal or variable, default 50), so `readings(first: 1000) { nodes { ts } }` costs
 *   2001 and thirteen of them are refused.
 * - `operationName`: length of any operation's name.
 * - `variablesDepth`: nesting of the variables' JSON (checked without recursion).
 * The document's token count is bounded by the parser (`maxTokens`), before any of these.
 *
 * Each fragment is summarised once (cost at list size 1, depth, aliases, directives) and a spread
 * reuses its summary, so the check is linear in the document's size: a fragment spread twice in
 * each of 40 nested fragments (2^40 fields once expanded) costs no more to check than it is long.
 */
import {
  GraphQLError,
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
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
  return new GraphQLError(message, {
    extensions: { code: ErrorCode.LIMIT_EXCEEDED, limit, max, actual, http: { status: 400 } },
  });
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
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

export function checkVariables(variables: unknown, limits: OperationLimits): GraphQLError | undefined {
  if (variables === undefined || variables === null) return undefined;
  const depth = jsonDepth(variables, limits.maxVariablesDepth);
  if (depth > limits.maxVariablesDepth) {
    return limitError(
      'variablesDepth',
      limits.maxVariablesDepth,
      depth,
      `Variables are nested more than ${limits.maxVariablesDepth} levels deep`,
    );
  }
  return undefined;
}

/** Depth allowed below `__schema` / `__type`: GraphiQL's and codegen's introspection queries nest 13 levels. */
const INTROSPECTION_DEPTH = 16;

/** What a selection set adds up to, at list size 1 and depth 0. */
interface Summary {
  cost: number;
  depth: number;
  aliases: number;
  directives: number;
}

const EMPTY: Summary = { cost: 0, depth: 0, aliases: 0, directives: 0 };

function valueOf(node: ValueNode, variables: Readonly<Record<string, unknown>>): unknown {
  if (node.kind === Kind.INT || node.kind === Kind.FLOAT) return Number(node.value);
  if (node.kind === Kind.VARIABLE) return variables[node.name.value];
  return undefined;
}

function listSize(field: FieldNode, variables: Readonly<Record<string, unknown>>, fallback: number): number {
  const first = field.arguments?.find((a) => a.name.value === 'first');
  if (!first) return 1;
  const value = valueOf(first.value, variables);
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.max(1, value) : fallback;
}

/** Checks a parsed document (all its operations) against the limits; the first refusal, if any. */
export function checkDocument(
  document: DocumentNode,
  variables: Readonly<Record<string, unknown>> | undefined,
  limits: OperationLimits,
): GraphQLError | undefined {
  const vars = variables ?? {};
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) {
    if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    if (d.kind === Kind.OPERATION_DEFINITION && (d.name?.value.length ?? 0) > limits.maxOperationNameLength) {
      const actual = d.name!.value.length;
      return limitError(
        'operationName',
        limits.maxOperationNameLength,
        actual,
        `Operation names may be at most ${limits.maxOperationNameLength} characters (got ${actual})`,
      );
    }
  }

  // Fragment summaries, computed once each. A fragment met again while being summarised is a
  // cycle, which validation refuses; it adds nothing here.
  const summaries = new Map<string, Summary | 'in progress'>();
  const fragmentSummary = (name: string): Summary => {
    const known = summaries.get(name);
    if (known === 'in progress') return EMPTY;
    if (known) return known;
    const f = fragments.get(name);
    if (!f) return EMPTY;
    summaries.set(name, 'in progress');
    const s = summarise(f.selectionSet);
    const summary = { ...s, directives: s.directives + (f.directives?.length ?? 0) };
    summaries.set(name, summary);
    return summary;
  };
  const summarise = (set: SelectionSetNode): Summary => {
    const total: Summary = { cost: 0, depth: 0, aliases: 0, directives: 0 };
    for (const s of set.selections) {
      total.directives += s.directives?.length ?? 0;
      let inner: Summary;
      if (s.kind === Kind.FIELD) {
        const child = s.selectionSet ? summarise(s.selectionSet) : EMPTY;
        const introspection = s.name.value === '__schema' || s.name.value === '__type';
        inner = {
          cost: 1 + listSize(s, vars, limits.defaultListSize) * child.cost,
          depth: 1 + (introspection ? Math.max(0, child.depth - INTROSPECTION_DEPTH) : child.depth),
          aliases: (s.alias ? 1 : 0) + child.aliases,
          directives: child.directives,
        };
      } else if (s.kind === Kind.INLINE_FRAGMENT) {
        inner = summarise(s.selectionSet);
      } else {
        inner = fragmentSummary(s.name.value);
      }
      total.cost += inner.cost;
      total.depth = Math.max(total.depth, inner.depth);
      total.aliases += inner.aliases;
      total.directives += inner.directives;
    }
    return total;
  };

  const sum: Summary = { cost: 0, depth: 0, aliases: 0, directives: 0 };
  for (const d of document.definitions) {
    if (d.kind !== Kind.OPERATION_DEFINITION) continue;
    const s = summarise(d.selectionSet);
    sum.cost = Math.max(sum.cost, s.cost);
    sum.depth = Math.max(sum.depth, s.depth);
    sum.aliases += s.aliases;
    sum.directives += s.directives + (d.directives?.length ?? 0);
  }
  if (sum.depth > limits.maxDepth)
    return limitError(
      'depth',
      limits.maxDepth,
      sum.depth,
      `Selections are nested more than ${limits.maxDepth} levels deep (${sum.depth})`,
    );
  if (sum.aliases > limits.maxAliases)
    return limitError(
      'aliases',
      limits.maxAliases,
      sum.aliases,
      `At most ${limits.maxAliases} aliases per request (${sum.aliases})`,
    );
  if (sum.directives > limits.maxDirectives) {
    return limitError(
      'directives',
      limits.maxDirectives,
      sum.directives,
      `At most ${limits.maxDirectives} directives per request (${sum.directives})`,
    );
  }
  if (sum.cost > limits.maxCost) {
    const actual = Number.isFinite(sum.cost) ? Math.round(sum.cost) : Number.MAX_SAFE_INTEGER;
    return limitError(
      'cost',
      limits.maxCost,
      actual,
      `The request would cost ${actual} > ${limits.maxCost} (each field counts once per item of the lists above it; lower "first" or split the request)`,
    );
  }
  return undefined;
}
