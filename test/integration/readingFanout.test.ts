/**
 * The live readings' fan-out (src/fanout/readingFanout.ts) on the real Redis, two connections
 * standing for two replicas, its clock given: a partition whose batch reached nobody is not
 * published again for QUIET_MS, and readings reach the listeners of their sensor and those of all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reading } from '../../src/domain/reading.js';
import { QUIET_MS, connectReadingFanout, type ReadingFanout } from '../../src/fanout/readingFanout.js';
import { createLogger } from '../../src/logger.js';
import { uniqueName } from '../support/env.js';
import { eventually } from '../support/wait.js';

let clock = 1_000_000;
const options = () => ({
  url: 'redis://127.0.0.1:6379',
  channelPrefix: uniqueName('live-fanout'),
  logger: createLogger('silent'),
  now: () => clock,
});
let publisher: ReadingFanout;
let listener: ReadingFanout;

function batch(...sensorIds: string[]): Reading[] {
  return sensorIds.map((sensorId, i) => ({
    sensorId,
    ts: new Date(Date.UTC(2026, 11, 7, 10, 0, i)),
    temperature: 20 + i,
    humidity: 50,
    location: { lat: 1, lon: 2 },
  }));
}

beforeAll(async () => {
  const shared = options();
  [publisher, listener] = await Promise.all([connectReadingFanout(shared), connectReadingFanout(shared)]);
});
afterAll(async () => {
  await Promise.all([publisher?.dispose(), listener?.dispose()]);
});

describe('the live readings fan-out', () => {
  it('publishes a partition that reached nobody again only after QUIET_MS, other partitions meanwhile', async () => {
    const start = publisher.stats();
    publisher.publish(0, batch('s-1'));
    await eventually(
      () => publisher.stats().published,
      (n) => n === start.published + 1,
      { what: 'the first publish' },
    );
    for (let i = 0; i < 5; i++) publisher.publish(0, batch('s-1'));
    expect(publisher.stats().skipped).toBe(start.skipped + 5);
    publisher.publish(1, batch('s-2'));
    await eventually(
      () => publisher.stats().published,
      (n) => n === start.published + 2,
      { what: 'the other partition published' },
    );
    clock += QUIET_MS;
    publisher.publish(0, batch('s-1'));
    await eventually(
      () => publisher.stats().published,
      (n) => n === start.published + 3,
      { what: 'partition 0 published again' },
    );
    expect(publisher.stats().publishFailures).toBe(0);
  });

  it("hands each reading to its sensor's listeners and to those of all, then costs nothing once they leave", async () => {
    const ofOne: Reading[] = [];
    const ofAll: Reading[] = [];
    const stops = await Promise.all([
      listener.listen(['s-1'], (r) => ofOne.push(r)),
      listener.listen(undefined, (r) => ofAll.push(r)),
    ]);
    clock += QUIET_MS; // partition 2 may have been muted by an earlier publish
    const sent = batch('s-1', 's-2', 's-1');
    publisher.publish(2, sent);
    await eventually(
      () => ofAll.length,
      (n) => n === 3,
      { what: 'the batch' },
    );
    expect(ofAll).toEqual(sent);
    expect(ofOne).toEqual([sent[0], sent[2]]);

    for (const stop of stops) stop();
    // The listener's unsubscribe may still be on its way: publish until a batch reaches nobody,
    // which mutes the partition (the next publish at the same time is skipped).
    await eventually(
      async () => {
        clock += QUIET_MS;
        await publishSettled(2);
        const skipped = publisher.stats().skipped;
        publisher.publish(2, batch('s-1'));
        if (publisher.stats().skipped === skipped + 1) return true;
        return false;
      },
      (muted) => muted,
      { intervalMs: 200, what: 'partition 2 muted once nobody listens' },
    );
  });
});

/** Publishes one batch on `partition` and waits for Redis's answer. */
async function publishSettled(partition: number): Promise<void> {
  const { published, publishFailures } = publisher.stats();
  publisher.publish(partition, batch('s-1'));
  await eventually(
    () => publisher.stats(),
    (s) => s.published + s.publishFailures > published + publishFailures,
    { what: 'the answer to a publish' },
  );
}
