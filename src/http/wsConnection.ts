/**
 * One WebSocket of our graphql-transport-ws server (subscriptionServer.ts), as the server keeps it:
 * one object per socket, which writes the frames of its operations itself (see Connection.write),
 * and the timers a connection runs on its own (connection_init wait, token expiry).
 */
import type { Duplex } from 'node:stream';
import { GraphQLError, type ExecutionResult } from 'graphql';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/credentials.js';
import type { SocketBudget } from '../fanout/socketBudget.js';
import type { GraphQLContext } from '../resolvers/services.js';
import { CloseCode } from './graphqlTransportWs.js';
import type { FrameWriter } from './overheatAlertsFastPath.js';
import type { SubscriptionServerOptions } from './subscriptionServerOptions.js';
import { joinedTextFrame, textFrame } from './wsFrames.js';

/** Heap bytes an unsent payload byte costs on a WebSocket (frame headers, write-queue entries). */
export const UNSENT_BYTE_COST = 2;

export const enum Phase {
  /** Waiting for connection_init. */
  New,
  /** connection_init received, credential being checked. */
  Initialising,
  Ready,
}

/** What a running operation can be told: stop (the client completed it, or the socket closed). */
export interface Running {
  stop(): void;
}

/** What every connection of one server shares. */
export interface Shared {
  readonly o: SubscriptionServerOptions;
  /**
   * Where the feeds stop handing a socket more (SubscriberOutbox's hasRoom, fanout/subscriberOutbox.ts): SINK_LOW_WATER_BYTES, or the
   * budget counted at UNSENT_BYTE_COST, whichever is lower. A reader stays below it.
   */
  readonly pauseLineBytes: number;
  closeOverBudget(c: Connection, why: string): void;
}

/** Everything the server keeps per socket: one object. */
export class Connection implements FrameWriter {
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

export function asGraphQLError(err: unknown): GraphQLError {
  if (err instanceof GraphQLError) return err;
  const original = err instanceof Error ? err : new Error(String(err));
  return new GraphQLError(original.message, { originalError: original });
}

/** The connection_init wait ran out (its timer's callback: one function for every socket). */
export function initTimeout(c: Connection): void {
  if (c.phase === Phase.New) c.close(CloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout');
}

/** The connection's token expired (its timer's callback). */
export function expire(c: Connection): void {
  c.close(
    CloseCode.CredentialExpired,
    'Credential expired: reconnect with a fresh token and resume from your last cursor',
  );
  setTimeout(() => c.socket.terminate(), 1000).unref();
}

/** Open connections by key (a client address, a credential), for the limits per address and per key. */
export class Tally {
  private readonly counts = new Map<string, number>();

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  bump(key: string, by: number): void {
    const n = this.get(key) + by;
    if (n <= 0) this.counts.delete(key);
    else this.counts.set(key, n);
  }
}
