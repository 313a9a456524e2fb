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
});
