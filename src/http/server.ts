/**
 * The HTTP and WebSocket front door of one replica, all on one port:
 * - `POST/GET /graphql`: queries and mutations (Apollo Server, through its HTTP integration API);
 * - `GET /graphql` from a browser: GraphiQL, served from this project (works offline);
 * - WebSocket `/graphql` (graphql-transport-ws): subscriptions;
 * - `/healthz` (liveness) and `/readyz` (readiness from the dependencies' state).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { GraphQLFormattedError, GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { GraphQLError } from 'graphql';
import { WebSocketServer, type WebSocket } from 'ws';
import { createSocketBudget, type SocketBudget } from '../fanout/socketBudget.js';
import { ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from '../resolvers/services.js';
import { isMongoUnavailable } from '../store/mongoStore.js';
import { createGraphiQLHandler } from './graphiql.js';
import { subscribeWithFastPath, type DirectTransport } from './overheatAlertsFastPath.js';

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, 'up' | 'down' | 'degraded' | 'disabled'>;
}

export interface HttpServerOptions {
  schema: GraphQLSchema;
  context: GraphQLContext;
  host: string;
  port: number;
  maxBodyBytes: number;
  production: boolean;
  logger: Logger;
  /** Bytes a WebSocket may have waiting to be sent before it is closed as too slow. */
  maxSocketBufferBytes: number;
  /** Bytes of alerts queued for one socket's subscriptions before it is closed with SLOW_CONSUMER_CLOSE_CODE. */
  socketBudgetBytes: number;
  /** Subscriptions one socket may hold at once; more are refused with LIMIT_EXCEEDED. */
  maxSubscriptionsPerSocket: number;
  readiness: () => ReadinessReport;
  metrics: () => string;
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

/** WebSocket close code for a client that stopped reading (4000-4999: application codes). */
export const SLOW_CONSUMER_CLOSE_CODE = 4008;

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

