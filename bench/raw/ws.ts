/**
 * Raw limit: a bare `ws` broadcast alone. A WebSocketServer on 127.0.0.1 (ephemeral port) sends one
 * pre-serialized ~300-byte JSON per broadcast to every connected socket; the N clients live in a
 * child process (bench/raw/wsClients.ts) so they do not share the server's event loop, and measure
 * latency against the send time carried in the payload (nowMs is comparable across processes).
 *
 *  - raw.ws.latency       open loop at `rate` broadcasts/s, per delivery (send time -> client 'message').
 *  - raw.ws.deliveryRate  saturating broadcast for ~3 s (next round as soon as the sockets drain), deliveries/s at the clients.
 *
 * Run alone: npx tsx bench/raw/ws.ts [--durationMs=10000] [--rate=100] [--subscribers=1000]
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { openLoop } from '../lib/openLoop.js';
import { nowMs, sleep, type Figure } from '../lib/stats.js';
import { isMain, runCli, waitFor } from './common.js';
import type { ClientCounts, FromClients, ToClients } from './wsClients.js';

export interface WsRawOptions {
  durationMs: number;
  /** Broadcasts per second in the latency phase (default 100). */
  rate?: number;
  /** Connected clients (default 1000). */
  subscribers?: number;
  /** Length of the saturating phase (default 3000 ms; 0 skips it). */
  saturateMs?: number;
}

/** A request to the clients, before it gets its id. */
type Request = ToClients extends infer R ? (R extends ToClients ? Omit<R, 'id'> : never) : never;

const PAYLOAD_BYTES = 300;
/** Above this many bytes queued in a socket (user space), the saturating sender yields to I/O. */
const HIGH_WATER = 256 * 1024;
const CONNECT_BATCH = 100;

/** `{"p":"X","t":<sentAt>,...}` padded to ~300 bytes: the phase and send time sit where the clients read them. */
function payload(phase: 'W' | 'L' | 'S', seq: number): Buffer {
  const t = nowMs().toFixed(3);
  const head = `{"p":"${phase}","t":${t},"seq":${seq},"type":"next","id":"sub-1","payload":{"data":{"overheat":{"sensorId":"sensor-0042","temperature":91.5,"threshold":80,"ts":"${new Date().toISOString()}","location":{"lat":48.8566,"lon":2.3522}}}},"pad":"`;
  return Buffer.from(`${head}${'x'.repeat(Math.max(0, PAYLOAD_BYTES - head.length - 2))}"}`);
}

/** The child with the clients, and a request/reply helper over IPC. */
function startClients(): {
  child: ChildProcess;
  ask: <T extends FromClients['type']>(m: Request, timeoutMs?: number) => Promise<Extract<FromClients, { type: T }>>;
} {
  const file = fileURLToPath(new URL('./wsClients.ts', import.meta.url));
  const child = fork(file, [], {
    execPath: process.execPath,
    execArgv: ['--import', 'tsx'],
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    // The child's stdout goes to our stderr: our stdout carries the figures.
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  child.stdout?.pipe(process.stderr);
  let nextId = 1;
  const pending = new Map<number, { resolve: (m: FromClients) => void; reject: (e: Error) => void }>();
  child.on('message', (raw) => {
    const m = raw as FromClients;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.type === 'error') p.reject(new Error(`ws clients: ${m.message}`));
    else p.resolve(m);
  });
  child.on('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`ws clients exited (${code})`));
    pending.clear();
  });
  const ask = <T extends FromClients['type']>(
    m: Request,
    timeoutMs = 30_000,
  ): Promise<Extract<FromClients, { type: T }>> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`ws clients: no reply to ${m.type}`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r as Extract<FromClients, { type: T }>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      child.send({ ...m, id });
    });
  return { child, ask };
}

/** Polls the clients' counters until `done` holds or they stop moving for `idleMs`. */
async function settle(
  ask: ReturnType<typeof startClients>['ask'],
  done: (c: ClientCounts) => boolean,
  idleMs = 2000,
): Promise<ClientCounts> {
  let last = -1;
  let lastChange = performance.now();
  for (;;) {
    const { counts } = await ask<'counts'>({ type: 'counts' });
    if (done(counts)) return counts;
    const total = counts.warm + counts.latency + counts.saturate;
    if (total !== last) {
      last = total;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > idleMs) return counts;
    await sleep(20);
  }
}

