/**
 * What a feed subscription knows of one partition (fanout/partitionState.ts). The feed's behaviour
 * with these rules is specified in alertFeed.test.ts and the integration suites; here, the rules.
 */
import { describe, expect, it } from 'vitest';
import { PartitionState, Partitions, type LiveEntry } from '../../src/fanout/partitionState.js';

type Item = { readonly id: string };
const entry = (id: string): LiveEntry<Item> => ({ item: { id }, link: undefined });

describe('what a subscription knows of a partition', () => {
  it('has nothing at first, and has every offset up to the one it advanced through, never moving back', () => {
    const p = new PartitionState<Item>();
    expect(p.has(0)).toBe(false);
    expect(p.has(-1)).toBe(true);
    p.advanceThrough(7);
    p.advanceThrough(3);
    expect(p.through).toBe(7);
    expect(p.has(7)).toBe(true);
    expect(p.has(8)).toBe(false);
  });

  it('records a notice: noticed, the highest `last` and the highest watermark heard', () => {
    const p = new PartitionState<Item>();
    p.hear({ partition: 0, watermark: 5, last: 9 });
    p.hear({ partition: 0, watermark: 4, last: 6 });
    expect([p.noticed, p.heardLast, p.covered]).toEqual([true, 9, 5]);
  });

  it('knows no watermark after a notice of an empty partition (-1), as before any notice', () => {
    const p = new PartitionState<Item>();
    p.hear({ partition: 0, watermark: -1, last: -1 });
    expect(p.covered).toBeUndefined();
    expect(p.noticed).toBe(true);
  });

  it('forgets its join, the notice that led to it and its target when live delivery may have lost items', () => {
    const p = new PartitionState<Item>();
    p.hear({ partition: 0, watermark: 5, last: 5 });
    p.target = 5;
    p.joined = true;
    p.unjoin();
    expect([p.joined, p.noticed, p.target]).toEqual([false, false, undefined]);
    // What it has is still had: only the join is to be made again.
    expect(p.heardLast).toBe(5);
  });

  it('queues live items that wait for the store, and hands them back in arrival order once, with the need cleared', () => {
    const p = new PartitionState<Item>();
    p.startWaiting(entry('a'), 4);
    p.waiting!.push(entry('b'));
    expect(p.need).toBe(4);
    expect(p.stopWaiting().map((e) => e.item.id)).toEqual(['a', 'b']);
    expect([p.waiting, p.need]).toEqual([undefined, undefined]);
    expect(p.stopWaiting()).toEqual([]);
  });

  it('is owed the highest offset let go until the store reaches it', () => {
    const p = new PartitionState<Item>();
    p.owe(8);
    p.owe(3);
    p.settleOwed(7);
    expect(p.owed).toBe(8);
    p.settleOwed(8);
    expect(p.owed).toBeUndefined();
  });
});

describe("a subscription's partitions", () => {
  it('are visited in partition order, whatever the order they were first met in', () => {
    const partitions = new Partitions<Item>();
    for (const n of [5, 0, 3]) partitions.of(n);
    expect([...partitions.entries()].map(([n]) => n)).toEqual([0, 3, 5]);
    expect(partitions.of(3)).toBe(partitions.of(3));
  });

  it('wait for the store while any partition has items waiting or owed', () => {
    const partitions = new Partitions<Item>();
    partitions.of(1);
    expect([partitions.waitsForStore(), partitions.owes()]).toEqual([false, false]);
    partitions.of(2).owe(4);
    expect([partitions.waitsForStore(), partitions.owes()]).toEqual([true, true]);
    partitions.of(2).settleOwed(4);
    partitions.of(0).startWaiting(entry('a'), undefined);
    expect([partitions.waitsForStore(), partitions.owes()]).toEqual([true, false]);
  });
});
