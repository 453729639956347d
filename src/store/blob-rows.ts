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
 * whose total passes the budget goes. The chunk just stored is never dropped, even when it alone is over.
 * Placeholders: device, newest seq, device, budget (numbered for PostgreSQL, positional for SQLite).
 */
export function pruneBlobsSql(numbered: boolean): string {
  const [a, b, c, d] = numbered ? ['$1', '$2', '$1', '$3'] : ['?', '?', '?', '?'];
  return `DELETE FROM blobs WHERE device_id = ${a} AND seq < ${b} AND seq IN (
    SELECT seq FROM (SELECT seq, SUM(size) OVER (ORDER BY seq DESC) AS running FROM blobs WHERE device_id = ${c}) kept WHERE running > ${d})`;
}
