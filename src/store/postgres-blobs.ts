import type { PostgresAccess } from './calls-postgres.js';
import { BLOB_INFO_COLS, blobsToSyncSql, latestBlobsSql, newestPerDevice, toBlobInfo, toStoredBlob } from './blob-rows.js';
import type { BlobRow } from './blob-rows.js';
import type { BlobInfo, NewBlob, StoredBlob } from './blob-types.js';
import { otherSide } from './device-types.js';
import type { Side } from './device-types.js';

/** Chunks per insert statement: 7 parameters each, well within PostgreSQL's 65 535. */
const BLOB_ROWS_PER_INSERT = 500;
/** PRUNE_BLOBS_SQL (blob-rows.ts) for several devices at once: $1 devices, $2 the newest seq of each (never dropped), $3 the budget. */
const PRUNE_LOCK_SQL = `SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtext('iotc:blobs:' || d) AS k FROM unnest($1::text[]) d) l ORDER BY k`;
const PRUNE_DEVICES_SQL = `DELETE FROM blobs WHERE seq IN (
  SELECT k.seq FROM unnest($1::text[], $2::bigint[]) AS n(device_id, newest)
  CROSS JOIN LATERAL (SELECT seq, SUM(size) OVER (ORDER BY seq DESC) AS running FROM blobs WHERE device_id = n.device_id) k
  WHERE k.running > $3 AND k.seq < n.newest)`;

/** Binary chunks in the PostgreSQL store. */
export class PostgresBlobs {
  constructor(private readonly db: PostgresAccess) {}

  /**
   * Two statements and one commit for the whole batch: a multi-row insert (each chunk's bytes a binary
   * parameter; an array of them would travel as hex text, twice the size), then one prune for all its devices.
   */
  async appendBlobs(blobs: NewBlob[], budgetBytes: number): Promise<BlobInfo[]> {
    if (blobs.length === 0) return [];
    return this.db.tx(async (c) => {
      const infos: BlobInfo[] = [];
      for (let at = 0; at < blobs.length; at += BLOB_ROWS_PER_INSERT) {
        const part = blobs.slice(at, at + BLOB_ROWS_PER_INSERT);
        const { rows } = await c.query<BlobRow>(
          `INSERT INTO blobs (device_id, sensor, side, type, size, time, data) VALUES ${part.map((_, i) => `($${7 * i + 1}, $${7 * i + 2}, $${7 * i + 3}, $${7 * i + 4}, $${7 * i + 5}, $${7 * i + 6}, $${7 * i + 7})`).join(', ')} RETURNING ${BLOB_INFO_COLS}`,
          part.flatMap((b) => [b.deviceId, b.sensor, b.side, b.type, b.data.length, b.time, b.data]),
        );
        // Rows are inserted, and numbered, in the order of VALUES.
        infos.push(...rows.map(toBlobInfo).sort((x, y) => x.seq - y.seq));
      }
      const newest = newestPerDevice(infos);
      const devices = [...newest.keys()];
      // Two nodes pruning one device at once would delete the same rows in different orders and deadlock: each
      // device's prune waits its turn, locks taken in one order everywhere.
      await c.query({ name: 'iotc_blob_prune_lock', text: PRUNE_LOCK_SQL, values: [devices] });
      await c.query({ name: 'iotc_blob_prune', text: PRUNE_DEVICES_SQL, values: [devices, [...newest.values()], budgetBytes] });
      return infos;
    });
  }

  async latestBlob(deviceId: string, sensor: string, side?: Side): Promise<StoredBlob | null> {
    const { rows } = side
      ? await this.db.q<BlobRow>('SELECT * FROM blobs WHERE device_id = $1 AND sensor = $2 AND side = $3 ORDER BY seq DESC LIMIT 1', [deviceId, sensor, side])
      : await this.db.q<BlobRow>('SELECT * FROM blobs WHERE device_id = $1 AND sensor = $2 ORDER BY seq DESC LIMIT 1', [deviceId, sensor]);
    return rows[0] ? toStoredBlob(rows[0]) : null;
  }

  async getBlob(deviceId: string, sensor: string, seq: number): Promise<StoredBlob | null> {
    const { rows } = await this.db.q<BlobRow>('SELECT * FROM blobs WHERE device_id = $1 AND sensor = $2 AND seq = $3', [deviceId, sensor, seq]);
    return rows[0] ? toStoredBlob(rows[0]) : null;
  }

  async listBlobs(deviceId: string, sensor: string, limit: number): Promise<BlobInfo[]> {
    const { rows } = await this.db.q<BlobRow>(`SELECT ${BLOB_INFO_COLS} FROM blobs WHERE device_id = $1 AND sensor = $2 ORDER BY seq DESC LIMIT $3`, [deviceId, sensor, limit]);
    return rows.map(toBlobInfo);
  }

  async blobsToSync(deviceId: string, side: Side): Promise<StoredBlob[]> {
    const { rows } = await this.db.q<BlobRow>(blobsToSyncSql(true), [deviceId, otherSide(side), side], 'iotc_blobs_to_sync');
    return rows.map(toStoredBlob);
  }

  async latestBlobs(deviceId: string, side?: Side): Promise<BlobInfo[]> {
    const { rows } = await this.db.q<BlobRow>(latestBlobsSql(true, side !== undefined), side ? [deviceId, side] : [deviceId]);
    return rows.map(toBlobInfo);
  }

  async blobBytes(deviceId: string): Promise<number> {
    const { rows } = await this.db.q<{ n: string | number }>('SELECT COALESCE(SUM(size), 0) AS n FROM blobs WHERE device_id = $1', [deviceId]);
    return Number(rows[0].n);
  }
}
