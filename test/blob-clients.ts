/** Test clients for binary chunks: a WebSocket keeping text and binary frames apart, and JPEG-like bytes. */
import crypto from 'node:crypto';
import type { WebSocket } from 'ws';
import { encodeBlobFrame } from '../src/core/blobs.js';
import { socketTo, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';

/** A WebSocket client keeping text messages (parsed) and binary frames (header + bytes) apart. */
export class BlobClient {
  readonly ws: WebSocket;
  readonly texts: any[] = [];
  readonly frames: { header: any; data: Buffer }[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  constructor(url: string) {
    ({ ws: this.ws, opened: this.opened, closed: this.closed } = socketTo(url));
    this.ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary) return void this.texts.push(JSON.parse(data.toString()));
      const n = data[0];
      this.frames.push({ header: JSON.parse(data.subarray(1, 1 + n).toString()), data: Buffer.from(data.subarray(1 + n)) });
    });
  }
  static async open(server: TestServer, dev: { id: string; key: string }, side: 'device' | 'client', binary = false): Promise<BlobClient> {
    const c = new BlobClient(`${server.wsUrl}/ws?device=${dev.id}&key=${dev.key}&side=${side}${binary ? '&binary=1' : ''}`);
    await c.opened;
    return c;
  }
  putBlob(sensor: string, data: Buffer, type?: string, id?: number): void {
    this.ws.send(encodeBlobFrame({ sensor, ...(type ? { type } : {}), ...(id !== undefined ? { id } : {}) }, data));
  }
  text(pred: (m: any) => boolean): Promise<any> {
    return waitFor(() => this.texts.find(pred), 5000, 'a matching text message');
  }
  frame(pred: (f: { header: any; data: Buffer }) => boolean = () => true): Promise<{ header: any; data: Buffer }> {
    return waitFor(() => this.frames.find(pred), 5000, "a binary frame") as Promise<{ header: any; data: Buffer }>;
  }
}

/** Bytes that are not UTF-8 text (a JPEG starts FF D8), of a given size. */
export function jpeg(size: number): Buffer {
  const b = crypto.randomBytes(size);
  b[0] = 0xff;
  b[1] = 0xd8;
  return b;
}
