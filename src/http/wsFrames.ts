/**
 * WebSocket text frames (RFC 6455 §5.2) as a server writes them: FIN, opcode 1, no mask, the
 * payload length in 7, 16 or 64 bits. One buffer per frame, so a frame is one write on the socket
 * (the `ws` sender writes its header and payload separately: two writes per frame).
 */

/** The whole frame carrying `text`. */
export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
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
  frame.write(text, header, 'utf8');
  return frame;
}