export async function run(opts: WsRawOptions): Promise<Figure[]> {
  const rate = opts.rate ?? 100;
  const n = opts.subscribers ?? 1000;
  const saturateMs = opts.saturateMs ?? 3000;
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const port = (wss.address() as AddressInfo).port;
  const sockets: WebSocket[] = [];
  wss.on('connection', (ws) => {
    sockets.push(ws);
    ws.on('error', () => undefined);
    ws.on('close', () => {
      const i = sockets.indexOf(ws);
      if (i >= 0) sockets.splice(i, 1);
    });
  });
  const { child, ask } = startClients();
  const broadcast = (data: Buffer): void => {
    for (const ws of sockets) ws.send(data, { binary: false });
  };

  try {
    const connected = await ask<'connected'>(
      { type: 'connect', url: `ws://127.0.0.1:${port}`, count: n, batch: CONNECT_BATCH },
      60_000,
    );
    await waitFor(() => sockets.length >= n, 5000);
    if (sockets.length < n) throw new Error(`only ${sockets.length}/${n} ws clients connected`);

    // Warm-up, out of the measurement.
    for (let i = 0; i < 5; i++) {
      broadcast(payload('W', i));
      await sleep(20);
    }
    await settle(ask, (c) => c.warm >= 5 * n);

    let seq = 0;
    const load = await openLoop(rate, opts.durationMs, (k) => {
      for (let i = 0; i < k; i++) broadcast(payload('L', seq++));
    });
    const expected = load.issued * n;
    await settle(ask, (c) => c.latency >= expected);
    const report = await ask<'report'>({ type: 'report' });
    const size = payload('L', 0).length;
    const figures: Figure[] = [
      {
        name: 'raw.ws.latency',
        latency: report.latency,
        unit: 'ms',
        notes:
          `bare ws broadcast of a ${size} B pre-serialized text frame to ${n} sockets (clients in a child process), open loop ${rate}/s for ${opts.durationMs} ms ` +
          `(achieved ${load.achievedRate.toFixed(1)}/s), per delivery; delivered ${report.counts.latency}/${expected}; connect of ${n} took ${connected.ms.toFixed(0)} ms`,
      },
    ];

    if (saturateMs > 0) {
      const startAt = nowMs();
      const start = performance.now();
      let rounds = 0;
      let yields = 0;
      while (performance.now() - start < saturateMs) {
        broadcast(payload('S', rounds++));
        // Let I/O run; wait for the sockets to drain when user-space buffers grow.
        await new Promise((r) => setImmediate(r));
        while (sockets.some((ws) => ws.bufferedAmount > HIGH_WATER) && performance.now() - start < saturateMs) {
          yields++;
          await sleep(1);
        }
      }
      const sendSeconds = (performance.now() - start) / 1000;
      const c = await settle(ask, (x) => x.saturate >= rounds * n);
      const seconds = (c.satLastAt - startAt) / 1000;
      figures.push({
        name: 'raw.ws.deliveryRate',
        rate: c.saturate / seconds,
        unit: 'deliveries/s',
        notes:
          `saturating broadcast for ${saturateMs} ms: ${rounds} broadcasts x ${n} sockets (${(rounds / sendSeconds).toFixed(0)} broadcasts/s sent, ` +
          `${yields} waits for drain), ${c.saturate}/${rounds * n} delivered; rate = deliveries / (last delivery - start), clients in a child process`,
      });
    }
    return figures;
  } finally {
    await ask<'closed'>({ type: 'close' }, 5000).catch(() => undefined);
    const exited = await waitFor(() => child.exitCode !== null || child.signalCode !== null, 5000);
    if (!exited && child.pid) process.kill(child.pid, 'SIGKILL');
    for (const ws of wss.clients) ws.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }
}

if (isMain(import.meta.url)) runCli<WsRawOptions>(run, { subscribers: true, saturateMs: true });
