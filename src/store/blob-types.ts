import type { Side } from './device-types.js';

/** A binary chunk (a camera frame, a file) as a door hands it in: bytes kept exactly as sent. */
export interface NewBlob {
  deviceId: string;
  sensor: string;
  side: Side;
  /** Content type as the sender named it (e.g. image/jpeg); application/octet-stream when it named none. */
  type: string;
  data: Buffer;
  /** ms since epoch, stamped by the server. */
  time: number;
}

/** A stored chunk without its bytes: what listings and notices carry. */
export interface BlobInfo {
  /** Position in the store's order of chunks; later chunks have larger numbers. */
  seq: number;
  deviceId: string;
  sensor: string;
  side: Side;
  type: string;
  size: number;
  time: number;
}

export interface StoredBlob extends BlobInfo {
  data: Buffer;
}
