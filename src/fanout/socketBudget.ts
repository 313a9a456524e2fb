/**
 * Memory budget of one WebSocket, shared by all its subscriptions. Every alert queued for a
 * subscriber on that socket is charged here until it is handed to the socket; past the limit the
 * owner (the HTTP layer) closes the socket with a documented code, which frees every queue at once.
 * The client resumes each subscription with its last cursor and loses nothing.
 *
 * Subscriptions on the direct path (http/overheatAlertsFastPath.ts) queue nothing here: their
 * frames go straight to the socket, whose unsent bytes the WebSocket server bounds against the same
 * budget (http/subscriptionServer.ts). Subscriptions on the graphql-js path queue alerts in their
 * feed until the server takes them, and those are charged here.
 */

export interface SocketBudget {
  /** The socket's limit, in bytes. */
  readonly limit: number;
  /** Charges bytes; returns false (and reports it once) when the socket is over its limit. */
  charge(bytes: number): boolean;
  release(bytes: number): void;
  used(): number;
}

/**
 * What one queued alert holds on the heap: the delivered object (ten properties) and its own cursor
 * string; the alert's dates, location and ids are shared with every other subscriber's copy. An
 * estimate on the high side (V8 object and string headers included).
 */
export function queuedAlertBytes(alert: { readonly cursor: string }): number {
  return 256 + 2 * alert.cursor.length;
}

export function createSocketBudget(limitBytes: number, onExceeded: (usedBytes: number) => void): SocketBudget {
  let used = 0;
  let exceeded = false;
  return {
    limit: limitBytes,
    charge(bytes) {
      used += bytes;
      if (used <= limitBytes) return true;
      if (!exceeded) {
        exceeded = true;
        onExceeded(used);
      }
      return false;
    },
    release(bytes) {
      used = Math.max(0, used - bytes);
    },
    used: () => used,
  };
}
