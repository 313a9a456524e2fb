/**
 * A client that stops reading cannot make the server hold more than its socket budget. One socket
 * with 100 overheatAlerts subscriptions pauses its reads while alerts keep coming: the replica (its
 * own process) closes it once the alerts queued for it exceed LIMIT_SOCKET_BUDGET_BYTES, freeing all
 * its subscriptions, while a client that reads keeps getting every alert. On both delivery paths: the
 * direct one (frames written straight to the socket) and graphql-js (a selection with a fragment).
 * A socket may not hold more than LIMIT_SUBSCRIPTIONS_PER_SOCKET subscriptions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { IngestReadingsDocument } from '../../client/index.js';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { spawnReplica, type ReplicaProcess } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

const env = isolatedEnv('slowsub', {
  LIMIT_SOCKET_BUDGET_BYTES: String(64 * 1024),
  LIMIT_SUBSCRIPTIONS_PER_SOCKET: '100',
});
let replica: ReplicaProcess;

async function metric(name: string): Promise<number> {
  const text = await (await fetch(replica.url.replace('/graphql', '/metrics'))).text();
  return Number(new RegExp(`^iot_${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
}

interface Socket {
  ws: WebSocket;
  messages: { id?: string; type: string; payload?: unknown }[];
  closed: Promise<number>;
}

function connect(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(replica.url.replace('http', 'ws'), 'graphql-transport-ws');
    const messages: Socket['messages'] = [];
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} })));
    ws.on('message', (data) => {
      const m = JSON.parse((data as Buffer).toString('utf8')) as Socket['messages'][number];
      if (m.type === 'connection_ack') resolve({ ws, messages, closed });
      else messages.push(m);
    });
  });
}

/** The same subscription on the direct path, and (a fragment) on the graphql-js path. */
const QUERIES = {
  'on the direct path':
    'subscription ($ids: [ID!]) { overheatAlerts(sensorIds: $ids) { id sensorId temperature ts cursor } }',
  'on the graphql-js path':
    'subscription ($ids: [ID!]) { overheatAlerts(sensorIds: $ids) { ... on OverheatAlert { id sensorId temperature ts cursor } } }',
};

const subscribe = (s: Socket, id: string, query: string, sensorId: string): void =>
  s.ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables: { ids: [sensorId] } } }));

beforeAll(async () => {
  replica = await spawnReplica(env);
});
afterAll(async () => {
  await replica?.stop();
});

describe('a socket that stops reading', () => {
  it.each(Object.entries(QUERIES))(
    'is closed once its queued alerts exceed the socket budget, while a reading client gets every alert (%s)',
    async (_path, query) => {
      // A sensor of its own: another case's readings of the same milliseconds would be duplicates.
      const sensorId = uniqueName('hot');
      const closedBefore = await metric('websockets_closed_over_budget_total');
      const slow = await connect();
      for (let i = 0; i < 100; i++) subscribe(slow, `slow-${i}`, query, sensorId);
      const prompt = await connect();
      subscribe(prompt, 'prompt', query, sensorId);
      await eventually(
        () => metric('subscriptions'),
        (n) => n === 101,
        { what: '101 subscriptions' },
      );
      // Stop reading: from now on everything for `slow` piles up on the server.
      (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();

      const critical = 1500;
      const base = Date.now() - 60_000;
      for (let from = 0; from < critical; from += 500) {
        const readings = Array.from({ length: 500 }, (_, i) => ({
          sensorId,
          ts: new Date(base + from + i).toISOString(),
          temperature: 90 + (i % 10),
          humidity: 30,
          location: { lat: 1, lon: 2 },
        }));
        await replica.client.request(IngestReadingsDocument, { readings });
      }

      await eventually(
        () => metric('websockets_closed_over_budget_total'),
        (n) => n === closedBefore + 1,
        { timeoutMs: 60_000, what: 'the slow socket closed over budget' },
      );
      await eventually(
        () => metric('subscriptions'),
        (n) => n === 1,
        { timeoutMs: 10_000, what: 'only the prompt subscription left' },
      );
      expect(await metric('websocket_connections')).toBe(1);
      await eventually(
        () => prompt.messages.filter((m) => m.type === 'next').length,
        (n) => n === critical,
        { timeoutMs: 60_000, what: 'every alert for the prompt client' },
      );
      prompt.ws.close();
    },
  );

  it(`refuses a subscription past the per-socket limit with LIMIT_EXCEEDED`, async () => {
    const s = await connect();
    for (let i = 0; i <= 100; i++) subscribe(s, `cap-${i}`, QUERIES['on the direct path'], uniqueName('cap'));
    await eventually(
      () => s.messages.find((m) => m.id === 'cap-100'),
      (m) => m !== undefined,
      { what: 'an answer to the 101st subscription' },
    );
    const answer = s.messages.find((m) => m.id === 'cap-100')!;
    expect(answer.type).toBe('error');
    expect((answer.payload as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe('LIMIT_EXCEEDED');
    expect(s.messages.filter((m) => m.type === 'error')).toHaveLength(1);
    s.ws.close();
  });
});
