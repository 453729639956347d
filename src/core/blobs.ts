import { IotcError } from './errors.js';
import { CommitBatcher } from './write-batcher.js';
import { sensorName } from './messages.js';
import type { Receiver } from './receivers.js';
import type { Relay } from './relay.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { otherSide } from '../store/types.js';
import type { BlobInfo, NewBlob, Side, Store, StoredBlob, StoredReading } from '../store/types.js';

/**
 * Binary chunks (camera frames, sound clips, small files): stored per device and sensor within a byte budget,
 * and relayed byte-exact to the other side's connections.
 *
 * Binary frame (WebSocket), both directions:
 *   byte 0          N, the header's length in bytes (1..255)
 *   bytes 1..N      the header: a UTF-8 JSON object, e.g. {"sensor":"cam","type":"image/jpeg"}
 *   bytes N+1..     the chunk, exactly as sent
 * Inbound headers name `sensor` (required), `type` (optional content type) and `id` (optional: ask for an ack).
 * Outbound headers carry `sensor`, `type`, `size`, `time`, `write` and `seq`.
 */
export const DEFAULT_BLOB_TYPE = 'application/octet-stream';
const TYPE_MAX = 100;
/** Chunk bytes that may wait for the store before new ones are refused (E_UNAVAILABLE). */
const MAX_QUEUED_BLOB_BYTES = 64 * 1024 * 1024;
/** A MIME type as a sender would write it: type/subtype with optional parameters, printable ASCII only. */
const MIME = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}(\s*;[\x20-\x7e]*)?$/;

export type BlobConfig = Pick<Config, 'maxBlobBytes' | 'blobBudgetBytes'>;

/** What every receiver of one chunk shares: built once per chunk, whatever the number of receivers. */
export interface BlobDelivery {
  info: BlobInfo;
  data: Buffer;
  /** The outbound binary frame: header and bytes. */
  frame: Buffer;
  /** The JSON text notice for connections that did not ask for binary frames. */
  notice: string;
  /** The notice as a reading, for receivers that only take readings. */
  noticeReading: StoredReading;
}

export interface BlobHeader {
  sensor: string;
  type: string;
  id?: string | number;
}

/** Where the bytes of a sensor's latest chunk can be fetched over HTTP. */
export function blobUrl(deviceId: string, sensor: string): string {
  return `/api/v1/devices/${deviceId}/blobs/${encodeURIComponent(sensor)}`;
}

/** A content type as sent, checked; none given means application/octet-stream. */
export function blobType(raw: unknown): string {
  if (raw === undefined || raw === null || raw === '') return DEFAULT_BLOB_TYPE;
  if (typeof raw !== 'string' || raw.length > TYPE_MAX || !MIME.test(raw)) {
    throw new IotcError('E_VALIDATION', `type must be a content type like "image/jpeg" (at most ${TYPE_MAX} characters)`);
  }
  return raw;
}

