import type { BlobInfo, Side, StoredBlob } from './types.js';

/** Chunk rows as both stores read them; the SQL below is the same in both dialects. */
export interface BlobRow { seq: number; device_id: string; sensor: string; side: Side; type: string; size: number; time: number; data?: Buffer | Uint8Array }

export const BLOB_INFO_COLS = 'seq, device_id, sensor, side, type, size, time';

export const toBlobInfo = (r: BlobRow): BlobInfo => ({
  seq: Number(r.seq), deviceId: r.device_id, sensor: r.sensor, side: r.side, type: r.type, size: Number(r.size), time: Number(r.time),
});

export const toStoredBlob = (r: BlobRow): StoredBlob => {
  const data = r.data instanceof Buffer ? r.data : Buffer.from(r.data ?? []);
  return { ...toBlobInfo(r), data };
};

/**
 * Drops a device's oldest chunks beyond its byte budget: a running total from the newest down, and every chunk
 * whose total passes the budget goes. The given newest chunk is never dropped, even when it alone is over.
 * SQLite's, one device at a time; placeholders: device, newest seq, device, budget. (PostgreSQL prunes all the
 * devices of a batch in one statement of its own, the same rule.)
 */
export const PRUNE_BLOBS_SQL = `DELETE FROM blobs WHERE device_id = ? AND seq < ? AND seq IN (
    SELECT seq FROM (SELECT seq, SUM(size) OVER (ORDER BY seq DESC) AS running FROM blobs WHERE device_id = ?) kept WHERE running > ?)`;

/** Each device's newest chunk of a batch: pruning runs once per device, and never drops that one. */
export function newestPerDevice(infos: BlobInfo[]): Map<string, number> {
  const newest = new Map<string, number>();
  for (const b of infos) if ((newest.get(b.deviceId) ?? 0) < b.seq) newest.set(b.deviceId, b.seq);
  return newest;
}

/**
 * Sync on connect: the newest chunk (with its bytes) of each sensor the writer side wrote after the chunk the
 * connecting side was last served up to (its cursor), oldest first.
 * Placeholders: device, writer side, device, connecting side (numbered for PostgreSQL, positional for SQLite).
 */
export function blobsToSyncSql(numbered: boolean): string {
  const [a, b, c, d] = numbered ? ['$1', '$2', '$1', '$3'] : ['?', '?', '?', '?'];
  return `SELECT * FROM blobs WHERE seq IN (
    SELECT MAX(seq) FROM blobs WHERE device_id = ${a} AND side = ${b}
      AND seq > COALESCE((SELECT blob_seq FROM cursors WHERE device_id = ${c} AND side = ${d}), 0)
    GROUP BY sensor) ORDER BY seq`;
}

/** The newest chunk of each sensor of a device, optionally of one writer side. Placeholders: device[, side]. */
export function latestBlobsSql(numbered: boolean, bySide: boolean): string {
  const [a, b] = numbered ? ['$1', '$2'] : ['?', '?'];
  return `SELECT ${BLOB_INFO_COLS} FROM blobs WHERE seq IN (
    SELECT MAX(seq) FROM blobs WHERE device_id = ${a}${bySide ? ` AND side = ${b}` : ''} GROUP BY sensor) ORDER BY sensor`;
}