/** Internal errors are masked in production; user-facing codes pass through. */
function formatError(production: boolean, log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = (error as { originalError?: unknown }).originalError ?? error;
    if (isMongoUnavailable(original)) {
      return { message: 'The history store is unreachable; retry shortly', path: formatted.path, extensions: { code: ErrorCode.STORE_UNAVAILABLE, retryable: true } };
    }
    const code = formatted.extensions?.code;
    if (code === undefined || code === ErrorCode.INTERNAL_SERVER_ERROR) {
      log.error({ err: error }, 'unexpected error in GraphQL operation');
      if (production) return { message: 'Internal server error', extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } };
    }
    return formatted;
  };
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw Object.assign(new Error(`request body exceeds ${limit} bytes`), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startHttpServer(o: HttpServerOptions): Promise<HttpFrontDoor> {
  const log = o.logger.child({ module: 'http' });
  const apollo = new ApolloServer<GraphQLContext>({
    schema: o.schema,
    introspection: true,
    includeStacktraceInErrorResponses: !o.production,
    formatError: formatError(o.production, log),
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
  const graphiql = createGraphiQLHandler({ endpointPath: '/graphql', title: 'iot-realtime-pipeline', defaultQuery: DEFAULT_QUERY });
  let draining = false;

  const handleGraphQL = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
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
        sendJson(res, 400, { errors: [{ message: 'request body is not valid JSON', extensions: { code: ErrorCode.BAD_USER_INPUT } }] });
        return;
      }
    }
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
      context: async () => o.context,
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
      try {
        if (url.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
        if (url.pathname === '/readyz') {
          const report = o.readiness();
          const ready = report.ready && !draining;
          return sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : draining ? 'draining' : 'not ready', checks: report.checks });
        }
        if (url.pathname === '/metrics') {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
          return res.end(o.metrics());
        }
        if (await graphiql(req, res)) return;
        if (url.pathname === '/graphql') {
          if (draining) res.setHeader('connection', 'close');
          return await handleGraphQL(req, res, url);
        }
        sendJson(res, 404, { error: 'not found', see: '/graphql' });
      } catch (err) {
        const status = (err as { status?: number }).status ?? 500;
        if (status >= 500) log.error({ err }, 'request failed');
        if (!res.headersSent) sendJson(res, status, { errors: [{ message: status === 413 ? (err as Error).message : 'Internal server error' }] });
        else res.destroy();
      }
    })();
  });
  server.keepAliveTimeout = 5000;

  const wss = new WebSocketServer({ server, path: '/graphql', maxPayload: o.maxBodyBytes });

  // One memory budget per socket, across its subscriptions (see fanout/socketBudget.ts).
  const closeSlowSocket = (socket: WebSocket, why: string): void => {
    socket.close(SLOW_CONSUMER_CLOSE_CODE, 'Subscriber too slow: resubscribe with your last cursor');
    setTimeout(() => socket.terminate(), 1000).unref();
    log.warn({ why }, 'closing a WebSocket that stopped reading');
  };
  const budgets = new WeakMap<WebSocket, SocketBudget>();
  const corked = new WeakSet<WebSocket>();
  let overBudget = 0;
  const budgetOf = (socket: WebSocket): SocketBudget => {
    let budget = budgets.get(socket);
    if (!budget) {
      budget = createSocketBudget(o.socketBudgetBytes, (used) => {
        overBudget++;
        closeSlowSocket(socket, `alerts queued for its subscriptions: ${used} bytes > ${o.socketBudgetBytes}`);
      });
      budgets.set(socket, budget);
    }
    return budget;
  };

  const wsServer = useServer<Record<string, unknown>, { socket: WebSocket }>(
    {
      schema: o.schema,
      context: (ctx, id) => {
        const socket = ctx.extra.socket;
        const budget = budgetOf(socket);
        const transport: DirectTransport = {
          id,
          send: (frame) => {
            // One write per socket per tick: an alert reaching many subscriptions of a socket, or a
            // burst, goes out in one writev instead of one syscall per frame.
            const raw = (socket as unknown as { _socket?: Duplex })._socket;
            if (raw && !corked.has(socket)) {
              corked.add(socket);
              raw.cork();
              process.nextTick(() => {
                corked.delete(socket);
                raw.uncork();
              });
            }
            socket.send(frame);
          },
          backlog: () => socket.bufferedAmount,
          budgetBytes: o.socketBudgetBytes,
          overBudget: () => budget.charge(Number.POSITIVE_INFINITY),
        };
        return { ...o.context, budget, transport } as unknown as Record<string, unknown>;
      },
      onSubscribe: (ctx) => {
        // graphql-ws has already reserved this subscription's id in ctx.subscriptions.
        if (Object.keys(ctx.subscriptions).length > o.maxSubscriptionsPerSocket) {
          return [
            new GraphQLError(`At most ${o.maxSubscriptionsPerSocket} subscriptions per connection; open another connection or narrow them with sensorIds`, {
              extensions: { code: ErrorCode.LIMIT_EXCEEDED, limit: o.maxSubscriptionsPerSocket },
            }),
          ];
        }
        return undefined;
      },
      subscribe: subscribeWithFastPath,
      isProd: o.production,
      onError: (_ctx, _id, _payload, errors) => {
        for (const e of errors) if (!e.extensions?.code) log.error({ err: e }, 'subscription error');
      },
    },
    wss,
  );

  // A client that stops reading lets the socket's send buffer grow; past the bound it is closed
  // with SLOW_CONSUMER_CLOSE_CODE and resumes elsewhere with its last cursor.
  const bufferGuard = setInterval(() => {
    for (const socket of wss.clients) {
      if (socket.bufferedAmount > o.maxSocketBufferBytes) closeSlowSocket(socket, `unsent bytes: ${socket.bufferedAmount}`);
    }
  }, 250);
  bufferGuard.unref();

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
    connections: () => wss.clients.size,
    socketsOverBudget: () => overBudget,
    async drain(graceMs) {
      draining = true;
      clearInterval(bufferGuard);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await wsServer.dispose();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([closed, grace]);
      server.closeAllConnections();
      await apollo.stop();
    },
  };
}
