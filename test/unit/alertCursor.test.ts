import { describe, expect, it } from 'vitest';
import { AlertCursor } from '../../src/domain/alertCursor.js';

describe('alert cursor', () => {
  it('round-trips through its opaque encoding', () => {
    const c = AlertCursor.fromWatermarks(
      new Map([
        [0, 10],
        [3, 7],
      ]),
    );
    const back = AlertCursor.decode(c.encode());
    expect(back?.entries()).toEqual(
      new Map([
        [0, 10],
        [3, 7],
      ]),
    );
  });

  it('refuses text that is not one of its cursors', () => {
    expect(AlertCursor.decode('hello')).toBeUndefined();
    expect(AlertCursor.decode(Buffer.from('v1:0=x').toString('base64url'))).toBeUndefined();
    expect(AlertCursor.decode(Buffer.from('v9:0=1').toString('base64url'))).toBeUndefined();
  });

  it('advances per partition and refuses anything already seen', () => {
    const c = AlertCursor.fromWatermarks(new Map([[0, 10]]));
    expect(c.advance({ partition: 0, offset: 10 })).toBe(false);
    expect(c.advance({ partition: 0, offset: 11 })).toBe(true);
    expect(c.advance({ partition: 0, offset: 11 })).toBe(false);
    expect(c.advance({ partition: 1, offset: 0 })).toBe(true);
    expect(c.entries()).toEqual(
      new Map([
        [0, 11],
        [1, 0],
      ]),
    );
  });

  it('encodes the same positions to the same text, whatever the order partitions were first seen in', () => {
    const a = AlertCursor.fromWatermarks(new Map([[3, 7]]));
    a.advance({ partition: 0, offset: 10 });
    a.advance({ partition: 2, offset: 5 });
    const b = AlertCursor.fromWatermarks(
      new Map([
        [2, 5],
        [0, 10],
        [3, 7],
      ]),
    );
    expect(a.encode()).toBe(b.encode());
    expect(Buffer.from(a.encode(), 'base64url').toString('utf8')).toBe('v1:0=10,2=5,3=7');
    // Encoded again after moving on: the text follows the positions, not an earlier encoding.
    a.advance({ partition: 2, offset: 6 });
    expect(Buffer.from(a.encode(), 'base64url').toString('utf8')).toBe('v1:0=10,2=6,3=7');
    expect(b.encode()).not.toBe(a.encode());
  });
});
