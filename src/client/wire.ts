import { IotcError } from './errors.js';
import type { Reading } from './types.js';

/** A reading as the client hands it over: the fields of the wire frame, `sync` only when set. */
export function toReading(m: any): Reading {
  const r: Reading = { sensor: m.sensor, value: m.value, time: m.time, write: m.write };
  if (m.sync) r.sync = true;
  return r;
}

/** A history bound as the hub takes it: a Date becomes ms since epoch. */
export function timeBound(t: number | string | Date): number | string {
  return t instanceof Date ? t.getTime() : t;
}

/** The binary frame of a putBlob: its length byte, its JSON header (with the request id, for the ack), the bytes. */
export function blobFrame(message: Record<string, unknown>, id: number): Uint8Array {
  const head = new TextEncoder().encode(JSON.stringify({ sensor: message.sensor, type: message.type, id }));
  if (head.length > 255) throw new IotcError('E_VALIDATION', 'The sensor name and type are too long for a binary frame header');
  const bytes = message.bytes as Uint8Array;
  const frame = new Uint8Array(1 + head.length + bytes.length);
  frame[0] = head.length;
  frame.set(head, 1);
  frame.set(bytes, 1 + head.length);
  return frame;
}
