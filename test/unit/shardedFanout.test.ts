/**
 * The fan-out on a Redis Cluster (sharded pub/sub), over an in-memory bus standing in for the
 * cluster: where items and progress notices go, who hears them, and what a loss of delivery does.
 * The same code against a real 6-node cluster: test/cluster/redisCluster.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { OverheatAlert } from '../../src/domain/alert.js';
import {
  connectFanout,
  deserializeAlert,
  serializeAlert,
  SHARD_GROUPS,
  shardChannels,
  type ResyncPhase,
} from '../../src/fanout/alertFanout.js';
import type { BusMessage, DeliveryState, RedisBus } from '../../src/fanout/redisBus.js';
import { rateKey } from '../../src/limits/rateLimiter.js';
import { createLogger } from '../../src/logger.js';
import { CLUSTER_SLOTS, keySlot } from '../../src/shared/redisTarget.js';
import { alertAt } from '../support/readings.js';

const logger = createLogger('silent');

/** Sharded channels shared by fake buses: what one publishes, the others subscribed to it hear, in order. */
class FakeShards {
  readonly buses = new Set<FakeBus>();
  readonly published: BusMessage[] = [];
  failing = false;
  deliver(m: BusMessage): void {
    this.published.push(m);
    for (const bus of this.buses) if (bus.channels.has(m.channel)) bus.hear(m);
  }
}

class FakeBus implements RedisBus {
  readonly sharded = true;
  readonly channels = new Set<string>();
  private readonly messageListeners: ((channel: string, message: string, viaPattern: boolean) => void)[] = [];
  private readonly deliveryListeners: ((state: DeliveryState) => void)[] = [];
  constructor(private readonly shards: FakeShards) {
    shards.buses.add(this);
  }
  hear(m: BusMessage): void {
    for (const l of this.messageListeners) l(m.channel, m.message, false);
  }
  setDelivery(state: DeliveryState): void {
    for (const l of this.deliveryListeners) l(state);
  }
  publish(messages: readonly BusMessage[]): Promise<{ failed: number; error: string | undefined }> {
    if (this.shards.failing) return Promise.resolve({ failed: messages.length, error: 'CLUSTERDOWN' });
    for (const m of messages) this.shards.deliver(m);
    return Promise.resolve({ failed: 0, error: undefined });
  }
  subscribe(channels: readonly string[]): Promise<void> {
    for (const c of channels) this.channels.add(c);
    return Promise.resolve();
  }
  unsubscribe(channels: readonly string[]): Promise<void> {
    for (const c of channels) this.channels.delete(c);
    return Promise.resolve();
  }
  psubscribe(): Promise<void> {
    return Promise.reject(new Error('sharded pub/sub has no patterns'));
  }
  punsubscribe(): Promise<void> {
    return Promise.reject(new Error('sharded pub/sub has no patterns'));
  }
  onMessage(listener: (channel: string, message: string, viaPattern: boolean) => void): void {
    this.messageListeners.push(listener);
  }
  onDelivery(listener: (state: DeliveryState) => void): void {
    this.deliveryListeners.push(listener);
  }
  isReady(): boolean {
    return true;
  }
  dispose(): Promise<void> {
    this.shards.buses.delete(this);
    return Promise.resolve();
  }
}

const codec = { encode: serializeAlert, decode: deserializeAlert };

describe('cluster slots', () => {
  it('hash a key as Redis Cluster does (CRC16 XMODEM modulo 16384)', () => {
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('123456789')).toBe(0x31c3);
  });

  it('hash only the hash tag when there is one, and the whole key when the tag is empty', () => {
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar'));
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
  });

  it('keep every rate-limit key of one credential in one slot, whatever the bucket', () => {
    for (const principal of ['key:ops', 'jwt:alice', 'odd}name{']) {
      const slots = (['mutations', 'ingest', 'subscriptions'] as const).map((b) =>
        keySlot(rateKey('iot', b, principal)),
      );
      expect(new Set(slots).size).toBe(1);
    }
  });
});

describe('the sharded channel layout', () => {
  const { items, progress } = shardChannels('iot', 'alerts');

  it("puts each partition group's items and progress notices in one slot", () => {
    expect(items).toHaveLength(SHARD_GROUPS);
    items.forEach((channel, k) => expect(keySlot(progress[k]!)).toBe(keySlot(channel)));
  });

  it('spreads the groups evenly over the slots, so any three-way split of the slots gets 5 or 6', () => {
    const width = CLUSTER_SLOTS / SHARD_GROUPS;
    expect(items.map((c) => Math.floor(keySlot(c) / width))).toEqual([...Array(SHARD_GROUPS).keys()]);
    const third = Math.ceil(CLUSTER_SLOTS / 3);
    const perMaster = [0, 1, 2].map((m) => items.filter((c) => Math.floor(keySlot(c) / third) === m).length);
    for (const n of perMaster) expect([5, 6]).toContain(n);
  });
});

