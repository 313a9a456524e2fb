/**
 * A child process holding many graphql-ws subscribers (one WebSocket each), so the clients do not
 * share the event loop of the benchmark driver. Controlled over IPC:
 *   parent -> { cmd: 'open', urls, count, query } | { cmd: 'report' } | { cmd: 'reset' } | { cmd: 'close' }
 *   child  -> { ev: 'opened', count } | { ev: 'report', received, latency } | { ev: 'closed' }
 * Latency of a delivery = arrival time - the reading's timestamp (set by the load generator at send).
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { Samples } from './stats.js';

let clients: Client[] = [];
let samples = new Samples();
let received = 0;

const send = (m: unknown): void => void process.send?.(m);

process.on('message', (m: { cmd: string; urls?: string[]; count?: number; query?: string }) => void handle(m));

async function handle(m: { cmd: string; urls?: string[]; count?: number; query?: string }): Promise<void> {
  if (m.cmd === 'open') {
    const urls = m.urls!;
    const opened: Promise<void>[] = [];
    for (let i = 0; i < m.count!; i++) {
      const url = urls[i % urls.length]!.replace(/^http/, 'ws');
      let ack!: () => void;
      const connected = new Promise<void>((r) => (ack = r));
      const client = createClient({
        url,
        webSocketImpl: WebSocket,
        lazy: false,
        retryAttempts: 0,
        on: { connected: () => ack() },
      });
      clients.push(client);
      client.subscribe<{ overheatAlerts: { ts: string } }>(
        { query: m.query ?? 'subscription { overheatAlerts { id sensorId temperature ts cursor } }' },
        {
          next: (r) => {
            received++;
            const ts = r.data?.overheatAlerts.ts;
            if (ts) samples.add(Date.now() - Date.parse(ts));
          },
          error: () => undefined,
          complete: () => undefined,
        },
      );
      opened.push(connected);
      // Connect in waves: a burst of thousands of handshakes would measure the accept queue, not us.
      if (i % 200 === 199) await Promise.all(opened.slice(-200));
    }
    await Promise.all(opened);
    send({ ev: 'opened', count: clients.length });
  } else if (m.cmd === 'report') {
    send({ ev: 'report', received, latency: samples.percentiles() });
  } else if (m.cmd === 'reset') {
    samples = new Samples();
    received = 0;
    send({ ev: 'reset' });
  } else if (m.cmd === 'close') {
    await Promise.all(clients.map((c) => Promise.resolve(c.dispose())));
    clients = [];
    send({ ev: 'closed' });
    process.exit(0);
  }
}
