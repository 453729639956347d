/**
 * MQTT packets cut out of the client's byte stream before any parser sees them, so a packet larger than the
 * limit is refused before it is buffered (the broker's parser would otherwise collect up to 256 MB for one packet).
 */
import { REASON } from './reason-codes.js';

export class WireError extends Error {
  override name = 'WireError';
}

/**
 * The length of the whole packet that starts at `at` in `buf`, or 0 if it has not all arrived. Throws when its
 * remaining length is malformed or over the limit, which is known from its first bytes.
 */
export function frameLength(buf: Buffer, at: number, maxPacketBytes: number): number {
  if (buf.length - at < 2) return 0;
  let remaining = 0;
  let i = at + 1;
  for (let mul = 1; ; mul *= 128, i++) {
    if (i > at + 4) throw new WireError('malformed remaining length');
    if (i >= buf.length) return 0;
    remaining += (buf[i] & 0x7f) * mul;
    if ((buf[i] & 0x80) === 0) break;
  }
  if (remaining > maxPacketBytes) {
    const err = new WireError(`packet of ${remaining} bytes is larger than the limit of ${maxPacketBytes}`);
    (err as Error & { reason?: number }).reason = REASON.packetTooLarge;
    throw err;
  }
  const total = i + 1 - at + remaining;
  return buf.length - at < total ? 0 : total;
}

/**
 * A QoS 0 PUBLISH, as mqtt-packet's generate writes it (test/mqtt-framing.test.ts holds them byte for byte),
 * in one buffer written straight from the strings: the door sends one per delivered value, and the generic
 * generator cost a twentieth of the door's time.
 */
export function publishFrame(topic: string, payload: Buffer | string, retain: boolean): Buffer {
  const topicBytes = Buffer.byteLength(topic);
  const payloadBytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const remaining = 2 + topicBytes + payloadBytes;
  const lengthBytes = remaining < 0x80 ? 1 : remaining < 0x4000 ? 2 : remaining < 0x200000 ? 3 : 4;
  const out = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  out[0] = retain ? 0x31 : 0x30;
  let i = 1;
  for (let n = remaining; ; ) {
    const low = n & 0x7f;
    n >>>= 7;
    if (n === 0) {
      out[i++] = low;
      break;
    }
    out[i++] = low | 0x80;
  }
  out.writeUInt16BE(topicBytes, i);
  i += 2 + out.write(topic, i + 2, 'utf8');
  if (typeof payload === 'string') out.write(payload, i, 'utf8');
  else payload.copy(out, i);
  return out;
}

/** Where the variable header of the packet at `at` begins: after its first byte and its remaining length. */
export function bodyStart(buf: Buffer, at: number): number {
  let i = at + 1;
  while (i < buf.length && buf[i] & 0x80) i++;
  return i + 1;
}

/** Where a CONNECT frame holds its protocol level (3 = 3.1, 4 = 3.1.1, 5 = 5.0; the bridge bit aside); the keep-alive is 2 bytes on. */
export function connectLevelAt(frame: Buffer): number {
  const i = bodyStart(frame, 0);
  if (i + 2 > frame.length) throw new WireError('CONNECT too short');
  const nameLength = frame.readUInt16BE(i);
  const at = i + 2 + nameLength;
  if (at >= frame.length) throw new WireError('CONNECT too short');
  return at;
}

/**
 * A 3.1/3.1.1 CONNECT with its keep-alive (2 bytes at `at`) as `grant` holds it: without one, a connection
 * that goes silent would be kept forever (the broker times out only those that asked for a keep-alive).
 */
export function withKeepalive(frame: Buffer, at: number, grant: (asked: number) => number): Buffer {
  if (at + 2 > frame.length) throw new WireError('CONNECT too short');
  const asked = frame.readUInt16BE(at);
  const granted = grant(asked);
  if (granted === asked) return frame;
  const copy = Buffer.from(frame);
  copy.writeUInt16BE(granted, at);
  return copy;
}
