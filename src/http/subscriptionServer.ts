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
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  GraphQLError,
  OperationTypeNode,
  execute,
  getOperationAST,
  subscribe,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Authenticator, Principal } from '../auth/credentials.js';
import { ErrorCode } from '../errors.js';
import { SINK_LOW_WATER_BYTES } from '../fanout/alertFeed.js';
import { sleep } from '../shared/retry.js';
import { createSocketBudget, type SocketBudget } from '../fanout/socketBudget.js';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from '../resolvers/services.js';
import type { Admission, GraphQLRequestText } from './admission.js';
import { CloseCode, GRAPHQL_TRANSPORT_WS, closeReason, parseClientMessage } from './graphqlTransportWs.js';
import { subscribeDirect, type FrameWriter } from './overheatAlertsFastPath.js';
import { joinedTextFrame, textFrame } from './wsFrames.js';

export interface SubscriptionServerOptions {
  server: Server;
  path: string;
  schema: GraphQLSchema;
  /** Shared by every operation; each connection adds its principal and its budget. */
  context: GraphQLContext;
  authenticator: Authenticator;
  admission: Admission;
  /** Masks errors for clients (see errorMasker in server.ts). */
  maskError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  logger: Logger;
  maxPayloadBytes: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxConnectionsPerKey: number;
  maxSubscriptionsPerSocket: number;
  /** Bytes a socket may have waiting to be sent before it is closed as too slow. */
  maxSocketBufferBytes: number;
  /** Bytes of alerts queued for one socket's subscriptions before it is closed with 4008. */
  socketBudgetBytes: number;
  /** Time a new socket has to send connection_init (default 3 s, as graphql-ws). */
  connectionInitWaitMs?: number;
  /** A socket that answers no ping within this is terminated (default 12 s, as graphql-ws). */
  keepAliveMs?: number;
  /** Refuse new sockets (the HTTP layer is draining). */
  isDraining: () => boolean;
}

export interface SubscriptionServer {
  /** Open WebSocket connections. */
  connections(): number;
  /** Sockets closed because they went over their budget. */
  socketsOverBudget(): number;
  /** Closes every socket with 1001 and stops accepting. */
  dispose(): Promise<void>;
}

/** Heap bytes an unsent payload byte costs on a WebSocket (frame headers, write-queue entries). */
const UNSENT_BYTE_COST = 2;
/** Checks (100 ms apart) a socket may sit at the feed's pause line without reading before it is closed. */
const STALLED_CHECKS = 10;
/** Longest timer Node keeps (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
const enum Phase {
  /** Waiting for connection_init. */
  New,
  /** connection_init received, credential being checked. */
  Initialising,
  Ready,
}

/** What a running operation can be told: stop (the client completed it, or the socket closed). */
interface Running {
  stop(): void;
}

/** Everything the server keeps per socket: one object. */
class Connection implements FrameWriter {
  phase = Phase.New;
  principal: Principal | undefined;
  context: GraphQLContext | undefined;
  budget: SocketBudget | undefined;
  /** Operations by id; null while one is being set up. Created at the first subscribe. */
  operations: Map<string, Running | null> | undefined;
  /** The connection_init wait, then (for an expiring token) its expiry. */
  timer: NodeJS.Timeout | undefined;
  /** The TCP socket while it is corked for the rest of the tick (see write). */
  corked: Duplex | undefined;
  closedOverBudget = false;
  unsentAtCheck = 0;
  /** Consecutive checks that found this socket at the feed's pause line, its unsent bytes not shrinking. */
  stalledChecks = 0;
  alive = true;

  constructor(
    readonly socket: WebSocket,
    readonly address: string,
    readonly shared: Shared,
  ) {}

  get budgetBytes(): number {
    return this.shared.o.socketBudgetBytes;
  }

  get pauseLineBytes(): number {
    return this.shared.pauseLineBytes;
  }

  send(frame: string): void {
    const raw = this.rawSocket();
    if (raw === null) return;
    if (raw === undefined) return this.socket.send(frame);
    this.write(raw, textFrame(frame));
  }

  sendJoined(head: Buffer, body: Buffer): void {
    const raw = this.rawSocket();
    if (raw === null) return;
    if (raw === undefined) return this.socket.send(Buffer.concat([head, body]), { binary: false });
    this.write(raw, joinedTextFrame(head, body));
  }

  /**
   * Where this server writes its frames itself: the TCP socket, when there is no extension (the
   * server offers none), so a frame is written whole, as one buffer (`ws` would write header and
   * payload separately). Its own frames (pings, close) go to the same socket, in order: without
   * compression its sender never queues. Undefined: `ws` frames them. Null: the socket is not open.
   */
  private rawSocket(): Duplex | undefined | null {
    const socket = this.socket;
    if (socket.readyState !== socket.OPEN) return null;
    const raw = (socket as unknown as { _socket?: Duplex })._socket;
    return raw && socket.extensions === '' ? raw : undefined;
  }

