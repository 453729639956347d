import type Database from 'better-sqlite3';
import { IotcError } from '../core/errors.js';
import type { BridgeChoice, BridgedDevice, Device, DeviceEvent, DeviceEventKind, DeviceStatus, PresenceEntry, Side } from './device-types.js';
import { toDevice } from './rows.js';
import type { DeviceRow } from './rows.js';
import type { SqliteReadings } from './sqlite-readings.js';

/** A device's (d's) open connections of one side across all nodes, as of the bound time. */
const openConnections = (side: Side) => `(SELECT COALESCE(SUM(connections), 0) FROM presence p WHERE p.device_id = d.id AND p.side = '${side}' AND p.expires_at > ?)`;

/**
 * Devices, their events, their presence on each node, the sync cursors of their two sides and the Home
 * Assistant opt-in, in the SQLite store. Deleting a device takes its readings, latest values and chunks along.
 */
export class SqliteDevices {
  private readonly stmt;
  /** The Home Assistant bridge's query, one per kind of choice, prepared at its first poll. */
  private readonly bridged = new Map<string, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    private readonly readings: SqliteReadings,
  ) {
    this.stmt = {
      // One statement counts and inserts, so a burst from several processes cannot pass the cap.
      insertDevice: db.prepare(
        'INSERT INTO devices (id, user_id, name, key_hash, created_at) SELECT ?, ?, ?, ?, ? WHERE ? = 0 OR (SELECT COUNT(*) FROM devices WHERE user_id = ?) < ? RETURNING *',
      ),
      deviceById: db.prepare('SELECT * FROM devices WHERE id = ?'),
      devicesByUser: db.prepare(`
        SELECT d.*,
          ${openConnections('device')} AS device_conns,
          ${openConnections('client')} AS client_conns
        FROM devices d WHERE d.user_id = ? ORDER BY d.created_at, d.id`),
      setKey: db.prepare('UPDATE devices SET key_hash = ? WHERE id = ?'),
      rename: db.prepare('UPDATE devices SET name = ? WHERE id = ?'),
      deleteDevice: db.prepare('DELETE FROM devices WHERE id = ?'),
      deleteLatest: db.prepare('DELETE FROM latest WHERE device_id = ?'),
      deleteCursors: db.prepare('DELETE FROM cursors WHERE device_id = ?'),
      deletePresence: db.prepare('DELETE FROM presence WHERE device_id = ?'),
      deleteBlobs: db.prepare('DELETE FROM blobs WHERE device_id = ?'),
      getCursor: db.prepare('SELECT seq FROM cursors WHERE device_id = ? AND side = ?'),
      advanceCursor: db.prepare(`INSERT INTO cursors (device_id, side, seq, blob_seq)
        VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) FROM latest WHERE device_id = ?), (SELECT COALESCE(MAX(seq), 0) FROM blobs WHERE device_id = ?))
        ON CONFLICT (device_id, side) DO UPDATE SET seq = MAX(cursors.seq, excluded.seq), blob_seq = MAX(cursors.blob_seq, excluded.blob_seq)`),
      upsertPresence: db.prepare(`INSERT INTO presence (node_id, device_id, side, connections, expires_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (device_id, side, node_id) DO UPDATE SET connections = excluded.connections, expires_at = excluded.expires_at`),
      deletePresenceEntry: db.prepare('DELETE FROM presence WHERE node_id = ? AND device_id = ? AND side = ?'),
      touchDevice: db.prepare('UPDATE devices SET last_seen = ? WHERE id = ?'),
      refreshPresence: db.prepare('UPDATE presence SET expires_at = ? WHERE node_id = ?'),
      touchNodeDevices: db.prepare("UPDATE devices SET last_seen = ? WHERE id IN (SELECT device_id FROM presence WHERE node_id = ? AND side = 'device')"),
      clearPresence: db.prepare('DELETE FROM presence WHERE node_id = ?'),
      dropExpiredPresence: db.prepare('DELETE FROM presence WHERE expires_at <= ?'),
      insertEvent: db.prepare('INSERT INTO device_events (device_id, kind, at) VALUES (?, ?, ?)'),
      eventsSince: db.prepare('SELECT seq, device_id, kind, at FROM device_events WHERE seq > ? ORDER BY seq LIMIT 1000'),
      // The highest number ever issued, which pruning does not lower.
      lastEvent: db.prepare("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'device_events'), 0) AS seq"),
      // The newest event always stays: SQLite numbers a new row max(seq)+1, so emptying the table would restart
      // seq at 1 and running servers, which poll for events after the last seq they saw, would miss the next ones.
      pruneEvents: db.prepare('DELETE FROM device_events WHERE at < ?'),
    };
  }

  createDevice(d: { id: string; userId: number; name: string; keyHash: string }, maxPerUser = 0): Device {
    let row: DeviceRow | undefined;
    try {
      row = this.stmt.insertDevice.get(d.id, d.userId, d.name, d.keyHash, Date.now(), maxPerUser, d.userId, maxPerUser) as DeviceRow | undefined;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new IotcError('E_CONFLICT', 'A device with this id already exists');
      if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new IotcError('E_NOT_FOUND', 'No such user');
      throw err;
    }
    if (!row) throw new IotcError('E_LIMIT', `This account already has ${maxPerUser} devices`);
    return toDevice(row);
  }

  getDevice(id: string): Device | null {
    const row = this.stmt.deviceById.get(id) as DeviceRow | undefined;
    return row ? toDevice(row) : null;
  }

  listDevices(userId: number): DeviceStatus[] {
    const now = Date.now();
    const rows = this.stmt.devicesByUser.all(now, now, userId) as (DeviceRow & { device_conns: number; client_conns: number })[];
    return rows.map((r) => ({ ...toDevice(r), online: r.device_conns > 0, clients: r.client_conns }));
  }

  setDeviceKey(id: string, keyHash: string): boolean {
    return this.db.transaction(() => {
      const changed = this.stmt.setKey.run(keyHash, id).changes > 0;
      if (changed) this.stmt.insertEvent.run(id, 'rotated', Date.now());
      return changed;
    }).immediate();
  }

  renameDevice(id: string, name: string): boolean {
    return this.stmt.rename.run(name, id).changes > 0;
  }

  deleteDevice(id: string): boolean {
    this.readings.writeLatest();
    return this.db.transaction(() => {
      this.readings.deleteDevice(id);
      this.stmt.deleteLatest.run(id);
      this.stmt.deleteCursors.run(id);
      this.stmt.deletePresence.run(id);
      this.stmt.deleteBlobs.run(id);
      const deleted = this.stmt.deleteDevice.run(id).changes > 0;
      if (deleted) this.stmt.insertEvent.run(id, 'deleted', Date.now());
      return deleted;
    }).immediate();
  }

  deviceEventsSince(afterSeq: number): DeviceEvent[] {
    const rows = this.stmt.eventsSince.all(afterSeq) as { seq: number; device_id: string; kind: DeviceEventKind; at: number }[];
    return rows.map((r) => ({ seq: r.seq, deviceId: r.device_id, kind: r.kind, at: r.at }));
  }

  lastDeviceEventSeq(): number {
    return (this.stmt.lastEvent.get() as { seq: number }).seq;
  }

  /** Forgets events older than `before` (the newest always stays, see pruneEvents above). */
  pruneEvents(before: number): void {
    this.stmt.pruneEvents.run(before);
  }

  setHomeAssistant(deviceId: string, on: boolean): boolean {
    if (!this.stmt.deviceById.get(deviceId)) return false;
    if (on) this.db.prepare('INSERT OR IGNORE INTO ha_devices (device_id) VALUES (?)').run(deviceId);
    else this.db.prepare('DELETE FROM ha_devices WHERE device_id = ?').run(deviceId);
    return true;
  }

  homeAssistantDevices(which: BridgeChoice): BridgedDevice[] {
    // The latest table is read: the newest readings waiting in memory go into it first.
    this.readings.writeLatest();
    const kind = Array.isArray(which) ? 'ids' : which;
    let stmt = this.bridged.get(kind);
    if (!stmt) {
      const filter = kind === 'all' ? 'true' : kind === 'opted' ? 'd.id IN (SELECT device_id FROM ha_devices)' : 'd.id IN (SELECT value FROM json_each(?))';
      // TOTAL, not SUM: a sum past 2^63 would be an error; the mark only has to change when a seq does.
      stmt = this.db.prepare(`SELECT d.*,
          ${openConnections('device')} AS device_conns,
          (SELECT COUNT(*) || ':' || TOTAL(seq) FROM latest l WHERE l.device_id = d.id) AS mark
        FROM devices d WHERE ${filter} ORDER BY d.id`);
      this.bridged.set(kind, stmt);
    }
    const rows = (Array.isArray(which) ? stmt.all(Date.now(), JSON.stringify(which)) : stmt.all(Date.now())) as (DeviceRow & { device_conns: number; mark: string })[];
    return rows.map((r) => ({ ...toDevice(r), online: r.device_conns > 0, readingsMark: r.mark }));
  }

  getCursor(deviceId: string, side: Side): number {
    const row = this.stmt.getCursor.get(deviceId, side) as { seq: number } | undefined;
    return row?.seq ?? 0;
  }

  advanceCursor(deviceId: string, side: Side): void {
    this.readings.writeLatest();
    this.stmt.advanceCursor.run(deviceId, side, deviceId, deviceId);
  }

  savePresence(nodeId: string, entries: PresenceEntry[], now: number, expiresAt: number, heartbeat = true): void {
    this.db.transaction(() => {
      for (const e of entries) {
        if (e.connections > 0) this.stmt.upsertPresence.run(nodeId, e.deviceId, e.side, e.connections, expiresAt);
        else this.stmt.deletePresenceEntry.run(nodeId, e.deviceId, e.side);
        // Last seen is the device's own side: an app (or the owner's browser) watching it is not the device.
        if (e.side === 'device') this.stmt.touchDevice.run(now, e.deviceId);
      }
      if (heartbeat) {
        this.stmt.refreshPresence.run(expiresAt, nodeId);
        this.stmt.touchNodeDevices.run(now, nodeId);
        this.stmt.dropExpiredPresence.run(now);
      }
    }).immediate();
  }

  clearPresence(nodeId: string): void {
    this.stmt.clearPresence.run(nodeId);
  }
}
