import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { decodeBlobFrame } from '../core/blobs.js';
import type { BlobDelivery, BlobRoom } from '../core/blobs.js';
import { errorFrame, IotcError, toIotcError } from '../core/errors.js';
import { TokenBucket } from '../core/rate-limit.js';
import type { Logger } from '../log.js';
import type { Device, Side } from '../store/types.js';

/** The connection a channel sends through. */
export interface BlobLink {
  readonly ws: WebSocket;
  readonly socket: Duplex;
  readonly device: Device;
  readonly side: Side;
  /** Bytes queued in this turn's corked write: they say nothing of whether the peer reads. */
  readonly corkedBytes: number;
  /** A text reply (a chunk's ack or error), while the socket is open. */
  reply(text: string): void;
  /** A chunk's binary frame. */
  sendFrame(frame: Buffer): void;
}

export interface WsBlobLimits {
  rateLimit: number;
  rateBurst: number;
  maxBlobBytes: number;
}

/**
 * Binary chunks on one WebSocket connection. Inbound: binary frames are stored and acked (with an id in the
 * header) like JSON puts. Outbound: chunks as binary frames, for a connection that asked for binary (`&binary=1`,
 * or by sending a binary frame); any other connection is given the JSON notice instead (WsConnection decides), so
 * a text-only client is never handed bytes it would fail to parse.
 *
 * Latest wins: while more than one chunk limit's worth waits unsent for this peer, a new chunk is parked in its
 * sensor's slot (replacing an older parked one) and sent when the socket drains. A slow viewer skips stale
 * frames and costs at most the backlog plus one chunk per sensor, instead of being cut off or queueing megabytes.
 */
export class WsBlobChannel {
  private readonly bucket: TokenBucket;
  private readonly parked = new Map<string, Buffer>();
  private waitingForDrain = false;
  /** Chunks replaced in their slot before they could be sent, for tests and metrics. */
  skipped = 0;

  constructor(
    private readonly link: BlobLink,
    private readonly blobs: BlobRoom,
    private readonly limits: WsBlobLimits,
    private readonly log: Logger,
  ) {
    this.bucket = new TokenBucket(limits.rateLimit, limits.rateBurst);
  }

  /** An inbound binary frame: a chunk to store and relay. */
  async receive(frame: Buffer): Promise<void> {
    let id: string | number | undefined;
    try {
      if (!this.bucket.take()) throw new IotcError('E_RATE_LIMITED', `Too many messages: slow down (retry in ${this.bucket.waitSeconds()}s)`);
      const { header, data } = decodeBlobFrame(frame);
      id = header.id;
      const info = await this.blobs.put(this.link.device.id, this.link.side, header.sensor, header.type, data);
      // Fire-and-forget without an id, as JSON puts.
      if (id !== undefined) this.link.reply(JSON.stringify({ ok: true, id, seq: info.seq, size: info.size, time: info.time }));
    } catch (err) {
      const e = toIotcError(err);
      if (e.code === 'E_INTERNAL') this.log.error({ err, deviceId: this.link.device.id }, 'binary chunk failed');
      this.link.reply(errorFrame(e, id));
    }
  }

  /** A chunk from the other side, as a binary frame now, or parked until the socket drains. */
  deliver(d: BlobDelivery): void {
    if (this.link.ws.readyState !== WebSocket.OPEN) return;
    if (this.backlog() > this.limits.maxBlobBytes) {
      if (this.parked.has(d.info.sensor)) this.skipped++;
      this.parked.set(d.info.sensor, d.frame);
      if (!this.waitingForDrain) {
        this.waitingForDrain = true;
        this.link.socket.once('drain', () => this.flush());
      }
      return;
    }
    this.link.sendFrame(d.frame);
  }

  private backlog(): number {
    return this.link.ws.bufferedAmount - this.link.corkedBytes;
  }

  private flush(): void {
    this.waitingForDrain = false;
    if (this.link.ws.readyState !== WebSocket.OPEN) {
      this.parked.clear();
      return;
    }
    for (const [sensor, frame] of this.parked) {
      if (this.backlog() > this.limits.maxBlobBytes) break;
      this.parked.delete(sensor);
      this.link.sendFrame(frame);
    }
    if (this.parked.size > 0 && !this.waitingForDrain) {
      this.waitingForDrain = true;
      this.link.socket.once('drain', () => this.flush());
    }
  }

  close(): void {
    this.parked.clear();
  }
}
