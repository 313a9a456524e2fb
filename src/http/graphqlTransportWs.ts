/**
 * The graphql-transport-ws protocol, as the server sees it: the subprotocol's name, the close codes
 * (the protocol's, and ours), and the messages a client may send, checked once here at the boundary.
 * What is not one of them is a reason to close the socket with 4400.
 */
import type { GraphQLRequestText } from './admission.js';

export const GRAPHQL_TRANSPORT_WS = 'graphql-transport-ws';

/** Close codes: the protocol's (44xx, 4500), the standard ones we use, and ours. */
export const CloseCode = {
  GoingAway: 1001,
  /** Standard "try again later": too many connections for this credential on this replica. */
  TryAgainLater: 1013,
  /** The client stopped reading: resubscribe with your last cursor (ours). */
  SlowConsumer: 4008,
  BadRequest: 4400,
  Unauthorized: 4401,
  Forbidden: 4403,
  SubprotocolNotAcceptable: 4406,
  ConnectionInitialisationTimeout: 4408,
  SubscriberAlreadyExists: 4409,
  /** The token expired: reconnect with a fresh one and resume from your last cursor (ours). */
  CredentialExpired: 4419,
  TooManyInitialisationRequests: 4429,
  InternalServerError: 4500,
} as const;

/** A close reason must fit a control frame (123 bytes). */
export const closeReason = (reason: string, fallback: string): string =>
  Buffer.byteLength(reason) <= 123 ? reason : fallback;

export type ClientMessage =
  | { type: 'connection_init'; payload?: Record<string, unknown> | null }
  | { type: 'ping'; payload?: Record<string, unknown> | null }
  | { type: 'pong' }
  | { type: 'subscribe'; id: string; payload: GraphQLRequestText & { query: string } }
  | { type: 'complete'; id: string };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A client message, checked once here: its shape as the protocol defines it. A string is the reason
 * it is not one (the socket is then closed with 4400).
 */
export function parseClientMessage(text: string): ClientMessage | string {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return 'Invalid message received: not JSON';
  }
  if (!isRecord(m) || typeof m.type !== 'string') return 'Invalid message received: no type';
  switch (m.type) {
    case 'connection_init':
    case 'ping':
    case 'pong':
      if (m.payload != null && !isRecord(m.payload)) return `Invalid message received: ${m.type} payload`;
      return m as ClientMessage;
    case 'subscribe': {
      if (typeof m.id !== 'string' || m.id.length === 0) return 'Invalid message received: subscribe id';
      const p = m.payload;
      if (!isRecord(p) || typeof p.query !== 'string') return 'Invalid message received: subscribe payload';
      if (p.variables != null && !isRecord(p.variables)) return 'Invalid message received: variables';
      if (p.operationName != null && typeof p.operationName !== 'string')
        return 'Invalid message received: operationName';
      if (p.extensions != null && !isRecord(p.extensions)) return 'Invalid message received: extensions';
      return m as ClientMessage;
    }
    case 'complete':
      if (typeof m.id !== 'string' || m.id.length === 0) return 'Invalid message received: complete id';
      return m as ClientMessage;
    default:
      return closeReason(`Invalid message received: unexpected type ${m.type}`, 'Invalid message received');
  }
}
