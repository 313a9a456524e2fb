/**
 * The HTTP and WebSocket front door of one replica, all on one port:
 * - `POST/GET /graphql`: queries and mutations (Apollo Server, through its HTTP integration API);
 * - `GET /graphql` from a browser: GraphiQL, served from this project (works offline);
 * - WebSocket `/graphql` (graphql-transport-ws): subscriptions;
 * - `/healthz` (liveness) and `/readyz` (readiness from the dependencies' state).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, HeaderMap } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { GraphQLError, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import type { Authenticator } from '../auth/credentials.js';
import type { Config } from '../config.js';
import type { Metrics } from '../observability/metrics.js';
import type { ReadinessReport } from '../observability/readiness.js';
import type { Admission, GraphQLRequestText } from './admission.js';
import { DependencyError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from '../resolvers/services.js';
import { createDashboardHandler } from './dashboard.js';
import { createGraphiQLHandler } from './graphiql.js';
import { startSubscriptionServer } from './subscriptionServer.js';

export type { ReadinessReport };

export interface HttpServerOptions {
  schema: GraphQLSchema;
  context: GraphQLContext;
  host: string;
  port: number;
  maxBodyBytes: number;
  /** WebSocket keep-alive and connection_init wait (see subscriptionServer.ts). */
  keepAliveMs: number;
  connectionInitWaitMs: number;
  security: Config['security'];
  /** Callers without credentials are let in (AUTH_ANONYMOUS_ROLE): the dashboard need not ask for one. */
  openAccess: boolean;
  authenticator: Authenticator;
  admission: Admission;
  logger: Logger;
  /** Bytes a WebSocket may have waiting to be sent before it is closed as too slow. */
  maxSocketBufferBytes: number;
  /** Bytes of alerts queued for one socket's subscriptions before it is closed with 4008. */
  socketBudgetBytes: number;
  /** Subscriptions one socket may hold at once; more are refused with LIMIT_EXCEEDED. */
  maxSubscriptionsPerSocket: number;
  readiness: () => ReadinessReport;
  metrics: Pick<Metrics, 'render' | 'contentType'>;
}

export interface HttpFrontDoor {
  readonly url: string;
  readonly port: number;
  /** Open WebSocket connections. */
  connections(): number;
  /** Sockets closed because their subscriptions' queues went over the socket budget. */
  socketsOverBudget(): number;
  /** Stops accepting, closes WebSockets with 1001, drains in-flight HTTP requests. */
  drain(graceMs: number): Promise<void>;
}

const DEFAULT_QUERY = `# Live overheat alerts (start some sensors first, in another tab):
#   mutation { spawnSensors(input: { count: 3, scenario: OVERHEAT, intervalMs: 500 }) { sensors { id } } }
subscription LiveAlerts {
  overheatAlerts {
    id
    sensorId
    temperature
    threshold
    ts
    location { lat lon }
    cursor
  }
}
`;

/** Codes whose messages are written for clients; anything else is masked. */
const CLIENT_CODES = new Set<unknown>([
  ...Object.values(ErrorCode).filter((c) => c !== ErrorCode.INTERNAL_SERVER_ERROR),
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'SUBSCRIBER_TOO_SLOW',
  'CURSOR_EXPIRED',
]);

/**
 * Client-facing codes pass through. Anything else (a bug, a store message such as SQLITE_BUSY, a
 * stack overflow) becomes INTERNAL_SERVER_ERROR with an error id that is also in the log; its
 * message and stack reach the client only in development mode (DEV_MODE=true). An unreachable
 * dependency (DependencyError) is told by the code and message it carries, retryable.
 */
export function errorMasker(devMode: boolean, log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = (error as { originalError?: unknown }).originalError ?? error;
    if (original instanceof DependencyError) {
      return {
        message: original.clientMessage,
        path: formatted.path,
        extensions: { code: original.code, retryable: original.retriable },
      };
    }
    const { http: _http, stacktrace, ...extensions } = (formatted.extensions ?? {}) as Record<string, unknown>;
    if (CLIENT_CODES.has(extensions.code)) {
      return { ...formatted, extensions: devMode && stacktrace ? { ...extensions, stacktrace } : extensions };
    }
    const errorId = randomBytes(6).toString('hex');
    log.error({ err: original, errorId, path: formatted.path }, 'unexpected error in GraphQL operation');
    if (devMode)
      return {
        ...formatted,
        extensions: { ...extensions, code: ErrorCode.INTERNAL_SERVER_ERROR, errorId, stacktrace },
      };
    return {
      message: `Internal server error (error id ${errorId})`,
      path: formatted.path,
      extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR, errorId },
    };
  };
}

