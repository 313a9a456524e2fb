/** The options of our graphql-transport-ws server (subscriptionServer.ts), shared by its modules. */
import type { Server } from 'node:http';
import type { GraphQLFormattedError, GraphQLSchema } from 'graphql';
import type { Authenticator } from '../auth/credentials.js';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from '../resolvers/services.js';
import type { Admission } from './admission.js';

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
