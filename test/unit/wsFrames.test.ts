/**
 * Text frames written by the server itself (src/http/wsFrames.ts) are the frames `ws` writes: the
 * same bytes for payloads across the three length encodings, multi-byte characters included.
 */
import * as ws from 'ws';
import { describe, expect, it } from 'vitest';
import { joinedTextFrame, textFrame } from '../../src/http/wsFrames.js';

/** ws' own frame encoder (not in its type declarations). */
const { Sender } = ws as unknown as {
  Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] };
};

/** What `ws` writes for a server text frame (header and payload, joined). */
function wsFrame(text: string): Buffer {
  const parts = Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false });
  return Buffer.concat(parts);
}

describe('a text frame', () => {
  it.each([0, 1, 125, 126, 127, 65_535, 65_536, 70_000, 1_048_576])('of %i bytes is the frame ws writes', (n) => {
    const text = 'a'.repeat(n);
    expect(textFrame(text).equals(wsFrame(text))).toBe(true);
  });

  it('counts bytes, not characters', () => {
    const text = 'température ≥ 80 °C 🔥'.repeat(10);
    expect(textFrame(text).equals(wsFrame(text))).toBe(true);
  });

  it.each([
    [1, 0],
    [10, 115],
    [10, 116],
    [40, 65_495],
    [40, 65_496],
    [40, 70_000],
  ])('joined from a head of %i bytes and a body of %i is the frame ws writes for both', (h, b) => {
    const head = 'h'.repeat(h - 1) + '{';
    const body = '°'.repeat(Math.floor(b / 2)) + 'b'.repeat(b % 2); // ° is two bytes in UTF-8
    expect(joinedTextFrame(Buffer.from(head), Buffer.from(body)).equals(wsFrame(head + body))).toBe(true);
  });
});
