/**
 * The timers our graphql-transport-ws server (subscriptionServer.ts) runs over all its sockets: the
 * keep-alive, and the guard that closes a socket whose client stopped reading (4008).
 */
import type { WebSocket } from 'ws';
import type { Logger } from '../logger.js';
import { CloseCode } from './graphqlTransportWs.js';
import { UNSENT_BYTE_COST, type Connection, type Shared } from './wsConnection.js';

/** Checks (100 ms apart) a socket may sit at the feed's pause line without reading before it is closed. */
const STALLED_CHECKS = 10;

/** Closes with 4008 a socket that stopped reading; the client resumes elsewhere with its last cursor. */
export function closeSlowSocket(c: Connection, why: string, log: Logger): void {
  c.close(CloseCode.SlowConsumer, 'Subscriber too slow: resubscribe with your last cursor');
  setTimeout(() => c.socket.terminate(), 1000).unref();
  log.warn({ why }, 'closing a WebSocket that stopped reading');
}

/** Starts the keep-alive and the slow-socket guard over `connections`; the result stops both. */
export function watchSockets(
  connections: ReadonlyMap<WebSocket, Connection>,
  shared: Shared,
  keepAliveMs: number,
  log: Logger,
): () => void {
  const o = shared.o;
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
        closeSlowSocket(c, `unsent bytes: ${buffered}`, log);
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

  return () => {
    clearInterval(keepAlive);
    clearInterval(bufferGuard);
  };
}
