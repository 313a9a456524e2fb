/**
 * What every GraphQL request goes through before it may execute, over HTTP and WebSocket alike:
 * variables depth, parse (token limit), shape limits (depth, aliases, directives, cost, operation
 * name), the role check on every root field, and the per-credential rate limit of its kind.
 * Nothing here touches the store; a refused request costs a parse and a walk of its document.
 */
import {
  GraphQLError,
  getOperationAST,
  parse,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import type { Principal } from '../auth/credentials.js';
import { authorizeOperation, rootFields } from '../auth/policy.js';
import { ErrorCode } from '../errors.js';
import { checkDocument, checkVariables, limitError, type OperationLimits } from '../limits/operationLimits.js';
import { rateBucketOf, type RateLimiter } from '../limits/rateLimiter.js';

export interface GraphQLRequestText {
  query: unknown;
  operationName?: unknown;
  variables?: unknown;
}

export type Admitted =
  { ok: true; document: DocumentNode; operation: OperationDefinitionNode } | { ok: false; error: GraphQLError };

export interface Admission {
  admit(principal: Principal, request: GraphQLRequestText): Promise<Admitted>;
  /** graphql-js validation of an admitted document (code GRAPHQL_VALIDATION_FAILED), once per document. */
  validate(document: DocumentNode): readonly GraphQLError[];
}

/** Distinct documents kept parsed (and validated). */
const DOCUMENT_CACHE_SIZE = 1000;

function badRequest(message: string, code: string = ErrorCode.BAD_USER_INPUT): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status: 400 } } });
}

export function createAdmission(o: {
  schema: GraphQLSchema;
  limits: OperationLimits;
  introspection: boolean;
  rateLimiter: RateLimiter;
}): Admission {
  // Parsed documents by text: thousands of subscriptions with the same query share one AST (the
  // subscription keeps it for its whole life) and parse once. Bounded: cleared when full.
  const documents = new Map<string, DocumentNode>();
  const remember = (text: string, document: DocumentNode): DocumentNode => {
    if (documents.size >= DOCUMENT_CACHE_SIZE) documents.clear();
    documents.set(text, document);
    return document;
  };
  const validated = new WeakMap<DocumentNode, readonly GraphQLError[]>();
  return {
    async admit(principal, request) {
      if (typeof request.query !== 'string' || request.query.length === 0)
        return { ok: false, error: badRequest('The request has no query string') };
      if (
        request.operationName !== undefined &&
        request.operationName !== null &&
        typeof request.operationName !== 'string'
      ) {
        return { ok: false, error: badRequest('operationName must be a string') };
      }
      const operationName = request.operationName ?? undefined;
      if (operationName !== undefined && operationName.length > o.limits.maxOperationNameLength) {
        return {
          ok: false,
          error: limitError(
            'operationName',
            o.limits.maxOperationNameLength,
            operationName.length,
            `Operation names may be at most ${o.limits.maxOperationNameLength} characters (got ${operationName.length})`,
          ),
        };
      }
      if (
        request.variables !== undefined &&
        request.variables !== null &&
        (typeof request.variables !== 'object' || Array.isArray(request.variables))
      ) {
        return { ok: false, error: badRequest('variables must be an object') };
      }
      const variablesError = checkVariables(request.variables, o.limits);
      if (variablesError) return { ok: false, error: variablesError };

      let document = documents.get(request.query);
      try {
        document ??= remember(request.query, parse(request.query, { maxTokens: o.limits.maxTokens }));
      } catch (err) {
        const message = (err as Error).message;
        if (/contains more tha[nt] \d+ tokens/i.test(message)) {
          return {
            ok: false,
            error: limitError(
              'tokens',
              o.limits.maxTokens,
              o.limits.maxTokens + 1,
              `The document has more than ${o.limits.maxTokens} tokens`,
            ),
          };
        }
        return { ok: false, error: badRequest(message, 'GRAPHQL_PARSE_FAILED') };
      }
      const shapeError = checkDocument(document, request.variables as Record<string, unknown> | undefined, o.limits);
      if (shapeError) return { ok: false, error: shapeError };
      const operation = getOperationAST(document, operationName);
      if (!operation)
        return {
          ok: false,
          error: badRequest(
            'Unable to identify the operation: send operationName when the document has several',
            'OPERATION_RESOLUTION_FAILURE',
          ),
        };

      const denied = authorizeOperation(principal, document, operation, o.introspection, o.schema);
      if (denied) return { ok: false, error: denied };
      try {
        const bucket = rateBucketOf(operation.operation, () => rootFields(document, operation));
        if (bucket) await o.rateLimiter.take(bucket, principal.id);
      } catch (err) {
        if (err instanceof GraphQLError) return { ok: false, error: err };
        throw err;
      }
      return { ok: true, document, operation };
    },
    validate(document) {
      let errors = validated.get(document);
      if (!errors) {
        // Coded as Apollo codes them over HTTP, so a WebSocket client sees the same error.
        errors = validate(o.schema, document).map(
          (e) =>
            new GraphQLError(e.message, {
              nodes: e.nodes,
              source: e.source,
              positions: e.positions,
              extensions: { ...e.extensions, code: 'GRAPHQL_VALIDATION_FAILED' },
            }),
        );
        validated.set(document, errors);
      }
      return errors;
    },
  };
}
