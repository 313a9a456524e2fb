/**
 * The WebSocket endpoint is a conformant graphql-transport-ws server (our own, see
 * src/http/subscriptionServer.ts), against a replica in its own process: the protocol's messages and
 * close codes for a careless or hostile client on a raw socket, and the real graphql-ws client's
 * `next`, `error` and `complete`.
 */
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { OPEN_ACCESS, isolatedEnv } from '../support/env.js';
import { spawnReplica, type ReplicaProcess } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

// Short protocol timers, so the timeouts below are seen within a test.
const env = isolatedEnv('wsproto', { ...OPEN_ACCESS, WS_INIT_TIMEOUT_MS: '500', WS_KEEPALIVE_MS: '400' });
let replica: ReplicaProcess;

beforeAll(async () => {
  replica = await spawnReplica(env);
});
afterAll(async () => {
  await replica?.stop();
});

interface Frame {
  type: string;
  id?: string;
  payload?: unknown;
}

/** A raw socket that records every frame and the close code. */
class RawClient {
  readonly frames: Frame[] = [];
  closeCode: number | undefined;
  closeReason = '';
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;
  private readonly ws: WebSocket;

  /** `protocol` null: the handshake asks for no subprotocol. */
  /** `answersPings` false: a client whose application stopped reading (its socket no longer pongs). */
  constructor(protocol: string | null = 'graphql-transport-ws', answersPings = true) {
    this.ws = new WebSocket(replica.url.replace('http', 'ws'), protocol ?? undefined, { autoPong: answersPings });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve(code);
      }),
    );
    this.ws.on('message', (data) => this.frames.push(JSON.parse((data as Buffer).toString('utf8')) as Frame));
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  async ready(): Promise<this> {
    await this.opened;
    this.send({ type: 'connection_init', payload: {} });
    await this.frame((f) => f.type === 'connection_ack');
    return this;
  }

  frame(match: (f: Frame) => boolean): Promise<Frame> {
    return eventually(
      async () => this.frames.find(match),
      (f) => f !== undefined,
      { timeoutMs: 10_000, what: 'a frame' },
    ) as Promise<Frame>;
  }

  close(): void {
    this.ws.close();
  }
}

async function subscriptionsGauge(): Promise<number> {
  const text = await (await fetch(replica.url.replace('/graphql', '/metrics'))).text();
  return Number(/^iot_subscriptions (\d+)$/m.exec(text)?.[1] ?? NaN);
}

const alertsQuery = 'subscription { overheatAlerts { id cursor } }';

