/**
 * Raw limits of idle-subscription memory: what one idle connection costs a server that does nothing
 * else, measured like the pipeline's figure (heap and RSS after a full GC, delta over N connections).
 *
 * - `bare`: a bare `ws` server socket, the floor of any WebSocket transport;
 * - `graphql-ws`: one graphql-ws subscription per socket (graphql-ws' own `useServer`, a one-field
 *   schema whose subscription never yields), the floor of the library the API serves with.
 *
 * Three processes: the runner, a server child started with --expose-gc, and a client child, so
 * neither the runner nor the clients count in the server's memory.
 */
import { fork } from 'node:child_process';
import v8 from 'node:v8';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { buildSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocket, WebSocketServer } from 'ws';
import type { Figure } from '../lib/stats.js';

type Kind = 'bare' | 'graphql-ws';
const self = fileURLToPath(import.meta.url);
const childOptions = (extra: string[] = []) => ({
  execPath: process.execPath,
  execArgv: [...extra, '--import', 'tsx'],
  cwd: fileURLToPath(new URL('../../', import.meta.url)),
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'] as ('ignore' | 'inherit' | 'ipc')[],
});

async function clients(kind: Kind, count: number, url: string): Promise<void> {
  for (let i = 0; i < count; i++) {
    const socket = new WebSocket(url, kind === 'graphql-ws' ? 'graphql-transport-ws' : undefined);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    if (kind === 'graphql-ws') {
      socket.send(JSON.stringify({ type: 'connection_init' }));
      await new Promise((resolve) => socket.once('message', resolve));
      socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { tick }' } }));
    }
  }
  process.send!('ready');
  setInterval(() => undefined, 60_000);
}

async function server(kind: Kind, count: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  // As the replicas read it (src/main.ts): heap right after a full, compacting collection, RSS a
  // moment later.
  const settled = async (): Promise<NodeJS.MemoryUsage> => {
    v8.setFlagsFromString('--compact-on-every-full-gc');
    gc();
    gc();
    v8.setFlagsFromString('--no-compact-on-every-full-gc');
    const heapUsed = process.memoryUsage().heapUsed;
    await new Promise((resolve) => setTimeout(resolve, 250));
    return { ...process.memoryUsage(), heapUsed };
  };
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise((resolve) => wss.once('listening', resolve));
  if (kind === 'graphql-ws') {
    const schema = buildSchema('type Query { ok: Boolean } type Subscription { tick: Int }');
    const never: AsyncIterableIterator<never> = {
      next: () => new Promise(() => undefined),
      return: async () => ({ done: true, value: undefined }),
      [Symbol.asyncIterator]: () => never,
    };
    schema.getSubscriptionType()!.getFields().tick!.subscribe = () => never;
    useServer({ schema }, wss);
  }
  const before = await settled();
  const port = (wss.address() as AddressInfo).port;
  const child = fork(self, ['clients', kind, String(count), `ws://127.0.0.1:${port}`], childOptions());
  await new Promise((resolve) => child.once('message', resolve));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const after = await settled();
  child.kill();
  process.send!({
    heap: (after.heapUsed - before.heapUsed) / count,
    rss: (after.rss - before.rss) / count,
    sockets: wss.clients.size,
  });
}

async function measure(kind: Kind, count: number): Promise<{ heap: number; rss: number; sockets: number }> {
  const child = fork(self, ['server', kind, String(count)], childOptions(['--expose-gc']));
  try {
    return await new Promise((resolve, reject) => {
      child.once('message', (m) => resolve(m as { heap: number; rss: number; sockets: number }));
      child.once('exit', (code) => reject(new Error(`idle-memory server (${kind}) exited with ${code}`)));
    });
  } finally {
    child.kill();
  }
}

export async function run(o: { connections: number }): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const kind of ['bare', 'graphql-ws'] as const) {
    const { heap, rss, sockets } = await measure(kind, o.connections);
    const label = kind === 'bare' ? 'raw.ws.idleSocket' : 'raw.graphqlWs.idleSubscription';
    const what =
      kind === 'bare'
        ? `${sockets} idle bare ws server sockets`
        : `${sockets} idle graphql-ws subscriptions (one per socket, one-field schema, graphql-ws' useServer)`;
    figures.push(
      {
        name: `${label}Heap`,
        unit: 'bytes',
        value: Math.round(heap),
        notes: `${what}; heap delta / count after a full GC`,
      },
      {
        name: `${label}Rss`,
        unit: 'bytes',
        value: Math.round(rss),
        notes: `${what}; RSS delta / count after a full GC`,
      },
    );
    console.error(`  raw idle memory, ${kind}: ${Math.round(heap)} B heap, ${Math.round(rss)} B RSS per connection`);
  }
  return figures;
}

const [role, kind, count, url] = process.argv.slice(2);
if (role === 'clients') await clients(kind as Kind, Number(count), url!);
if (role === 'server') await server(kind as Kind, Number(count));
