/**
 * A server's WebSocket text frames (RFC 6455 §5.2: final, unmasked, no extension), written straight into one
 * buffer. `ws` sends a text as two writes, a header buffer and the string, so every frame took two entries in the
 * socket's write queue and, once a turn's writes were uncorked, a `writev` of arrays built for them. A turn's
 * frames to one connection now leave as one buffer and one write: at one frame a turn (an ack, a delivery) that
 * saves the queue's bookkeeping, and at tens (deep pipelines, fan-in) the `writev` of many small pieces too.
 *
 * Only for a connection without permessage-deflate (the hub never offers it): `ws` then writes every frame of
 * its own (ping, pong, close) straight to the socket, so the door only has to write its frames before those.
 */

/** Bytes of a frame's header for a payload of `length` bytes. */
function headerBytes(length: number): number {
  return length < 126 ? 2 : length < 65_536 ? 4 : 10;
}

/** Writes the header of a text frame of `length` payload bytes at `at`; returns where the payload goes. */
function writeHeader(frame: Buffer, at: number, length: number): number {
  frame[at] = 0x81; // FIN, opcode 1 (text)
  if (length < 126) {
    frame[at + 1] = length;
    return at + 2;
  }
  if (length < 65_536) {
    frame[at + 1] = 126;
    frame.writeUInt16BE(length, at + 2);
    return at + 4;
  }
  frame[at + 1] = 127;
  frame.writeUInt32BE(Math.floor(length / 2 ** 32), at + 2);
  frame.writeUInt32BE(length >>> 0, at + 6);
  return at + 10;
}

/** One text frame. */
export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const frame = Buffer.allocUnsafe(headerBytes(length) + length);
  frame.write(text, writeHeader(frame, 0, length), length, 'utf8');
  return frame;
}

/** A text frame for each of `texts`, in order, in one buffer. */
export function textFrames(texts: readonly string[]): Buffer {
  if (texts.length === 1) return textFrame(texts[0]);
  const lengths = new Array<number>(texts.length);
  let total = 0;
  for (let i = 0; i < texts.length; i++) {
    const length = Buffer.byteLength(texts[i]);
    lengths[i] = length;
    total += headerBytes(length) + length;
  }
  const frames = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < texts.length; i++) {
    at = writeHeader(frames, at, lengths[i]);
    at += frames.write(texts[i], at, lengths[i], 'utf8');
  }
  return frames;
}
