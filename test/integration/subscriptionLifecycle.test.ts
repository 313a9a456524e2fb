/**
 * No subscription outlives its socket. 1,000 overheatAlerts subscriptions on 10 sockets (some for
 * given sensors, some for all), against a replica in its own process; then every socket is destroyed
 * abruptly, without a close frame. The replica's gauges must fall to 0 and the Redis channels and
 * patterns it holds must return to what they were before, within 5 s.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { isolatedEnv } from '../support/env.js';
import { spawnReplica, type ReplicaProcess } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

const env = isolatedEnv('lifecycle');
let replica: ReplicaProcess;
let redis: Redis;

async function gauges(): Promise<{ subscriptions: number; connections: number }> {
  const text = await (await fetch(replica.url.replace('/graphql', '/metrics'))).text();
  const read = (name: string): number => Number(new RegExp(`^iot_${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { subscriptions: read('subscriptions'), connections: read('websocket_connections') };
}

/** Channels of this deployment's prefix, and patterns, held in Redis right now. */
async function redisInterest(): Promise<{ channels: number; patterns: number }> {
  const channels = (await redis.pubsub('CHANNELS', `${env.REDIS_CHANNEL_PREFIX}:alerts:*`)) as string[];
  const patterns = Number(await redis.pubsub('NUMPAT'));
  return { channels: channels.length, patterns };
}

function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace('http', 'ws'), 'graphql-transport-ws');
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} })));
    ws.on('message', (data) => {
      if ((JSON.parse((data as Buffer).toString('utf8')) as { type: string }).type === 'connection_ack') resolve(ws);
    });
  });
}

beforeAll(async () => {
  replica = await spawnReplica(env);
  redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
  await redis.connect();
});
afterAll(async () => {
  redis?.disconnect();
  await replica?.stop();
});

describe('subscriptions and their sockets', () => {
  it('frees every subscription, and its Redis interest, when sockets are destroyed abruptly', async () => {
    const baseline = await redisInterest();
    const sockets = await Promise.all(Array.from({ length: 10 }, () => openSocket(replica.url)));
    sockets.forEach((ws, s) => {
      for (let i = 0; i < 100; i++) {
        // Every third subscription listens to all sensors (a Redis pattern); the others to two sensors each.
        const variables = i % 3 === 0 ? {} : { sensorIds: [`lc-${s}-${i}`, `lc-shared-${i % 7}`] };
        ws.send(
          JSON.stringify({
            id: `${s}-${i}`,
            type: 'subscribe',
            payload: {
              query:
                'subscription ($sensorIds: [ID!]) { overheatAlerts(sensorIds: $sensorIds) { id sensorId cursor } }',
              variables,
            },
          }),
        );
      }
    });
    await eventually(gauges, (g) => g.subscriptions === 1000 && g.connections === 10, {
      timeoutMs: 30_000,
      what: '1000 subscriptions on 10 sockets',
    });
    const held = await redisInterest();
    expect(held.channels).toBeGreaterThan(baseline.channels);
    expect(held.patterns).toBeGreaterThan(baseline.patterns);

    for (const ws of sockets) (ws as unknown as { _socket: { destroy(): void } })._socket.destroy();

    await eventually(gauges, (g) => g.subscriptions === 0 && g.connections === 0, {
      timeoutMs: 5000,
      what: 'gauges back to 0',
    });
    await eventually(redisInterest, (r) => r.channels === baseline.channels && r.patterns === baseline.patterns, {
      timeoutMs: 5000,
      what: 'Redis interest back to baseline',
    });
  });
});