  private write(raw: Duplex, frame: Buffer): void {
    // One write per socket per tick: an alert reaching many subscriptions of a socket, or a burst,
    // goes out in one writev instead of one syscall per frame.
    if (!this.corked) {
      this.corked = raw;
      raw.cork();
      if (corked.push(this) === 1) process.nextTick(uncorkAll);
    }
    raw.write(frame);
  }

  backlog(): number {
    return this.socket.bufferedAmount;
  }

  overBudget(): void {
    this.shared.closeOverBudget(this, `unsent bytes ${this.socket.bufferedAmount} > ${this.budgetBytes}`);
  }

  /** A direct subscription ended: by the server (complete), or by a failure (error). */
  ended(id: string, error?: unknown): void {
    if (!this.operations?.delete(id)) return; // the client completed it, or the socket closed
    if (error === undefined) this.complete(id);
    else this.error(id, [asGraphQLError(error)]);
  }

  next(id: string, result: ExecutionResult): void {
    const payload = result.errors
      ? { ...result, errors: result.errors.map((e) => this.shared.o.maskError(e.toJSON(), e)) }
      : result;
    this.send(JSON.stringify({ id, type: 'next', payload }));
  }

  error(id: string, errors: readonly GraphQLError[]): void {
    this.send(
      JSON.stringify({ id, type: 'error', payload: errors.map((e) => this.shared.o.maskError(e.toJSON(), e)) }),
    );
  }

  complete(id: string): void {
    this.send(`{"id":${JSON.stringify(id)},"type":"complete"}`);
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }
}

/** Connections corked this tick: one callback uncorks them all. */
const corked: Connection[] = [];

function uncorkAll(): void {
  // Taken first: a write that an uncork sets off corks again, for the next tick. A socket closing
  // meanwhile is uncorked too: its close frame sits behind the cork.
  for (const c of corked.splice(0)) {
    const raw = c.corked!;
    c.corked = undefined;
    raw.uncork();
  }
}

function asGraphQLError(err: unknown): GraphQLError {
  if (err instanceof GraphQLError) return err;
  const original = err instanceof Error ? err : new Error(String(err));
  return new GraphQLError(original.message, { originalError: original });
}

function isAsyncIterable(v: unknown): v is AsyncIterableIterator<ExecutionResult> {
  return typeof (v as { [Symbol.asyncIterator]?: unknown } | null)?.[Symbol.asyncIterator] === 'function';
}

interface Shared {
  readonly o: SubscriptionServerOptions;
  /**
   * Where the feeds stop handing a socket more (SubscriberOutbox's hasRoom): SINK_LOW_WATER_BYTES, or the
   * budget counted at UNSENT_BYTE_COST, whichever is lower. A reader stays below it.
   */
  readonly pauseLineBytes: number;
  closeOverBudget(c: Connection, why: string): void;
}

