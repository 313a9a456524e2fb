/**
 * Reads shared within one turn of the event loop (src/store/sharedReads.ts): the store is asked once
 * per key for the reads asked together, and never answers a read with a query sent before it.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { sharedReads } from '../../src/store/sharedReads.js';

/** A store of versioned values that counts the queries it answers, and when each was sent. */
function countingStore() {
  let version = 0;
  const sent: string[] = [];
  return {
    sent,
    write: () => void version++,
    read: async (key: string) => {
      sent.push(key);
      const seen = version; // the store as it is when the query arrives
      await nextTurn();
      return `${key}@${seen}`;
    },
  };
}

describe('shared reads', () => {
  it('answer every read of a key asked in the same turn with one query', async () => {
    const store = countingStore();
    const read = sharedReads(store.read);
    const answers = await Promise.all(Array.from({ length: 1000 }, () => read('page-1')));
    expect(store.sent).toEqual(['page-1']);
    expect(new Set(answers)).toEqual(new Set(['page-1@0']));
  });

  it('send one query per key', async () => {
    const store = countingStore();
    const read = sharedReads(store.read);
    await Promise.all([read('a'), read('b'), read('a'), read('c'), read('b')]);
    expect(store.sent.sort()).toEqual(['a', 'b', 'c']);
  });

  it('never answer a read with a query sent before it was asked', async () => {
    const store = countingStore();
    const read = sharedReads(store.read);
    const early = read('watermarks');
    await nextTurn(); // the query is on its way
    store.write();
    const late = read('watermarks'); // asked after the write: must see it
    expect(await early).toBe('watermarks@0');
    expect(await late).toBe('watermarks@1');
    expect(store.sent).toEqual(['watermarks', 'watermarks']);
  });

  it('fail every read that shared a failed query, and read afresh afterwards', async () => {
    let fail = true;
    const read = sharedReads(async (key) => {
      if (fail) throw new Error(`store down reading ${key}`);
      return key;
    });
    const results = await Promise.allSettled([read('x'), read('x')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await expect(read('x')).resolves.toBe('x');
  });
});
