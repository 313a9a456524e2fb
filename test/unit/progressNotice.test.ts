/**
 * A progress notice on Redis (fanout/wireFormat.ts): what every replica reads, whichever version
 * sent it.
 */
import { describe, expect, it } from 'vitest';
import { decodeProgress, encodeProgress } from '../../src/fanout/wireFormat.js';

describe('a progress notice', () => {
  it('travels with where its sender’s chain begins, and reads back as sent', () => {
    const notice = { partition: 3, watermark: 1200, last: 1190, takenAt: 900 };
    expect(encodeProgress(notice)).toBe('3:1200:1190:900');
    expect(decodeProgress(encodeProgress(notice))).toEqual(notice);
  });

  it('from a sender without chains, or from before them, is read without `takenAt`', () => {
    expect(decodeProgress('3:1200:1190')).toEqual({ partition: 3, watermark: 1200, last: 1190 });
    expect(encodeProgress({ partition: 3, watermark: 1200, last: 1190 })).toBe('3:1200:1190');
  });

  it('keeps -1, the bound of a partition nothing was stored on', () => {
    expect(decodeProgress('0:5:5:-1')).toEqual({ partition: 0, watermark: 5, last: 5, takenAt: -1 });
  });

  it.each(['', '3', '3:1200', '3:1200:1190:900:7', '3::1190', 'a:b:c', '3:1.5:2', '3:1200:1190:9007199254740993'])(
    'is refused when it reads %j',
    (message) => {
      expect(decodeProgress(message)).toBeUndefined();
    },
  );
});
