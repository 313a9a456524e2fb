/**
 * Which alerts the alert path may publish before storing them, and the chain they are published in
 * (src/stream/alertChain.ts).
 */
import { describe, expect, it } from 'vitest';
import type { ChainLink, OverheatAlert } from '../../src/domain/alert.js';
import { AlertChain } from '../../src/stream/alertChain.js';
import { alertAt } from '../support/readings.js';

const alert = (sensorId: string, tsMs: number, offset: number) => alertAt(sensorId, tsMs, offset);
const offsets = (alerts: readonly OverheatAlert[]) => alerts.map((a) => a.position.offset);
const prevs = (links: readonly ChainLink[]) => links.map((l) => l.prev);
const sensorPrevs = (links: readonly ChainLink[]) => links.map((l) => l.sensorPrev);

describe('an alert chain', () => {
  it('publishes at once the alerts later than everything stored and than their sensor’s last', () => {
    const chain = new AlertChain(1000, 10);
    const { early, late } = chain.split([alert('a', 1001, 10), alert('b', 1002, 11), alert('a', 1003, 12)]);
    expect(offsets(early)).toEqual([10, 11, 12]);
    expect(late).toEqual([]);
  });

  it('keeps a reading that may have been stored before (not above the floor) for after storing, and all after it', () => {
    const chain = new AlertChain(1000, 10);
    const { early, late } = chain.split([alert('a', 1001, 10), alert('b', 1000, 11), alert('c', 1005, 12)]);
    expect(offsets(early)).toEqual([10]);
    expect(offsets(late)).toEqual([11, 12]);
  });

  it('keeps a reading sent again since the partition was taken for after storing, even in a later batch', () => {
    const chain = new AlertChain(-Infinity, 0);
    expect(offsets(chain.split([alert('a', 5000, 0)]).early)).toEqual([0]);
    const again = chain.split([alert('b', 6000, 1), alert('a', 5000, 2)]);
    expect(offsets(again.early)).toEqual([1]);
    expect(offsets(again.late)).toEqual([2]);
    // A sensor's reading older than its last alert may be one sent again as well.
    expect(offsets(chain.split([alert('a', 4000, 3)]).late)).toEqual([3]);
  });

  it('keeps an alert of an old reading for after storing (a replay later could refuse the reading)', () => {
    const chain = new AlertChain(-Infinity, 0);
    const { early, late } = chain.split([alert('a', 5000, 0), alert('b', 3000, 1), alert('c', 6000, 2)], 4000);
    expect(offsets(early)).toEqual([0]);
    expect(offsets(late)).toEqual([1, 2]);
  });

  it('links each published alert to the one before it on the partition, the first to the offset before the first consumed', () => {
    const chain = new AlertChain(-Infinity, 40);
    expect(prevs(chain.link([alert('a', 1, 42), alert('b', 2, 45)]))).toEqual([39, 42]);
    expect(prevs(chain.link([alert('a', 3, 50)]))).toEqual([45]);
  });

  it('links each published alert to its sensor’s alert published before it, a sensor’s first to the offset before the first consumed', () => {
    const chain = new AlertChain(-Infinity, 40);
    const { early } = chain.split([alert('a', 1, 42), alert('b', 2, 45), alert('a', 3, 46)]);
    expect(sensorPrevs(chain.link(early))).toEqual([39, 39, 42]);
    const first = chain.split([alert('b', 1, 47)]); // b's reading is older than its last: held for after storing
    expect(first.early).toEqual([]);
    expect(sensorPrevs(chain.linkHeld(first.late))).toEqual([45]);
    expect(sensorPrevs(chain.link([alert('a', 5, 50), alert('b', 6, 51)]))).toEqual([46, 47]);
  });

  it('drops the alerts fetched again at or before the watermark it was taken at, and links the first after it to that watermark', () => {
    // Taken at offset 40 (the last commit), while the store's watermark is 45: 41-45 are stored already.
    const chain = new AlertChain(1000, 41, 45);
    const fetchedAgain = chain.unstored([alert('a', 990, 43), alert('b', 995, 45), alert('a', 1001, 46)]);
    expect(offsets(fetchedAgain)).toEqual([46]);
    // Nothing held for after storing, so what follows still goes at once.
    const { early, late } = chain.split(fetchedAgain);
    expect(offsets(early)).toEqual([46]);
    expect(late).toEqual([]);
    expect(chain.link(early)).toEqual([{ prev: 45, sensorPrev: 45 }]);
    expect(offsets(chain.unstored([alert('b', 1002, 47)]))).toEqual([47]);
  });

  it('holds every alert of the batches after one with alerts held for after storing, until those are published', () => {
    const chain = new AlertChain(1000, 10);
    // Batch 1: a reading that may have been stored before holds the rest of the batch.
    const first = chain.split([alert('a', 1001, 10), alert('b', 1000, 11)]);
    expect(offsets(first.early)).toEqual([10]);
    chain.link(first.early);
    // Batch 2, judged while batch 1 is being stored: nothing may overtake batch 1's held alert.
    const second = chain.split([alert('c', 1005, 12)]);
    expect(second.early).toEqual([]);
    // Batch 1 stored: its held alert is published, linked after the early one; then batch 2's.
    expect(prevs(chain.linkHeld(first.late))).toEqual([10]);
    expect(prevs(chain.linkHeld(second.late))).toEqual([11]);
    // Nothing held any more: batch 3 goes early again.
    expect(offsets(chain.split([alert('d', 1006, 13)]).early)).toEqual([13]);
  });

  it('notices a watermark with the chain’s head when the notice is sent, beyond it when later batches went early', () => {
    const chain = new AlertChain(-Infinity, 0);
    chain.link([alert('a', 1, 3)]); // batch ending at 5
    chain.link([alert('b', 2, 8)]); // batch ending at 9, published before batch 5 is stored
    expect(chain.notice(5)).toEqual({ watermark: 5, last: 8, takenAt: -1 });
    expect(chain.repeatable()).toBeUndefined(); // 8 is beyond the notice
    expect(chain.notice(9)).toEqual({ watermark: 9, last: 8, takenAt: -1 });
    expect(chain.repeatable()).toEqual({ watermark: 9, last: 8, takenAt: -1 });
  });

  it('tells in every notice where the chain begins: the offset before the first it consumed, or the watermark it found, the later', () => {
    expect(new AlertChain(-Infinity, 40, 25).notice(50).takenAt).toBe(39); // committed offsets caught up
    const behind = new AlertChain(-Infinity, 40, 60); // stored beyond its commit by the previous owner
    expect(behind.notice(70).takenAt).toBe(60);
    expect(behind.repeatable()?.takenAt).toBe(60);
  });

  it('repeats the last progress notice only while nothing was published beyond it', () => {
    const chain = new AlertChain(-Infinity, 0);
    expect(chain.repeatable()).toBeUndefined();
    chain.link([alert('a', 1, 3)]);
    expect(chain.notice(5)).toEqual({ watermark: 5, last: 3, takenAt: -1 });
    expect(chain.repeatable()).toEqual({ watermark: 5, last: 3, takenAt: -1 });
    chain.link([alert('a', 2, 7)]); // published, its batch not stored yet
    expect(chain.repeatable()).toBeUndefined();
    chain.notice(9);
    expect(chain.repeatable()).toEqual({ watermark: 9, last: 7, takenAt: -1 });
  });
});
