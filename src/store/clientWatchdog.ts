/**
 * Heals a MongoDB client whose view of the server is stuck.
 *
 * The driver (mongodb 6.22, and 7.x reads the same) marks the server Unknown when an operation hits
 * a closed connection, and waits for its monitor to see the server again. The monitor polls with a
 * `hello` on its own connection. If that connection is closed while the `hello` is being written,
 * the write waits for a `drain` event that a destroyed socket never emits: the check never ends,
 * the monitor never checks again, and every operation of the process fails server selection for
 * good, although the server is back. Seen here when FerretDB restarted under load (1 run in 5 or
 * so), with the monitor stuck in `monitoring` on a closed connection for minutes.
 *
 * So when every store call has failed as unreachable for `stuckAfterMs`, the watchdog asks a fresh
 * connection. If the server answers it, the client is closed and connected again (existing `Db` and
 * `Collection` objects keep working); if not, the server really is down and nothing is done.
 */
import type { Logger } from '../logger.js';

export interface ClientWatchdogOptions {
  /** How long every call must have failed as unreachable before the server is probed. */
  stuckAfterMs: number;
  /** True when a fresh connection (not the client's) gets an answer from the server. */
  probe(): Promise<boolean>;
  /** Closes the client and connects it again. */
  reconnect(): Promise<void>;
  logger: Logger;
  now?: () => number;
}

export interface ClientWatchdog {
  /** A store call failed because the store was unreachable. */
  unreachable(): void;
  /** A store call reached the server. */
  reached(): void;
  /** One check; called on a timer. What it found, for tests and logs. */
  check(): Promise<'healthy' | 'waiting' | 'server down' | 'reconnected'>;
  /** Clients reconnected so far. */
  reconnects(): number;
}

export function createClientWatchdog(o: ClientWatchdogOptions): ClientWatchdog {
  const now = o.now ?? Date.now;
  let failingSince: number | undefined;
  let reconnects = 0;
  let checking = false;
  return {
    unreachable() {
      failingSince ??= now();
    },
    reached() {
      failingSince = undefined;
    },
    async check() {
      if (failingSince === undefined) return 'healthy';
      const failingForMs = now() - failingSince;
      if (failingForMs < o.stuckAfterMs || checking) return 'waiting';
      checking = true;
      try {
        if (!(await o.probe().catch(() => false))) return 'server down';
        o.logger.error(
          { failingForMs },
          'store client stuck: every call fails as unreachable while a fresh connection reaches the server; reconnecting it',
        );
        await o.reconnect();
        reconnects++;
        // Calls failing from here on start a new count.
        failingSince = undefined;
        return 'reconnected';
      } finally {
        checking = false;
      }
    },
    reconnects: () => reconnects,
  };
}
