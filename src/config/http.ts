/**
 * The HTTP and WebSocket listener, and what names this replica: the variables, and the `http`
 * section of the configuration. (NODE_ENV and REPLICA_ID are read at the top of Config.)
 */
import { int, NAME, oneOf, optionalText, text, type Declarations, type Parsed } from './values.js';

export const HTTP_VARIABLES = {
  NODE_ENV: {
    schema: oneOf(['production', 'development', 'test'] as const, 'development'),
    doc: 'production switches off introspection and GraphiQL by default',
  },
  REPLICA_ID: {
    schema: optionalText(NAME),
    doc: 'names the replica in logs and sensor ownership (default replica-<port>-<pid>)',
  },
  HOST: { schema: text('127.0.0.1'), doc: 'listener address' },
  PORT: { schema: int(4000, 0, 65535), doc: 'HTTP + WebSocket listener' },
  HTTP_MAX_BODY_BYTES: {
    schema: int(1_048_576, 1024, 64 * 1_048_576),
    doc: 'largest request body and WebSocket message',
  },
  WS_KEEPALIVE_MS: {
    schema: int(12_000, 100, 600_000),
    doc: 'ping interval; a WebSocket that answers no ping within it is terminated',
  },
  WS_INIT_TIMEOUT_MS: { schema: int(3000, 100, 60_000), doc: 'time a WebSocket has to send connection_init (4408)' },
} as const satisfies Declarations;

export interface HttpSettings {
  readonly host: string;
  readonly port: number;
  /** Largest accepted GraphQL request body, in bytes. */
  readonly maxBodyBytes: number;
  /** A WebSocket that answers no ping within this is terminated. */
  readonly wsKeepAliveMs: number;
  /** Time a new WebSocket has to send connection_init (close 4408). */
  readonly wsInitTimeoutMs: number;
}

export function httpSettings(e: Parsed<typeof HTTP_VARIABLES>): HttpSettings {
  return {
    host: e.HOST,
    port: e.PORT,
    maxBodyBytes: e.HTTP_MAX_BODY_BYTES,
    wsKeepAliveMs: e.WS_KEEPALIVE_MS,
    wsInitTimeoutMs: e.WS_INIT_TIMEOUT_MS,
  };
}
