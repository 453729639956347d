/**
 * A server's WebSocket text frame (RFC 6455 §5.2: final, unmasked, no extension) with its header and payload in
 * one buffer. `ws` sends a text as two writes, a header buffer and the string, so every frame took two entries
 * in the socket's write queue and, once a turn's writes were uncorked, a `writev` of arrays built for them; a
 * connection sent one frame a turn as often as not (an ack, a delivery), and that bookkeeping cost more than the
 * bytes. One buffer is one entry, and a turn of one frame is a plain write.
 *
 * Only for a connection without permessage-deflate (the hub never offers it): `ws` then writes every frame of
 * its own (ping, pong, close) straight to the socket too, so frames still leave in the order they were made.
 */
export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81; // FIN, opcode 1 (text)
  if (header === 2) frame[1] = length;
  else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  frame.write(text, header, length, 'utf8');
  return frame;
}