describe('graphql-transport-ws on a raw socket', () => {
  it('closes with 4406 a socket that asks for no subprotocol', async () => {
    const c = new RawClient(null);
    expect(await c.closed).toBe(4406);
  });

  it('refuses the handshake of a socket asking only for the legacy graphql-ws subprotocol', async () => {
    const ws = new WebSocket(replica.url.replace('http', 'ws'), 'graphql-ws');
    const failure = await new Promise<Error>((resolve) => ws.once('error', resolve));
    expect(failure.message).toMatch(/no subprotocol/);
  });

  it('closes with 4408 a socket that sends no connection_init', async () => {
    const c = new RawClient();
    expect(await c.closed).toBe(4408);
    expect(c.frames).toEqual([]);
  });

  it('terminates a socket that stops answering pings, and keeps one that answers', async () => {
    const silent = await new RawClient('graphql-transport-ws', false).ready();
    const polite = await new RawClient().ready();
    silent.send({ type: 'subscribe', id: 'a', payload: { query: alertsQuery } });
    // Terminated, not closed: no close frame reaches the client (1006).
    expect(await silent.closed).toBe(1006);
    polite.send({ type: 'ping', payload: { still: 'here' } });
    await polite.frame((f) => f.type === 'pong');
    expect(polite.closeCode).toBeUndefined();
    polite.close();
  });

  it.each([
    ['not JSON', '{"type":'],
    ['no type', { id: '1' }],
    ['a type the server does not take', { type: 'next', id: '1', payload: {} }],
    ['a subscribe without a query', { type: 'subscribe', id: '1', payload: { variables: {} } }],
    ['a subscribe with an empty id', { type: 'subscribe', id: '', payload: { query: '{ __typename }' } }],
    ['variables that are not an object', { type: 'subscribe', id: '1', payload: { query: '{a}', variables: [1] } }],
  ])('closes with 4400 on %s', async (_what, message) => {
    const c = await new RawClient().ready();
    c.send(message);
    expect(await c.closed).toBe(4400);
  });

  it('closes with 4401 a subscribe sent before connection_init', async () => {
    const c = new RawClient();
    await c.opened;
    c.send({ type: 'subscribe', id: '1', payload: { query: alertsQuery } });
    expect(await c.closed).toBe(4401);
  });

  it('closes with 4429 a second connection_init', async () => {
    const c = await new RawClient().ready();
    c.send({ type: 'connection_init' });
    expect(await c.closed).toBe(4429);
  });

  it('closes with 4409 a subscribe reusing the id of a running subscription', async () => {
    const c = await new RawClient().ready();
    c.send({ type: 'subscribe', id: 'same', payload: { query: alertsQuery } });
    c.send({ type: 'subscribe', id: 'same', payload: { query: alertsQuery } });
    expect(await c.closed).toBe(4409);
  });

  it('answers ping with pong, echoing its payload', async () => {
    const c = await new RawClient().ready();
    c.send({ type: 'ping', payload: { n: 7 } });
    expect(await c.frame((f) => f.type === 'pong')).toEqual({ type: 'pong', payload: { n: 7 } });
    c.close();
  });

  it('runs a query over the socket: next with its data, then complete', async () => {
    const c = await new RawClient().ready();
    c.send({ type: 'subscribe', id: 'q', payload: { query: '{ __typename }' } });
    await c.frame((f) => f.type === 'complete');
    expect(c.frames.filter((f) => f.id === 'q')).toEqual([
      { id: 'q', type: 'next', payload: { data: { __typename: 'Query' } } },
      { id: 'q', type: 'complete' },
    ]);
    c.close();
  });

  it('sends a large result whole: the schema, introspected over the socket', async () => {
    const c = await new RawClient().ready();
    c.send({ type: 'subscribe', id: 'schema', payload: { query: '{ __schema { types { name description } } }' } });
    const next = await c.frame((f) => f.type === 'next' && f.id === 'schema');
    const types = (next.payload as { data: { __schema: { types: { name: string }[] } } }).data.__schema.types;
    expect(types.map((t) => t.name)).toEqual(expect.arrayContaining(['OverheatAlert', 'Query', 'Subscription']));
    expect(JSON.stringify(next).length).toBeGreaterThan(1000);
    await c.frame((f) => f.type === 'complete' && f.id === 'schema');
    c.close();
  });

  it('answers an invalid document with error (GRAPHQL_VALIDATION_FAILED), and the socket stays open', async () => {
    const c = await new RawClient().ready();
    c.send({ type: 'subscribe', id: 'bad', payload: { query: 'subscription { overheatAlerts { nope } }' } });
    const error = await c.frame((f) => f.type === 'error');
    expect(error.id).toBe('bad');
    expect((error.payload as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe(
      'GRAPHQL_VALIDATION_FAILED',
    );
    c.send({ type: 'ping' });
    await c.frame((f) => f.type === 'pong');
    expect(c.closeCode).toBeUndefined();
    c.close();
  });

  it('frees a subscription the client completes, on either path, and sends nothing more for it', async () => {
    const before = await subscriptionsGauge();
    const c = await new RawClient().ready();
    c.send({ type: 'subscribe', id: 'direct', payload: { query: alertsQuery } });
    c.send({
      type: 'subscribe',
      id: 'graphql-js',
      payload: { query: 'subscription { overheatAlerts { ... on OverheatAlert { id cursor } } }' },
    });
    await eventually(subscriptionsGauge, (n) => n === before + 2, { timeoutMs: 10_000, what: 'two subscriptions' });
    c.send({ type: 'complete', id: 'direct' });
    c.send({ type: 'complete', id: 'graphql-js' });
    await eventually(subscriptionsGauge, (n) => n === before, { timeoutMs: 10_000, what: 'both freed' });
    // A completed id may be used again.
    c.send({ type: 'subscribe', id: 'direct', payload: { query: '{ __typename }' } });
    await c.frame((f) => f.type === 'complete' && f.id === 'direct');
    expect(c.frames.filter((f) => f.id === 'graphql-js')).toEqual([]);
    expect(c.closeCode).toBeUndefined();
    c.close();
  });
});

describe('the graphql-ws client', () => {
  it('gets next then complete for a query, and error for a refused operation', async () => {
    const client = createClient({ url: replica.url.replace('http', 'ws'), webSocketImpl: WebSocket, lazy: true });
    try {
      const events: string[] = [];
      await new Promise<void>((resolve, reject) =>
        client.subscribe(
          { query: '{ __typename }' },
          {
            next: (r) => events.push(`next ${JSON.stringify(r.data)}`),
            error: reject,
            complete: () => {
              events.push('complete');
              resolve();
            },
          },
        ),
      );
      const refused = await new Promise<unknown>((resolve) =>
        client.subscribe(
          { query: 'subscription { overheatAlerts(after: 12) { id } }' },
          { next: () => undefined, error: resolve, complete: () => resolve('completed') },
        ),
      );
      expect(events).toEqual(['next {"__typename":"Query"}', 'complete']);
      expect((refused as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    } finally {
      await client.dispose();
    }
  });
});