export function startSubscriptionServer(o: SubscriptionServerOptions): SubscriptionServer {
  const log = o.logger.child({ module: 'http.ws' });
  const initWaitMs = o.connectionInitWaitMs ?? 3000;
  const keepAliveMs = o.keepAliveMs ?? 12_000;
  const perAddress = new Map<string, number>();
  const perKey = new Map<string, number>();
  const bump = (map: Map<string, number>, key: string, by: number): void => {
    const n = (map.get(key) ?? 0) + by;
    if (n <= 0) map.delete(key);
    else map.set(key, n);
  };
  const connections = new Map<WebSocket, Connection>();
  let overBudget = 0;

  const closeSlowSocket = (c: Connection, why: string): void => {
    c.close(CloseCode.SlowConsumer, 'Subscriber too slow: resubscribe with your last cursor');
    setTimeout(() => c.socket.terminate(), 1000).unref();
    log.warn({ why }, 'closing a WebSocket that stopped reading');
  };
  const shared: Shared = {
    o,
    pauseLineBytes: Math.min(SINK_LOW_WATER_BYTES, o.socketBudgetBytes / UNSENT_BYTE_COST),
    closeOverBudget(c, why) {
      if (c.closedOverBudget) return;
      c.closedOverBudget = true;
      overBudget++;
      closeSlowSocket(c, why);
    },
  };

  const wss = new WebSocketServer({
    server: o.server,
    path: o.path,
    maxPayload: o.maxPayloadBytes,
    handleProtocols: (protocols) => (protocols.has(GRAPHQL_TRANSPORT_WS) ? GRAPHQL_TRANSPORT_WS : false),
    verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, status?: number, message?: string) => void) => {
      if (o.isDraining()) return done(false, 503, 'Shutting down');
      if (wss.clients.size >= o.maxConnections) return done(false, 503, 'Too many connections on this replica');
      const address = info.req.socket.remoteAddress ?? '?';
      if ((perAddress.get(address) ?? 0) >= o.maxConnectionsPerAddress)
        return done(false, 429, 'Too many connections from this address');
      done(true);
    },
  });
  wss.on('error', (err) => log.error({ err }, 'WebSocket server error'));

  /** connection_init: the credential, then the per-credential limit, then the ack. */
  const initialise = async (c: Connection, params: Record<string, unknown> | null | undefined): Promise<void> => {
    const auth = await o.authenticator.authenticate(params?.authorization ?? params?.Authorization);
    if (c.socket.readyState !== c.socket.OPEN) return;
    if (!auth.ok) {
      log.info({ reason: auth.reason }, 'WebSocket refused at connection_init');
      return c.close(CloseCode.Forbidden, 'Forbidden');
    }
    const principal = auth.principal;
    if ((perKey.get(principal.id) ?? 0) >= o.maxConnectionsPerKey)
      return c.close(CloseCode.TryAgainLater, 'Too many connections for this credential');
    bump(perKey, principal.id, 1);
    c.principal = principal;
    c.budget = createSocketBudget(o.socketBudgetBytes, (used) =>
      shared.closeOverBudget(c, `alerts queued for its subscriptions: ${used} bytes > ${o.socketBudgetBytes}`),
    );
    c.context = { ...o.context, principal, budget: c.budget };
    if (principal.expiresAt !== undefined) {
      c.timer = setTimeout(expire, Math.min(MAX_TIMER_MS, Math.max(0, principal.expiresAt - Date.now())), c);
      c.timer.unref();
    }
    c.phase = Phase.Ready;
    c.send('{"type":"connection_ack"}');
  };

  /** subscribe: limits and admission, then the direct path or graphql-js; next / error / complete. */
  const start = async (c: Connection, id: string, payload: GraphQLRequestText): Promise<void> => {
    const operations = c.operations!;
    const refuse = (errors: readonly GraphQLError[]): void => {
      if (operations.delete(id)) c.error(id, errors);
    };
    if (operations.size > o.maxSubscriptionsPerSocket) {
      return refuse([
        new GraphQLError(
          `At most ${o.maxSubscriptionsPerSocket} subscriptions per connection; open another connection or narrow them with sensorIds`,
          { extensions: { code: ErrorCode.LIMIT_EXCEEDED, limit: o.maxSubscriptionsPerSocket } },
        ),
      ]);
    }
    const admitted = await o.admission.admit(c.principal!, payload);
    if (!admitted.ok) return refuse([admitted.error]);
    const invalid = o.admission.validate(admitted.document);
    if (invalid.length > 0) return refuse(invalid);
    const operationName = typeof payload.operationName === 'string' ? payload.operationName : undefined;
    const operation = getOperationAST(admitted.document, operationName);
    if (!operation) return refuse([new GraphQLError('Unable to identify operation')]);
    if (!operations.has(id)) return; // completed by the client meanwhile
    const args = {
      schema: o.schema,
      document: admitted.document,
      operationName,
      variableValues: payload.variables as Record<string, unknown> | undefined,
      contextValue: c.context,
    };
    if (operation.operation === OperationTypeNode.SUBSCRIPTION) {
      const direct = subscribeDirect(args, c, id);
      if (direct && 'running' in direct) {
        operations.set(id, direct.running);
        return;
      }
      if (direct) {
        if (operations.delete(id)) {
          c.next(id, { errors: direct.errors });
          c.complete(id);
        }
        return;
      }
    }
    const result = operation.operation === OperationTypeNode.SUBSCRIPTION ? await subscribe(args) : await execute(args);
    if (!isAsyncIterable(result)) {
      if (operations.delete(id)) {
        c.next(id, result);
        c.complete(id);
      }
      return;
    }
    if (!operations.has(id)) {
      void result.return?.();
      return;
    }
    operations.set(id, { stop: () => void result.return?.() });
    try {
      for await (const r of result) {
        if (!operations.has(id)) break;
        c.next(id, r);
        // A reader that falls behind is not pulled from: its backlog stays in the subscription's
        // queue, charged to its budget (4008 past it), as on the direct path (alertFeed.ts).
        while (c.backlog() > SINK_LOW_WATER_BYTES && c.socket.readyState === c.socket.OPEN) await sleep(10);
      }
    } catch (err) {
      if (operations.delete(id)) c.error(id, [asGraphQLError(err)]);
      return;
    }
    if (operations.delete(id)) c.complete(id);
  };

  const receive = async (c: Connection, text: string): Promise<void> => {
    const message = parseClientMessage(text);
    if (typeof message === 'string') return c.close(CloseCode.BadRequest, message);
    switch (message.type) {
      case 'connection_init':
        if (c.phase !== Phase.New)
          return c.close(CloseCode.TooManyInitialisationRequests, 'Too many initialisation requests');
        c.phase = Phase.Initialising;
        clearTimeout(c.timer);
        c.timer = undefined;
        return initialise(c, message.payload);
      case 'ping':
        return c.send(message.payload ? JSON.stringify({ type: 'pong', payload: message.payload }) : '{"type":"pong"}');
      case 'pong':
        return;
      case 'subscribe': {
        if (c.phase !== Phase.Ready) return c.close(CloseCode.Unauthorized, 'Unauthorized');
        const operations = (c.operations ??= new Map());
        if (operations.has(message.id))
          return c.close(
            CloseCode.SubscriberAlreadyExists,
            closeReason(`Subscriber for ${message.id} already exists`, 'Subscriber already exists'),
          );
        operations.set(message.id, null);
        return start(c, message.id, message.payload);
      }
      case 'complete': {
        const running = c.operations?.get(message.id);
        c.operations?.delete(message.id);
        running?.stop();
        return;
      }
    }
  };

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
    bump(perAddress, c.address, -1);
    if (c.principal) bump(perKey, c.principal.id, -1);
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
    bump(perAddress, address, 1);
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

  // Keep-alive, one timer for all sockets: a socket that did not answer the last ping is terminated.
  const keepAlive = setInterval(() => {
    for (const c of connections.values()) {
      if (!c.alive) {
        c.socket.terminate();
        continue;
      }
      c.alive = false;
      c.socket.ping();
    }
  }, keepAliveMs);
  keepAlive.unref();

  // A client that stops reading lets the socket's send buffer grow; past the bound it is closed
  // with 4008 and resumes elsewhere with its last cursor.
  //
  // A reader that falls behind is closed sooner: an unsent frame costs about twice its bytes in the
  // heap (its string, the frame header Buffer, the write-queue entries), so a socket whose unsent
  // bytes, at that cost, pass the budget and did not shrink since the last check (100 ms) is closed
  // with 4008. A client that reads keeps its unsent bytes near zero on any network that can carry
  // its alerts, bursts included; the payload-byte budget still applies to it.
  //
  // The feeds stop handing a socket more once its unsent bytes reach a line (SubscriberOutbox's hasRoom:
  // SINK_LOW_WATER_BYTES, or the budget counted twice), and keep the rest in the store. So a client
  // that stops reading can also sit at that line, holding little: one whose unsent bytes stay at it,
  // not shrinking, for STALLED_CHECKS checks (1 s) is closed with 4008 as well.
  const bufferGuard = setInterval(() => {
    for (const c of connections.values()) {
      if (c.socket.readyState !== c.socket.OPEN) continue; // closing already
      const buffered = c.socket.bufferedAmount;
      if (buffered > o.maxSocketBufferBytes) {
        closeSlowSocket(c, `unsent bytes: ${buffered}`);
        continue;
      }
      const notShrinking = buffered >= c.unsentAtCheck;
      c.unsentAtCheck = buffered;
      c.stalledChecks = notShrinking && buffered >= shared.pauseLineBytes ? c.stalledChecks + 1 : 0;
      if (notShrinking && buffered * UNSENT_BYTE_COST > o.socketBudgetBytes) {
        shared.closeOverBudget(
          c,
          `${buffered} unsent bytes, not shrinking (heap about ${buffered * UNSENT_BYTE_COST})`,
        );
      } else if (c.stalledChecks >= STALLED_CHECKS) {
        shared.closeOverBudget(c, `${buffered} unsent bytes, not shrinking for ${STALLED_CHECKS} checks`);
      }
    }
  }, 100);
  bufferGuard.unref();

  return {
    connections: () => wss.clients.size,
    socketsOverBudget: () => overBudget,
    async dispose() {
      clearInterval(keepAlive);
      clearInterval(bufferGuard);
      for (const socket of wss.clients) socket.close(CloseCode.GoingAway, 'Going away');
      await new Promise<void>((resolve, reject) => wss.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

function initTimeout(c: Connection): void {
  if (c.phase === Phase.New) c.close(CloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout');
}

function expire(c: Connection): void {
  c.close(
    CloseCode.CredentialExpired,
    'Credential expired: reconnect with a fresh token and resume from your last cursor',
  );
  setTimeout(() => c.socket.terminate(), 1000).unref();
}
