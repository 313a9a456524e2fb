/**
 * The alert path's partitions change hands only once their owner has stored what it judged
 * (src/stream/handoverAssigner.ts), against the real broker and the real store: two consumers of
 * one group, the first with a backlog it has not stored yet when the second joins.
 */
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { ensureTopics } from '../../src/stream/kafka.js';
import { handoverAssigner } from '../../src/stream/handoverAssigner.js';
import { connectMongoStore, type MongoStore } from '../../src/store/mongoStore.js';
import { isolatedEnv, storeOptionsFrom, uniqueName } from '../support/env.js';
import { eventually } from '../support/wait.js';

const env = isolatedEnv('handover');
const kafka = new Kafka({ clientId: 'handover-test', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
const topic = uniqueName('handover');
const logger = createLogger('silent');
let store: MongoStore;
const consumers: Consumer[] = [];

beforeAll(async () => {
  store = await connectMongoStore({ ...storeOptionsFrom(env), logger });
  await ensureTopics(kafka, [{ topic, partitions: 4, replicationFactor: 1 }]);
});
afterAll(async () => {
  await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
  await store?.dispose();
});

/** A consumer whose backlog is stored when the test says so. */
function member(groupId: string, events: string[] = []) {
  let busy = false;
  let release: () => void = () => undefined;
  let stored = Promise.resolve();
  const assigned: number[][] = [];
  // Calls the assigner made: hurry() comes before each idle() of a member's own hand-over, so an
  // idle() beyond those, or a look at another member's hand-over, is a leader holding the
  // assignment back for a backlog.
  let hurries = 0;
  let idles = 0;
  let handoverLookups = 0;
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10_000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 100, // an idle member notices a rebalance at once, as the replicas' consumers do
    rebalanceTimeout: 60_000,
    partitionAssigners: [
      handoverAssigner({
        instance: uniqueName('member'),
        busy: () => busy,
        idle: () => {
          idles++;
          return stored;
        },
        hurry: () => {
          hurries++;
        },
        handedOver: (instance, seq) => store.progress.handedOver(instance, seq),
        handoverOf: (instance) => {
          handoverLookups++;
          return store.progress.handoverOf(instance);
        },
        // Within the session: the leader does not heartbeat while it waits.
        maxWaitMs: 6_000,
        logger,
      }),
    ],
  });
  consumers.push(consumer);
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    assigned.push(e.payload.memberAssignment[topic] ?? []);
    events.push(`assigned ${assigned.length}`);
  });
  return {
    assigned,
    /** Whether this member, as the group's leader, has held the assignment back for a backlog. */
    heldAssignment: () => idles > hurries || handoverLookups > 0,
    async start() {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachBatch: async () => undefined });
    },
    /** Judged batches not stored yet: busy until storeBacklog(). */
    holdBacklog() {
      busy = true;
      stored = new Promise<void>((resolve) => (release = resolve));
    },
    storeBacklog() {
      busy = false;
      release();
    },
  };
}

/** A new group whose first member holds every partition. */
async function groupWithOneMember() {
  const groupId = uniqueName('handover-group');
  const first = member(groupId);
  await first.start();
  await eventually(
    () => first.assigned.at(-1) ?? [],
    (p) => p.length === 4,
    { what: 'the first member to hold every partition' },
  );
  return { groupId, first };
}

describe('handing alert-path partitions over', () => {
  it('gives a joining replica its partitions only once the replica that had them has stored its backlog', async () => {
    const { groupId, first } = await groupWithOneMember();

    first.holdBacklog();
    const events: string[] = [];
    const second = member(groupId, events);
    const joined = second.start(); // resolves once it has joined
    // The group is rebalancing, and its leader holds the assignment back: nobody gets the first
    // member's partitions while its backlog is unstored.
    await eventually(
      () => first.heldAssignment() || second.heldAssignment(),
      (held) => held,
      { what: 'the leader to hold the assignment back for the backlog' },
    );
    expect(second.assigned).toEqual([]);

    events.push('backlog stored');
    first.storeBacklog();
    await joined;
    // Then the partitions are shared: each member's assignment of the new generation.
    const [kept, got] = await eventually(
      () => [first.assigned.at(-1)!, second.assigned.at(-1) ?? []],
      ([k, g]) => k.length + g.length === 4 && g.length > 0,
      { what: 'the partitions to be shared between both members' },
    );
    expect([...kept, ...got].sort()).toEqual([0, 1, 2, 3]);
    // The joining member got its first assignment only after the backlog was stored.
    expect(events[0]).toBe('backlog stored');
  }, 90_000);

  it('does not wait when no member has anything left to store', async () => {
    const { groupId } = await groupWithOneMember();
    const second = member(groupId);
    await second.start();
    const got = await eventually(
      () => second.assigned.at(-1) ?? [],
      (p) => p.length > 0,
      { what: 'the second member to get partitions' },
    );
    expect(got.length).toBe(2);
  }, 90_000);
});
