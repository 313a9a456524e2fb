/**
 * Child process of bench/raw/ws.ts: opens N bare `ws` clients to the parent's server and measures
 * what they receive, so the clients do not share the server's event loop. Talks to the parent over
 * IPC only (requests with an id, one reply each); reports summaries, never per-message data.
 *
 * Payloads start with `{"p":"X","t":<sentAt>,` (X: W warm-up, L latency, S saturation), so the
 * clients read the phase and the send time without parsing the whole JSON.
 */
import { WebSocket } from 'ws';
import { Samples, nowMs, type Percentiles } from '../lib/stats.js';

export type ToClients =
  | { id: number; type: 'connect'; url: string; count: number; batch: number }
  | { id: number; type: 'counts' }
  | { id: number; type: 'report' }
  | { id: number; type: 'close' };

export interface ClientCounts {
  warm: number;
  latency: number;
  saturate: number;
  /** nowMs() of the first and last saturation delivery. */
  satFirstAt: number;
  satLastAt: number;
  errors: number;
  closed: number;
}

export type FromClients =
  | { id: number; type: 'connected'; count: number; ms: number }
  | { id: number; type: 'counts'; counts: ClientCounts }
  | { id: number; type: 'report'; counts: ClientCounts; latency: Percentiles }
  | { id: number; type: 'closed' }
  | { id: number; type: 'error'; message: string };

const P = 6; // index of the phase letter
const T = 13; // index where the send time starts
const COMMA = 44;
const W = 87;
const L = 76;
const S = 83;

const sockets: WebSocket[] = [];
const samples = new Samples();
const counts: ClientCounts = { warm: 0, latency: 0, saturate: 0, satFirstAt: 0, satLastAt: 0, errors: 0, closed: 0 };

function onMessage(data: Buffer): void {
  const phase = data[P];
  if (phase === L) {
    const end = data.indexOf(COMMA, T);
    samples.add(nowMs() - Number(data.toString('latin1', T, end)));
    counts.latency++;
  } else if (phase === S) {
    const at = nowMs();
    if (counts.saturate++ === 0) counts.satFirstAt = at;
    counts.satLastAt = at;
  } else if (phase === W) {
    counts.warm++;
  }
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.on('message', (data) => onMessage(data as Buffer));
    ws.on('error', () => counts.errors++);
    ws.on('close', () => counts.closed++);
  });
}

const reply = (m: FromClients): void => {
  process.send?.(m);
};

process.on('message', (raw) => {
  const m = raw as ToClients;
  void (async () => {
    try {
      switch (m.type) {
        case 'connect': {
          const started = performance.now();
          while (sockets.length < m.count) {
            const n = Math.min(m.batch, m.count - sockets.length);
            sockets.push(...(await Promise.all(Array.from({ length: n }, () => open(m.url)))));
          }
          reply({ id: m.id, type: 'connected', count: sockets.length, ms: performance.now() - started });
          break;
        }
        case 'counts':
          reply({ id: m.id, type: 'counts', counts: { ...counts } });
          break;
        case 'report':
          reply({ id: m.id, type: 'report', counts: { ...counts }, latency: samples.percentiles() });
          break;
        case 'close':
          for (const ws of sockets) ws.terminate();
          reply({ id: m.id, type: 'closed' });
          process.disconnect?.();
          break;
      }
    } catch (err) {
      reply({ id: m.id, type: 'error', message: (err as Error).message });
    }
  })();
});

// Parent gone (crash or kill): do not linger.
process.on('disconnect', () => {
  for (const ws of sockets) ws.terminate();
  setTimeout(() => process.exit(0), 100).unref();
});