/** Reads an inbound binary frame; throws a clear E_BAD_MESSAGE / E_VALIDATION when the header is wrong. */
export function decodeBlobFrame(frame: Buffer): { header: BlobHeader; data: Buffer } {
  const length = frame.length > 0 ? frame[0] : 0;
  if (length === 0 || frame.length < 1 + length || frame[1] !== 0x7b) {
    throw new IotcError('E_BAD_MESSAGE', 'A binary frame starts with one byte N, then an N-byte JSON header like {"sensor":"cam","type":"image/jpeg"}, then the bytes');
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(frame.subarray(1, 1 + length).toString('utf8'));
  } catch {
    throw new IotcError('E_BAD_MESSAGE', 'The binary frame header is not valid JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new IotcError('E_BAD_MESSAGE', 'The binary frame header must be a JSON object');
  const sensor = sensorName.safeParse(header.sensor);
  if (!sensor.success) throw new IotcError('E_VALIDATION', sensor.error.issues[0].message);
  const id = header.id;
  if (id !== undefined && !(typeof id === 'number' || (typeof id === 'string' && id.length <= 64))) {
    throw new IotcError('E_VALIDATION', 'id must be a string (at most 64 characters) or a number');
  }
  return { header: { sensor: sensor.data, type: blobType(header.type), id: id as BlobHeader['id'] }, data: frame.subarray(1 + length) };
}

const JSON_START = new Set([0x7b, 0x5b, 0x20, 0x09, 0x0a, 0x0d]); // { [ and JSON's whitespace

/**
 * Whether a binary WebSocket frame is really a JSON message, as some device libraries send them: those were
 * always read like text frames, and still are. A chunk's header starts right after its length byte with "{",
 * so only a frame starting with a length that is also a JSON start, followed by "{", needs a closer look.
 */
export function isJsonTextFrame(frame: Buffer): boolean {
  if (frame.length === 0 || !JSON_START.has(frame[0])) return false;
  if (frame[1] !== 0x7b) return true;
  try {
    JSON.parse(frame.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

/** Builds a binary frame: the one-byte length, the JSON header, the bytes. */
export function encodeBlobFrame(header: Record<string, unknown>, data: Buffer): Buffer {
  const head = Buffer.from(JSON.stringify(header));
  if (head.length > 255) throw new IotcError('E_VALIDATION', 'The sensor name and type are too long for a binary frame header (255 bytes)');
  return Buffer.concat([Buffer.from([head.length]), head, data]);
}

/** Signatures of the image formats a page shows inline: what an MQTT 3.1.1 publish, which names no type, most likely is. */
const IMAGE_SIGNATURES: [string, number[], number][] = [
  ['image/jpeg', [0xff, 0xd8, 0xff], 0],
  ['image/png', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 0],
  ['image/gif', [0x47, 0x49, 0x46, 0x38], 0],
  ['image/webp', [0x57, 0x45, 0x42, 0x50], 8],
];

/** The image type the bytes start like (JPEG, PNG, GIF, WebP), or application/octet-stream. */
export function sniffBlobType(bytes: Buffer): string {
  for (const [type, magic, at] of IMAGE_SIGNATURES) {
    if (bytes.length >= at + magic.length && magic.every((b, i) => bytes[at + i] === b)) {
      // WebP is RIFF....WEBP.
      if (type !== 'image/webp' || bytes.toString('latin1', 0, 4) === 'RIFF') return type;
    }
  }
  return DEFAULT_BLOB_TYPE;
}

/** Whether bytes are valid UTF-8 text (MQTT payloads that are not are binary chunks). */
export function isUtf8Text(bytes: Buffer): boolean {
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The room of binary chunks: checks, stores (ack after commit) and delivers to the other side on this node. */
export class BlobRoom {
  readonly counters = { chunksIn: 0, bytesIn: 0, chunksOut: 0, bytesOut: 0 };
  /**
   * The chunks of a turn (and those arriving while a commit runs) share one transaction and one prune per
   * device: on PostgreSQL a commit's WAL flush, not the bytes, is what bounds frames per second.
   */
  private readonly batcher: CommitBatcher<NewBlob, BlobInfo>;

  constructor(
    private readonly relay: Relay,
    private readonly config: BlobConfig,
    private readonly log?: Logger,
  ) {
    relay.onBusBlob = (e) => void this.fromBus(e.deviceId, e.sensor, e.seq);
    this.batcher = blobBatcher(relay.store, config);
  }

  /** Commits every chunk accepted so far (at shutdown, after the doors stopped taking new ones). */
  drain(): Promise<void> {
    return this.batcher.drain();
  }

  get maxBytes(): number {
    return this.config.maxBlobBytes;
  }

  /** Refuses a chunk over the limit before anything is stored. */
  checkSize(size: number): void {
    if (size > this.config.maxBlobBytes) {
      throw new IotcError('E_TOO_LARGE', `The chunk is ${size} bytes; the limit is ${this.config.maxBlobBytes} bytes (--max-blob / IOTC_MAX_BLOB)`);
    }
  }

  /** Stores a chunk (pruning the device's oldest beyond its budget), then delivers it; resolves once committed. */
  async put(deviceId: string, side: Side, sensor: string, type: string, data: Buffer): Promise<BlobInfo> {
    this.checkSize(data.length);
    const checked = sensorName.safeParse(sensor);
    if (!checked.success) throw new IotcError('E_VALIDATION', checked.error.issues[0].message);
    // The outbound header must fit its one length byte whatever the sequence number: checked before storing.
    encodeBlobFrame({ sensor, type: blobType(type), size: data.length, time: Date.now(), write: 'client', seq: Number.MAX_SAFE_INTEGER, sync: true }, Buffer.alloc(0));
    // Copied: the door's buffer may be a view into a bigger one that it reuses.
    const bytes = Buffer.from(data);
    const [info] = await this.batcher.write([{ deviceId, sensor, side, type: blobType(type), data: bytes, time: Date.now() }]);
    this.counters.chunksIn++;
    this.counters.bytesIn += bytes.length;
    this.deliver(info, bytes);
    // Other nodes get only its number: the bytes are in the store they share, and a bus message stays small.
    this.relay.bus.publish({ type: 'blob', deviceId, sensor: info.sensor, seq: info.seq }).catch((err) => {
      this.log?.warn({ err, deviceId }, 'could not announce a binary chunk to other nodes; it is stored, and they can fetch it');
    });
    return info;
  }

  /** A chunk stored on another node: delivered here if this node holds connections of the other side. */
  private async fromBus(deviceId: string, sensor: string, seq: number): Promise<void> {
    if (this.relay.receiversOf(deviceId, 'device').length === 0 && this.relay.receiversOf(deviceId, 'client').length === 0) return;
    try {
      const blob = await this.relay.store.getBlob(deviceId, sensor, seq);
      // Already pruned (a budget smaller than what is in flight): a newer chunk follows.
      if (blob) this.deliver(blob, blob.data);
    } catch (err) {
      this.log?.warn({ err, deviceId }, 'could not read a binary chunk stored on another node');
    }
  }

  private deliver(info: BlobInfo, data: Buffer): void {
    const receivers = this.relay.receiversOf(info.deviceId, otherSide(info.side));
    if (receivers.length === 0) return;
    const delivery = blobDelivery(info, data);
    for (const r of receivers) this.relay.sendBlob(r, delivery);
    this.counters.chunksOut += receivers.length;
    this.counters.bytesOut += receivers.length * data.length;
  }
}

/** Chunks to store, gathered into one transaction per turn (or per commit already running). */
export function blobBatcher(store: Pick<Store, 'appendBlobs'>, config: BlobConfig): CommitBatcher<NewBlob, BlobInfo> {
  return new CommitBatcher({
    commit: (blobs) => store.appendBlobs(blobs, config.blobBudgetBytes),
    weigh: (b) => b.data.length,
    // Bytes waiting for the store: enough for every camera of a busy node to have a few frames in flight.
    maxQueued: Math.max(MAX_QUEUED_BLOB_BYTES, 4 * config.maxBlobBytes),
    noun: 'chunk',
  });
}

/** The notice's value: what a text-only connection learns of a chunk, and where to fetch its bytes. */
export function blobNoticeValue(info: BlobInfo): { blob: true; type: string; size: number; seq: number; url: string } {
  return { blob: true, type: info.type, size: info.size, seq: info.seq, url: blobUrl(info.deviceId, info.sensor) };
}

/** `sync`: sent on connecting (see Relay.attach), marked `"sync":true` in the header and the notice as sync readings are. */
export function blobDelivery(info: BlobInfo, data: Buffer, sync = false): BlobDelivery {
  const value = blobNoticeValue(info);
  const mark = sync ? { sync: true } : {};
  const notice = JSON.stringify({ sensor: info.sensor, value, time: info.time, write: info.side, ...mark });
  const frame = encodeBlobFrame({ sensor: info.sensor, type: info.type, size: info.size, time: info.time, write: info.side, seq: info.seq, ...mark }, data);
  // Negative: never compared with a reading's sequence number by a door that keeps the newest per sensor.
  const noticeReading: StoredReading = { deviceId: info.deviceId, sensor: info.sensor, value, side: info.side, time: info.time, seq: -info.seq };
  return { info, data, frame, notice, noticeReading };
}

/** A chunk as a receiver takes it: the delivery itself, or its JSON notice for a receiver that only takes readings. */
export function handOverBlob(r: Receiver, d: BlobDelivery): void {
  if (r.deliverBlob) r.deliverBlob(d);
  else r.deliver(d.noticeReading, d.notice);
}

/**
 * What a new connection gets of chunks once its sync is made: per sensor, the newer of the stored chunk to sync
 * (marked sync) and one delivered live while the sync was read, oldest first; never both, never the older after.
 */
export function syncedBlobs(stored: StoredBlob[], live: ReadonlyMap<string, BlobDelivery>): BlobDelivery[] {
  const out = new Map<string, BlobDelivery>(live);
  for (const b of stored) {
    const l = live.get(b.sensor);
    if (!l || l.info.seq < b.seq) out.set(b.sensor, blobDelivery(b, b.data, true));
  }
  return [...out.values()].sort((a, b) => a.info.seq - b.info.seq);
}