function unauthenticated(reason: string): GraphQLError {
  return new GraphQLError(`Not authenticated: ${reason}`, { extensions: { code: ErrorCode.UNAUTHENTICATED } });
}

/** The client-facing JSON of an error raised before Apollo runs (its `http` extension is for us). */
function clientError(error: GraphQLError): GraphQLFormattedError {
  const { http: _http, ...extensions } = error.extensions as Record<string, unknown>;
  return { message: error.message, extensions };
}

function statusOf(error: GraphQLError): number {
  return (error.extensions.http as { status?: number } | undefined)?.status ?? 400;
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit)
      throw Object.assign(new Error(`The request body exceeds ${limit} bytes (HTTP_MAX_BODY_BYTES)`), {
        status: 413,
        code: ErrorCode.LIMIT_EXCEEDED,
      });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export async function startHttpServer(o: HttpServerOptions): Promise<HttpFrontDoor> {
  const log = o.logger.child({ module: 'http' });
  const maskError = errorMasker(o.security.devMode, log);
  const apollo = new ApolloServer<GraphQLContext>({
    schema: o.schema,
    introspection: o.security.introspection,
    includeStacktraceInErrorResponses: o.security.devMode,
    formatError: maskError,
    // Documents are admitted (limits, roles) before Apollo sees them: a hash-only request would skip that.
    persistedQueries: false,
    parseOptions: { maxTokens: o.security.operations.maxTokens },
    // No cache hints are used: without this plugin Apollo skips a hook on every resolved field.
    plugins: [ApolloServerPluginLandingPageDisabled(), ApolloServerPluginCacheControlDisabled()],
    // main.ts owns signals and the shutdown order; Apollo must not re-raise them.
    stopOnTerminationSignals: false,
    logger: {
      debug: (m) => log.debug(m),
      info: (m) => log.debug(m),
      warn: (m) => log.warn(m),
      error: (m) => log.error(m),
    },
  });
  await apollo.start();
  const graphiql = o.security.graphiql
    ? createGraphiQLHandler({
        endpointPath: '/graphql',
        title: 'iot-realtime-pipeline',
        defaultQuery: DEFAULT_QUERY,
        ...(o.security.devMode && o.security.devAdminKey
          ? { defaultHeaders: { Authorization: `Bearer ${o.security.devAdminKey}` } }
          : {}),
      })
    : () => false;
  const dashboard = o.security.dashboard
    ? createDashboardHandler({
        endpointPath: '/graphql',
        devKey: o.security.devMode ? o.security.devAdminKey : undefined,
        openAccess: o.openAccess,
      })
    : () => false;
  let draining = false;

  const sendErrors = (
    res: ServerResponse,
    status: number,
    errors: GraphQLFormattedError[],
    headers: Record<string, string> = {},
  ): void => {
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    sendJson(res, status, { errors });
  };

  /** The request as Apollo will read it, for admission; undefined when Apollo refuses it by itself (batches). */
  const requestText = (method: string, body: unknown, url: URL): GraphQLRequestText | GraphQLError | undefined => {
    if (method === 'POST') {
      if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
      return body as GraphQLRequestText;
    }
    if (method !== 'GET') return undefined;
    const raw = url.searchParams.get('variables');
    let variables: unknown;
    if (raw) {
      try {
        variables = JSON.parse(raw);
      } catch {
        return new GraphQLError('The variables parameter is not valid JSON', {
          extensions: { code: ErrorCode.BAD_USER_INPUT },
        });
      }
    }
    return {
      query: url.searchParams.get('query') ?? undefined,
      operationName: url.searchParams.get('operationName') ?? undefined,
      variables,
    };
  };

  const handleGraphQL = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const auth = await o.authenticator.authenticate(req.headers.authorization);
    if (!auth.ok)
      return sendErrors(res, 401, [clientError(unauthenticated(auth.reason))], { 'www-authenticate': 'Bearer' });
    const principal = auth.principal;
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    let body: unknown;
    if (req.method === 'POST') {
      const text = await readBody(req, o.maxBodyBytes);
      try {
        body = text.length > 0 ? JSON.parse(text) : undefined;
      } catch {
        sendJson(res, 400, {
          errors: [{ message: 'request body is not valid JSON', extensions: { code: ErrorCode.BAD_USER_INPUT } }],
        });
        return;
      }
    }
    const text = requestText(req.method ?? 'GET', body, url);
    if (text instanceof GraphQLError) return sendErrors(res, 400, [clientError(text)]);
    if (text) {
      const admitted = await o.admission.admit(principal, text);
      if (!admitted.ok) {
        const retryAfter = (
          admitted.error.extensions.http as { headers?: Map<string, string> } | undefined
        )?.headers?.get('retry-after');
        return sendErrors(
          res,
          statusOf(admitted.error),
          [clientError(admitted.error)],
          retryAfter ? { 'retry-after': retryAfter } : {},
        );
      }
    }
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
      // The caller's trace context, for the resolvers that trace (ingestReadings): ignored when tracing is off.
      context: () => Promise.resolve({ ...o.context, principal, ...traceContextOf(req) }),
    });
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.statusCode = response.status ?? 200;
    if (response.body.kind === 'complete') {
      res.end(response.body.string);
      return;
    }
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      // CORS: only origins on the allow-list (CORS_ORIGINS) get headers; nothing is reflected.
      const origin = req.headers.origin;
      const corsAllowed = typeof origin === 'string' && o.security.corsOrigins.includes(origin);
      if (corsAllowed) {
        res.setHeader('access-control-allow-origin', origin);
        res.setHeader('vary', 'origin');
        res.setHeader('access-control-expose-headers', 'retry-after');
      }
      if (req.method === 'OPTIONS') {
        if (corsAllowed) {
          res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
          res.setHeader(
            'access-control-allow-headers',
            'authorization, content-type, apollo-require-preflight, x-apollo-operation-name',
          );
          res.setHeader('access-control-max-age', '600');
        }
        res.writeHead(204).end();
        return;
      }
      try {
        if (url.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
        if (url.pathname === '/readyz') {
          const report = o.readiness();
          const ready = report.ready && !draining;
          return sendJson(res, ready ? 200 : 503, {
            status: ready ? 'ready' : draining ? 'draining' : 'not ready',
            checks: report.checks,
          });
        }
        if (url.pathname === '/metrics') {
          const text = await o.metrics.render();
          res.writeHead(200, { 'content-type': o.metrics.contentType });
          return res.end(text);
        }
        if (await graphiql(req, res)) return;
        if (dashboard(req, res)) return;
        if (url.pathname === '/graphql') {
          if (draining) res.setHeader('connection', 'close');
          return await handleGraphQL(req, res, url);
        }
        sendJson(res, 404, { error: 'not found', see: '/graphql' });
      } catch (err) {
        const status = (err as { status?: number }).status ?? 500;
        if (status >= 500) log.error({ err }, 'request failed');
        if (!res.headersSent) {
          sendJson(res, status, {
            errors: [
              status === 413
                ? {
                    message: (err as Error).message,
                    extensions: { code: ErrorCode.LIMIT_EXCEEDED, limit: 'bodyBytes' },
                  }
                : { message: 'Internal server error', extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } },
            ],
          });
        } else res.destroy();
      }
    })();
  });
  server.keepAliveTimeout = 5000;

  const subscriptions = startSubscriptionServer({
    server,
    path: '/graphql',
    schema: o.schema,
    context: o.context,
    authenticator: o.authenticator,
    admission: o.admission,
    maskError,
    logger: o.logger,
    maxPayloadBytes: o.maxBodyBytes,
    keepAliveMs: o.keepAliveMs,
    connectionInitWaitMs: o.connectionInitWaitMs,
    maxConnections: o.security.maxConnections,
    maxConnectionsPerAddress: o.security.maxConnectionsPerAddress,
    maxConnectionsPerKey: o.security.maxConnectionsPerKey,
    maxSubscriptionsPerSocket: o.maxSubscriptionsPerSocket,
    maxSocketBufferBytes: o.maxSocketBufferBytes,
    socketBudgetBytes: o.socketBudgetBytes,
    isDraining: () => draining,
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}/graphql`;
  log.info({ url }, 'listening');

  return {
    url,
    port,
    connections: () => subscriptions.connections(),
    socketsOverBudget: () => subscriptions.socketsOverBudget(),
    async drain(graceMs) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await subscriptions.dispose();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([closed, grace]);
      server.closeAllConnections();
      await apollo.stop();
    },
  };
}

/** The W3C `traceparent` header of a request, when it has one (a malformed one is ignored by the tracer). */
function traceContextOf(req: IncomingMessage): { traceparent?: string } {
  const traceparent = req.headers.traceparent;
  return typeof traceparent === 'string' ? { traceparent } : {};
}
