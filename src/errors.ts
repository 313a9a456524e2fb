/**
 * Stable error codes. Clients switch on `extensions.code`; messages may change, codes do not.
 */
import { GraphQLError } from 'graphql';

export const ErrorCode = {
  /** The request is invalid; `extensions.field` names the offending input. Do not retry unchanged. */
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  /** A limit (sensor count, batch size, page size) was exceeded. */
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  /** Kafka could not accept the readings in time. Safe to retry: readings are deduplicated. */
  KAFKA_UNAVAILABLE: 'KAFKA_UNAVAILABLE',
  /** The history store is unreachable. Retry later. */
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  /** No credential, or a bad, malformed or expired one. Send `Authorization: Bearer <key or token>`. */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** The credential is valid but its role or sensor scope does not allow this. Do not retry. */
  FORBIDDEN: 'FORBIDDEN',
  /** This credential's rate limit is reached; `extensions.retryAfterMs` (and HTTP Retry-After) say when to retry. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** Too many history reads on this replica right now. Retry shortly. */
  STORE_BUSY: 'STORE_BUSY',
  /** What the request names (an incident id) does not exist, or is outside the credential's scope. */
  NOT_FOUND: 'NOT_FOUND',
  /** Accepted, but not applied yet (an acknowledgement waiting in the stream); the change follows shortly. */
  NOT_APPLIED_YET: 'NOT_APPLIED_YET',
  /** The replica is shutting down. Retry on another replica. */
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export function badUserInput(field: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: ErrorCode.BAD_USER_INPUT, field } });
}

export function limitExceeded(field: string, message: string, limit: number): GraphQLError {
  return new GraphQLError(message, { extensions: { code: ErrorCode.LIMIT_EXCEEDED, field, limit } });
}

export function retryable(code: ErrorCode, message: string, retryAfterMs = 1000): GraphQLError {
  return new GraphQLError(message, { extensions: { code, retryable: true, retryAfterMs } });
}

/** What a client is told when an outside system is unreachable: its stable code, and a message written for it. */
const UNAVAILABLE = {
  kafka: { code: ErrorCode.KAFKA_UNAVAILABLE, message: 'Kafka is unreachable; retry shortly' },
  mongodb: { code: ErrorCode.STORE_UNAVAILABLE, message: 'The history store is unreachable; retry shortly' },
} as const;

/**
 * Raised by adapters when their outside system is unreachable; carries whether a retry can help, and
 * what a client is told (`code`, `clientMessage`), so callers need not know which system failed.
 */
export class DependencyError extends Error {
  readonly code: ErrorCode;
  readonly clientMessage: string;
  constructor(
    readonly dependency: keyof typeof UNAVAILABLE,
    message: string,
    readonly retriable = true,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DependencyError';
    this.code = UNAVAILABLE[dependency].code;
    this.clientMessage = UNAVAILABLE[dependency].message;
  }
}
