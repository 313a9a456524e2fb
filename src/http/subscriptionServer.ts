/**
 * The WebSocket side of the front door: a `graphql-transport-ws` server of our own, on the `ws`
 * sockets of the HTTP server. It speaks the protocol the graphql-ws client, GraphiQL and the
 * dashboard speak (connection_init / connection_ack, ping / pong, subscribe, next, error, complete,
 * and the protocol's close codes), and it adds what this API needs around it: a credential at
 * connection_init, connection limits, a memory budget per socket, and the expiry of a token.
 *
 * Why not graphql-ws' `useServer`: it keeps, per connection and per subscription, closures, timers,
 * pending async functions and an awaited send for every frame. An idle subscription cost about
 * 6.4 KB of its machinery above the socket's own 2.5 KB (bench/raw/idleMemory.ts). Here a
 * connection is one object, an overheatAlerts subscription on the direct path is one sink object
 * writing frames straight to the socket (http/overheatAlertsFastPath.ts), the keep-alive is one
 * timer for all sockets, and listeners are shared functions, not closures per socket.
 *
 * Here: the connections' lifecycle (accepted, counted, closed). A connection and how it writes:
 * wsConnection.ts; what a client's message does: wsMessageHandler.ts; keep-alive and slow sockets:
 * wsSlowSockets.ts; the options: subscriptionServerOptions.ts.
 */
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { SINK_LOW_WATER_BYTES } from '../fanout/alertFeed.js';
import { CloseCode, GRAPHQL_TRANSPORT_WS } from './graphqlTransportWs.js';
import type { SubscriptionServerOptions } from './subscriptionServerOptions.js';
import { Connection, initTimeout, Tally, UNSENT_BYTE_COST, type Shared } from './wsConnection.js';
import { createMessageHandler } from './wsMessageHandler.js';
import { closeSlowSocket, watchSockets } from './wsSlowSockets.js';

export type { SubscriptionServerOptions } from './subscriptionServerOptions.js';

export interface SubscriptionServer {
  /** Open WebSocket connections. */
  connections(): number;
  /** Sockets closed because they went over their budget. */
  socketsOverBudget(): number;
  /** Closes every socket with 1001 and stops accepting. */
  dispose(): Promise<void>;
}

export function startSubscriptionServer(o: SubscriptionServerOptions): SubscriptionServer {
  const log = o.logger.child({ module: 'http.ws' });
  const initWaitMs = o.connectionInitWaitMs ?? 3000;
  const keepAliveMs = o.keepAliveMs ?? 12_000;
  const perAddress = new Tally();
  const perKey = new Tally();
  const connections = new Map<WebSocket, Connection>();
  let overBudget = 0;

  const shared: Shared = {
    o,
    pauseLineBytes: Math.min(SINK_LOW_WATER_BYTES, o.socketBudgetBytes / UNSENT_BYTE_COST),
    closeOverBudget(c, why) {
      if (c.closedOverBudget) return;
      c.closedOverBudget = true;
      overBudget++;
      closeSlowSocket(c, why, log);
    },
  };
  const receive = createMessageHandler(o, shared, perKey, log);

  const wss = new WebSocketServer({
    server: o.server,
    path: o.path,
    maxPayload: o.maxPayloadBytes,
    handleProtocols: (protocols) => (protocols.has(GRAPHQL_TRANSPORT_WS) ? GRAPHQL_TRANSPORT_WS : false),
    verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, status?: number, message?: string) => void) => {
      if (o.isDraining()) return done(false, 503, 'Shutting down');
      if (wss.clients.size >= o.maxConnections) return done(false, 503, 'Too many connections on this replica');
      const address = info.req.socket.remoteAddress ?? '?';
      if (perAddress.get(address) >= o.maxConnectionsPerAddress)
        return done(false, 429, 'Too many connections from this address');
      done(true);
    },
  });
  wss.on('error', (err) => log.error({ err }, 'WebSocket server error'));

  // Shared listeners: `this` is the socket.
  function onMessage(this: WebSocket, data: RawData): void {
    const c = connections.get(this);
    if (!c) return;
    const text = Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Buffer.from(data).toString('utf8');
    receive(c, text).catch((err: unknown) => {
      log.error({ err }, 'WebSocket message handling failed');
      c.close(CloseCode.InternalServerError, 'Internal server error');
    });
  }
  function onPong(this: WebSocket): void {
    const c = connections.get(this);
    if (c) c.alive = true;
  }
  function onError(this: WebSocket, err: Error): void {
    // ws has already failed the connection (a frame too large, a bad frame); it closes by itself.
    log.debug({ err: err.message }, 'WebSocket error');
  }
  function onClose(this: WebSocket): void {
    const c = connections.get(this);
    if (!c) return;
    connections.delete(this);
    clearTimeout(c.timer);
    perAddress.bump(c.address, -1);
    if (c.principal) perKey.bump(c.principal.id, -1);
    const operations = c.operations;
    c.operations = undefined;
    if (!operations) return;
    const running = [...operations.values()];
    operations.clear(); // one still being set up sees it is gone
    for (const r of running) r?.stop();
  }

  wss.on('connection', (socket, req) => {
    const address = req.socket.remoteAddress ?? '?';
    const c = new Connection(socket, address, shared);
    connections.set(socket, c);
    perAddress.bump(address, 1);
    socket.on('message', onMessage);
    socket.on('pong', onPong);
    socket.on('error', onError);
    socket.once('close', onClose);
    if (socket.protocol !== GRAPHQL_TRANSPORT_WS) {
      c.close(CloseCode.SubprotocolNotAcceptable, 'Subprotocol not acceptable');
      return;
    }
    c.timer = setTimeout(initTimeout, initWaitMs, c);
    c.timer.unref();
  });

  const stopWatching = watchSockets(connections, shared, keepAliveMs, log);

  return {
    connections: () => wss.clients.size,
    socketsOverBudget: () => overBudget,
    async dispose() {
      stopWatching();
      for (const socket of wss.clients) socket.close(CloseCode.GoingAway, 'Going away');
      await new Promise<void>((resolve, reject) => wss.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
