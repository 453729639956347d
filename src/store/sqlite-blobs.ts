import type Database from 'better-sqlite3';
import { BLOB_INFO_COLS, blobsToSyncSql, latestBlobsSql, newestPerDevice, PRUNE_BLOBS_SQL, toBlobInfo, toStoredBlob } from './blob-rows.js';
import type { BlobRow } from './blob-rows.js';
import type { BlobInfo, NewBlob, StoredBlob } from './blob-types.js';
import { otherSide } from './device-types.js';
import type { Side } from './device-types.js';

/** Binary chunks in the SQLite store. */
export class SqliteBlobs {
  private readonly stmt;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      insertBlob: db.prepare(`INSERT INTO blobs (device_id, sensor, side, type, size, time, data) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ${BLOB_INFO_COLS}`),
      pruneBlobs: db.prepare(PRUNE_BLOBS_SQL),
      blobBytes: db.prepare('SELECT COALESCE(SUM(size), 0) AS n FROM blobs WHERE device_id = ?'),
      latestBlobAny: db.prepare('SELECT * FROM blobs WHERE device_id = ? AND sensor = ? ORDER BY seq DESC LIMIT 1'),
      latestBlobSide: db.prepare('SELECT * FROM blobs WHERE device_id = ? AND sensor = ? AND side = ? ORDER BY seq DESC LIMIT 1'),
      blobBySeq: db.prepare('SELECT * FROM blobs WHERE device_id = ? AND sensor = ? AND seq = ?'),
      listBlobs: db.prepare(`SELECT ${BLOB_INFO_COLS} FROM blobs WHERE device_id = ? AND sensor = ? ORDER BY seq DESC LIMIT ?`),
      blobsToSync: db.prepare(blobsToSyncSql(false)),
      latestBlobs: db.prepare(latestBlobsSql(false, false)),
      latestBlobsSide: db.prepare(latestBlobsSql(false, true)),
    };
  }

  appendBlobs(blobs: NewBlob[], budgetBytes: number): BlobInfo[] {
    return this.db.transaction(() => {
      const infos = blobs.map((b) => toBlobInfo(this.stmt.insertBlob.get(b.deviceId, b.sensor, b.side, b.type, b.data.length, b.time, b.data) as BlobRow));
      for (const [deviceId, newest] of newestPerDevice(infos)) this.stmt.pruneBlobs.run(deviceId, newest, deviceId, budgetBytes);
      return infos;
    }).immediate();
  }

  latestBlob(deviceId: string, sensor: string, side?: Side): StoredBlob | null {
    const row = (side ? this.stmt.latestBlobSide.get(deviceId, sensor, side) : this.stmt.latestBlobAny.get(deviceId, sensor)) as BlobRow | undefined;
    return row ? toStoredBlob(row) : null;
  }

  getBlob(deviceId: string, sensor: string, seq: number): StoredBlob | null {
    const row = this.stmt.blobBySeq.get(deviceId, sensor, seq) as BlobRow | undefined;
    return row ? toStoredBlob(row) : null;
  }

  listBlobs(deviceId: string, sensor: string, limit: number): BlobInfo[] {
    return (this.stmt.listBlobs.all(deviceId, sensor, limit) as BlobRow[]).map(toBlobInfo);
  }

  blobsToSync(deviceId: string, side: Side): StoredBlob[] {
    return (this.stmt.blobsToSync.all(deviceId, otherSide(side), deviceId, side) as BlobRow[]).map(toStoredBlob);
  }

  latestBlobs(deviceId: string, side?: Side): BlobInfo[] {
    return ((side ? this.stmt.latestBlobsSide.all(deviceId, side) : this.stmt.latestBlobs.all(deviceId)) as BlobRow[]).map(toBlobInfo);
  }

  blobBytes(deviceId: string): number {
    return (this.stmt.blobBytes.get(deviceId) as { n: number }).n;
  }
}
