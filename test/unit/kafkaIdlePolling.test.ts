/**
 * The Kafka client's connections sleep while nothing waits (stream/kafka.ts stopIdlePolling), on
 * kafkajs's own request queue class: without the change each connection re-arms a 1 ms timer after
 * every response, forever.
 */
import { createRequire } from 'node:module';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { stopIdlePolling } from '../../src/stream/kafka.js';

interface Entry {
  correlationId: number;
  apiName: string;
  apiKey: number;
  apiVersion: number;
  resolve(): void;
  reject(err: Error): void;
}

interface Queue {
  pending: unknown[];
  inflight: Map<number, unknown>;
  throttledUntil: number;
  push(request: { entry: Entry; expectResponse: boolean; sendRequest(): void }): void;
  maybeThrottle(ms: number): void;
  fulfillRequest(response: { correlationId: number; payload: Buffer; size: number }): void;
  destroy(): void;
}

const RequestQueue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as new (options: {
  maxInFlightRequests: number | null;
  requestTimeout: number;
  enforceRequestTimeout: boolean;
  clientId: string;
  broker: string;
  logger: Record<'debug' | 'info' | 'warn' | 'error', () => void>;
}) => Queue;

const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
const newQueue = (maxInFlightRequests: number | null = null): Queue =>
  new RequestQueue({
    maxInFlightRequests,
    requestTimeout: 30_000,
    enforceRequestTimeout: false,
    clientId: 'test',
    broker: '127.0.0.1:9092',
    logger: quiet,
  });

/** Sends a request through the queue; resolves with the time it left. */
function send(queue: Queue, correlationId: number): { sentAt: () => number | undefined } {
  let sentAt: number | undefined;
  queue.push({
    entry: { correlationId, apiName: 'Fetch', apiKey: 1, apiVersion: 11, resolve: () => {}, reject: () => {} },
    expectResponse: true,
    sendRequest: () => (sentAt = Date.now()),
  });
  return { sentAt: () => sentAt };
}

const respond = (queue: Queue, correlationId: number): void =>
  queue.fulfillRequest({ correlationId, payload: Buffer.alloc(0), size: 0 });

describe('a Kafka connection once its idle polling is stopped', () => {
  beforeAll(() => {
    expect(stopIdlePolling()).toBe(true);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('arms no timer after a response when nothing waits', () => {
    vi.useFakeTimers();
    const queue = newQueue();
    const first = send(queue, 1);
    expect(first.sentAt()).toBeDefined();
    respond(queue, 1);
    expect(vi.getTimerCount()).toBe(0);
    queue.destroy();
  });

  it('still sends a request held back by the broker’s throttle once the throttle ends', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const queue = newQueue();
    queue.maybeThrottle(50);
    const held = send(queue, 1);
    expect(held.sentAt()).toBeUndefined();
    vi.advanceTimersByTime(49);
    expect(held.sentAt()).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(held.sentAt()).toBe(1_000_050);
    respond(queue, 1);
    expect(vi.getTimerCount()).toBe(0);
    queue.destroy();
  });

  it('still sends a request held back by the in-flight limit once a response frees a slot', () => {
    vi.useFakeTimers();
    const queue = newQueue(1);
    const first = send(queue, 1);
    const second = send(queue, 2);
    expect(first.sentAt()).toBeDefined();
    expect(second.sentAt()).toBeUndefined();
    respond(queue, 1);
    expect(second.sentAt()).toBeDefined();
    respond(queue, 2);
    vi.runOnlyPendingTimers();
    expect(vi.getTimerCount()).toBe(0);
    expect(queue.pending).toHaveLength(0);
    queue.destroy();
  });
});
