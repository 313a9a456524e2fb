/**
 * WebSocket text frames (RFC 6455 §5.2) as a server writes them: FIN, opcode 1, no mask, the
 * payload length in 7, 16 or 64 bits. One buffer per frame, so a frame is one write on the socket
 * (the `ws` sender writes its header and payload separately: two writes per frame).
 */

/** The whole frame carrying `text`. */
export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const frame = withHeader(length);
  frame.write(text, frame.length - length, 'utf8');
  return frame;
}

/**
 * The whole frame carrying the UTF-8 text `head` then `body`: a subscriber's own start of a message
 * (its id) and the rest, which many subscribers share. Bytes copied, nothing encoded.
 */
export function joinedTextFrame(head: Buffer, body: Buffer): Buffer {
  const frame = withHeader(head.length + body.length);
  const start = frame.length - head.length - body.length;
  head.copy(frame, start);
  body.copy(frame, start + head.length);
  return frame;
}

/** A frame for a payload of `length` bytes, its header written, its payload still to write. */
function withHeader(length: number): Buffer {
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81; // FIN + text
  if (header === 2) frame[1] = length;
  else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  return frame;
}