describe('the fan-out on sharded pub/sub', () => {
  const twoReplicas = (): { shards: FakeShards; a: FakeBus; b: FakeBus } => {
    const shards = new FakeShards();
    return { shards, a: new FakeBus(shards), b: new FakeBus(shards) };
  };

  it("publishes a partition's alerts and its progress on its group's channels, in order", async () => {
    const { shards, a } = twoReplicas();
    const pub = await connectFanout({ bus: a, channelPrefix: 'p', stream: 'alerts', codec, logger });
    const { items, progress } = shardChannels('p', 'alerts');
    await pub.publish([alertAt('s1', 1000, 5, 2), alertAt('s2', 1000, 6, 18)], [{ prev: 4 }, { prev: 5 }]);
    await pub.publishProgress({ partition: 2, watermark: 5, last: 5 });
    expect(shards.published.map((m) => m.channel)).toEqual([items[2], items[18 % SHARD_GROUPS], progress[2]]);
    expect(shards.published[0]!.message).toMatch(/^#4\n\{/);
    await pub.dispose();
  });

  it('hands each listener the alerts of the sensors it asked for, and a listener to all every alert', async () => {
    const { a, b } = twoReplicas();
    const pub = await connectFanout({ bus: a, channelPrefix: 'p', stream: 'alerts', codec, logger });
    const sub = await connectFanout({ bus: b, channelPrefix: 'p', stream: 'alerts', codec, logger });
    const some: string[] = [];
    const all: string[] = [];
    const stopSome = await sub.listen(['s1', 's3'], (alert: OverheatAlert) => some.push(alert.sensorId));
    await sub.listen(undefined, (alert: OverheatAlert) => all.push(alert.sensorId));
    const progress: number[] = [];
    sub.onProgress((p) => progress.push(p.partition));

    await pub.publish(['s1', 's2', 's3', 's1'].map((s, i) => alertAt(s, 1000 + i, i, i)));
    await pub.publishProgress({ partition: 17, watermark: 3, last: 3 });
    expect(some).toEqual(['s1', 's3', 's1']);
    expect(all).toEqual(['s1', 's2', 's3', 's1']);
    expect(progress).toEqual([17]);

    stopSome();
    await pub.publish([alertAt('s1', 2000, 9, 0)]);
    expect(some).toHaveLength(3);
    expect(all).toHaveLength(5);
    expect(sub.stats().received).toBe(5);
    await Promise.all([pub.dispose(), sub.dispose()]);
  });

  it('holds live alerts from the moment the bus may have lost some, and replays once it is whole again', async () => {
    const { b } = twoReplicas();
    const sub = await connectFanout({ bus: b, channelPrefix: 'p', stream: 'alerts', codec, logger });
    const phases: ResyncPhase[] = [];
    sub.onResync((phase) => phases.push(phase));
    b.setDelivery('lost');
    expect(sub.isHolding()).toBe(true);
    expect(phases).toEqual(['hold']);
    b.setDelivery('restored');
    expect(sub.isHolding()).toBe(false);
    expect(phases).toEqual(['hold', 'replay']);
    await sub.dispose();
  });

  it('publishes nothing more after a failed publish until every replica has been told to resync', async () => {
    const { shards, a, b } = twoReplicas();
    const pub = await connectFanout({ bus: a, channelPrefix: 'p', stream: 'alerts', codec, logger });
    const sub = await connectFanout({ bus: b, channelPrefix: 'p', stream: 'alerts', codec, logger });
    const phases: ResyncPhase[] = [];
    sub.onResync((phase) => phases.push(phase));
    shards.failing = true;
    await pub.publish([alertAt('s1', 1000, 1, 0)]);
    shards.failing = false;
    await pub.publish([alertAt('s1', 1001, 2, 0)]);
    expect(pub.stats()).toMatchObject({ published: 0, publishFailures: 2 });
    // The resync goes out on the control channel (every 250 ms): wait for the event, not the clock.
    await new Promise<void>((resolve) => sub.onResync(() => resolve()));
    expect(phases).toEqual(['replay']);
    expect(shards.published.map((m) => m.message)).toEqual(['resync']);
    await new Promise((resolve) => setImmediate(resolve)); // the sender learns its resync went out
    await pub.publish([alertAt('s1', 1002, 3, 0)]);
    expect(pub.stats()).toMatchObject({ published: 1, publishFailures: 2 });
    await Promise.all([pub.dispose(), sub.dispose()]);
  });
});
