/**
 * A child process holding many subscribers (one WebSocket each), so the clients do not share the
 * event loop of the benchmark driver. Controlled over IPC:
 *   parent -> { cmd: 'open', urls, count, query, lean, authorization, perSensor } | { cmd: 'report' } | { cmd: 'reset' }
 *             | { cmd: 'rotate' } (report, then reset) | { cmd: 'close' }
 *   child  -> { ev: 'opened', count } | { ev: 'report', received, latency, skipped, outOfOrder, perSensor? }
 *             | { ev: 'closed' }
 * Latency of a delivery = arrival time - the reading's timestamp (set by the load generator at send).
 * The subscription's field is whichever the query names (`overheatAlerts`, `readingUpdates`, ...):
 * its `ts` is read, and for live readings its `skipped` summed and its sensor's order checked. With
 * `perSensor`, each subscriber also counts what it received per sensor (exactness checks).
 *
 * Subscribers are the real graphql-ws client, or with `lean` bare `ws` sockets speaking
 * graphql-transport-ws by hand and reading only the `"ts"` of each frame, as cheap per message as
 * the raw `ws` broadcast's clients (bench/raw/wsClients.ts): the fan-out figure is compared with
 * that raw limit, and the clients share the machine's cores with the replicas.
 */
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { Samples } from './stats.js';

let clients: { dispose(): unknown }[] = [];
let samples = new Samples();
let received = 0;
/** Sum of the `skipped` field of what arrived (live readings: readings conflated away). */
let skipped = 0;
/** Updates not newer than the previous one of their sensor for the same subscriber. */
let outOfOrder = 0;
/** With `perSensor`: per subscriber, how many updates of each sensor it received. */
let perSensor: Map<string, number>[] | undefined;

const send = (m: unknown): void => void process.send?.(m);

interface Command {
  cmd: string;
  urls?: string[];
  count?: number;
  query?: string;
  lean?: boolean;
  /** Sent in connection_init (an API key: `Bearer <secret>`). */
  authorization?: string;
  /** Count, per subscriber, what arrives per sensor (reported as `perSensor`). */
  perSensor?: boolean;
}

interface Update {
  ts?: string;
  sensorId?: string;
  skipped?: number;
}
process.on('message', (m: Command) => void handle(m));

const TS = Buffer.from('"ts":"');
const QUOTE = 34;

/** A bare socket speaking graphql-transport-ws: init, one subscribe, then count `next` frames. */
function leanSubscriber(url: string, query: string, connected: () => void): { dispose(): void } {
  const ws = new WebSocket(url, 'graphql-transport-ws', { perMessageDeflate: false });
  let acked = false;
  ws.on('open', () => ws.send('{"type":"connection_init","payload":{}}'));
  ws.on('message', (data: Buffer) => {
    if (!acked) {
      acked = true;
      ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query } }));
      connected();
      return;
    }
    const at = data.indexOf(TS);
    if (at < 0) return; // complete, error, pong
    received++;
    const start = at + TS.length;
    samples.add(Date.now() - Date.parse(data.toString('latin1', start, data.indexOf(QUOTE, start))));
  });
  ws.on('error', () => undefined);
  return { dispose: () => ws.close() };
}

/** What arrived since the last reset, as reported to the parent. */
function counted() {
  return {
    received,
    latency: samples.percentiles(),
    skipped,
    outOfOrder,
    perSensor: perSensor?.map((counts) => Object.fromEntries(counts)),
  };
}

function startAfresh(): void {
  samples = new Samples();
  received = 0;
  skipped = 0;
  outOfOrder = 0;
  for (const counts of perSensor ?? []) counts.clear();
}

async function handle(m: Command): Promise<void> {
  if (m.cmd === 'open') {
    const urls = m.urls!;
    const opened: Promise<void>[] = [];
    const query = m.query ?? 'subscription { overheatAlerts { id sensorId temperature ts cursor } }';
    for (let i = 0; i < m.count!; i++) {
      const url = urls[i % urls.length]!.replace(/^http/, 'ws');
      if (m.lean) {
        opened.push(new Promise<void>((resolve) => clients.push(leanSubscriber(url, query, resolve))));
        if (i % 200 === 199) await Promise.all(opened.slice(-200));
        continue;
      }
      let ack!: () => void;
      const connected = new Promise<void>((r) => (ack = r));
      const client = createClient({
        url,
        webSocketImpl: WebSocket,
        lazy: false,
        retryAttempts: 0,
        connectionParams: m.authorization ? { authorization: m.authorization } : {},
        on: { connected: () => ack() },
      });
      clients.push(client);
      const counts = m.perSensor ? new Map<string, number>() : undefined;
      if (counts) (perSensor ??= []).push(counts);
      const lastTs = new Map<string, number>();
      client.subscribe<Record<string, Update>>(
        { query },
        {
          next: (r) => {
            received++;
            const update = r.data ? Object.values(r.data)[0] : undefined;
            if (!update?.ts) return;
            const ts = Date.parse(update.ts);
            samples.add(Date.now() - ts);
            skipped += update.skipped ?? 0;
            if (update.sensorId === undefined) return;
            if (ts <= (lastTs.get(update.sensorId) ?? -Infinity)) outOfOrder++;
            else lastTs.set(update.sensorId, ts);
            counts?.set(update.sensorId, (counts.get(update.sensorId) ?? 0) + 1);
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
    send({ ev: 'report', ...counted() });
  } else if (m.cmd === 'rotate') {
    send({ ev: 'rotate', ...counted() });
    startAfresh();
  } else if (m.cmd === 'reset') {
    startAfresh();
    send({ ev: 'reset' });
  } else if (m.cmd === 'close') {
    await Promise.all(clients.map((c) => Promise.resolve(c.dispose())));
    clients = [];
    send({ ev: 'closed' });
    process.exit(0);
  }
}
