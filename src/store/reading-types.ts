import type { Side } from './device-types.js';

/** A reading as a door hands it in: the value is any JSON, already validated. */
export interface NewReading {
  deviceId: string;
  sensor: string;
  value: unknown;
  side: Side;
  /** ms since epoch, stamped by the server. */
  time: number;
  /** The value's JSON text when the relay already made it (checking the value); the store keeps this text. */
  json?: string;
}

export interface StoredReading extends NewReading {
  /** Position in the store's total order; later writes have larger numbers. */
  seq: number;
}

export interface HistoryQuery {
  from?: number;
  to?: number;
  limit: number;
  /** Only readings written by this side. */
  side?: Side;
  /**
   * Stop once the readings' value texts (in characters, counted in the order read: oldest first from `from`,
   * newest first without) passed this many: the reading that passes it is the last returned, so a caller
   * cutting a reply knows more follow. Bounds what a query loads, whatever the limit.
   */
  maxBytes?: number;
}

/** A part of a device's sensors: those named after `after`, up to about `maxBytes` of values. */
export interface SensorPage {
  after?: string;
  maxBytes?: number;
}

export interface BucketQuery {
  from: number;
  to: number;
  bucketMs: number;
  limit: number;
  side?: Side;
}

export interface HistoryBucket {
  /** Bucket start, ms since epoch. */
  time: number;
  min: number;
  max: number;
  avg: number;
  count: number;
  last: number;
}

export interface RetentionPolicy {
  /** Keep at most this many readings per device; 0 = no limit. */
  maxCount: number;
  /** Drop readings older than this many ms; 0 = keep forever. */
  maxAgeMs: number;
}

/**
 * What a reading weighs against a device's byte budget, besides its value's JSON text: about what its time,
 * sequence number and framing take where it is kept (SQLite's chunks hold `[seq,time,value]`). SQLite's
 * reading_chunks.weight (migration 16) is written with it: changing it needs a migration there.
 */
export const READING_OVERHEAD_BYTES = 24;

export interface LatestWeight {
  sensor: string;
  side: Side;
  bytes: number;
}
