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

  it('shares the text of a move among cursors that made it from the same text, and only among those', () => {
    const at = (entries: [number, number][]): AlertCursor => AlertCursor.fromWatermarks(new Map(entries));
    const plain = (c: AlertCursor): string => Buffer.from(c.encode(), 'base64url').toString('utf8');
    const [a, b, other] = [
      at([
        [0, 10],
        [1, 5],
      ]),
      at([
        [0, 10],
        [1, 5],
      ]),
      at([
        [0, 10],
        [1, 6],
      ]),
    ];
    for (const c of [a, b, other]) c.encode();
    // a makes the move first and encodes it; b and other make the same move after.
    a.advance({ partition: 0, offset: 11 });
    expect(plain(a)).toBe('v1:0=11,1=5');
    b.advance({ partition: 0, offset: 11 });
    other.advance({ partition: 0, offset: 11 });
    expect(b.encode()).toBe(a.encode());
    expect(plain(other)).toBe('v1:0=11,1=6');
    // A different move from the same text is not taken for the shared one.
    const c = at([
      [0, 10],
      [1, 5],
    ]);
    c.encode();
    c.advance({ partition: 0, offset: 12 });
    expect(plain(c)).toBe('v1:0=12,1=5');
    // Moves made without encoding in between still encode every offset.
    b.advance({ partition: 1, offset: 7 });
    b.advance({ partition: 2, offset: 1 });
    expect(plain(b)).toBe('v1:0=11,1=7,2=1');
  });
});
