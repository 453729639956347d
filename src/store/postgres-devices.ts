import type pg from 'pg';
import { IotcError } from '../core/errors.js';
import type { PostgresAccess } from './calls-postgres.js';
import type { BridgeChoice, BridgedDevice, Device, DeviceEvent, DeviceEventKind, DeviceStatus, PresenceEntry, Side } from './device-types.js';
import { toDevice } from './rows.js';
import type { DeviceRow } from './rows.js';

/** A device's (d's) open connections of one side across all nodes, as of the time bound as `at`. */
const openConnections = (side: Side, at: string) => `(SELECT COALESCE(SUM(connections), 0) FROM presence p WHERE p.device_id = d.id AND p.side = '${side}' AND p.expires_at > ${at})`;

/** Devices, their events, their presence on each node, the sync cursors of their two sides and the Home Assistant opt-in, in PostgreSQL. */
export class PostgresDevices {
  constructor(private readonly db: PostgresAccess) {}

  async createDevice(d: { id: string; userId: number; name: string; keyHash: string }, maxPerUser = 0): Promise<Device> {
    try {
      return await this.db.tx(async (c) => {
        if (maxPerUser > 0) {
          // Nodes creating devices for one user at once take turns, so the cap holds across a cluster.
          await this.db.lock(c, `devices:${d.userId}`);
          const { rows } = await c.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM devices WHERE user_id = $1', [d.userId]);
          if (rows[0].n >= maxPerUser) throw new IotcError('E_LIMIT', `This account already has ${maxPerUser} devices`);
        }
        const { rows } = await c.query<DeviceRow>(
          'INSERT INTO devices (id, user_id, name, key_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING *',
          [d.id, d.userId, d.name, d.keyHash, Date.now()],
        );
        return toDevice(rows[0]);
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '23505') throw new IotcError('E_CONFLICT', 'A device with this id already exists');
      if (code === '23503') throw new IotcError('E_NOT_FOUND', 'No such user');
      throw err;
    }
  }

  async getDevice(id: string): Promise<Device | null> {
    const { rows } = await this.db.q<DeviceRow>('SELECT * FROM devices WHERE id = $1', [id], 'iotc_device_by_id');
    return rows[0] ? toDevice(rows[0]) : null;
  }

  async listDevices(userId: number): Promise<DeviceStatus[]> {
    const { rows } = await this.db.q<DeviceRow & { device_conns: number; client_conns: number }>(
      // Counts per device through the presence key (device_id, side, node_id): only this user's devices are read.
      `SELECT d.*,
         ${openConnections('device', '$2')} AS device_conns,
         ${openConnections('client', '$2')} AS client_conns
       FROM devices d WHERE d.user_id = $1 ORDER BY d.created_at, d.id`,
      [userId, Date.now()],
    );
    return rows.map((r) => ({ ...toDevice(r), online: r.device_conns > 0, clients: r.client_conns }));
  }

  /**
   * Device events are numbered under a lock held to commit, so they become visible in number order and a
   * node reading "events after N" can never skip one that commits late.
   */
  private async recordDeviceEvent(c: pg.PoolClient, sql: string, values: unknown[]): Promise<boolean> {
    await this.db.lock(c, 'events');
    return ((await c.query(sql, values)).rowCount ?? 0) > 0;
  }

  async setDeviceKey(id: string, keyHash: string): Promise<boolean> {
    return this.db.tx((c) =>
      this.recordDeviceEvent(
        c,
        `WITH changed AS (UPDATE devices SET key_hash = $2 WHERE id = $1 RETURNING id)
         INSERT INTO device_events (device_id, kind, at) SELECT id, 'rotated', $3 FROM changed`,
        [id, keyHash, Date.now()],
      ),
    );
  }

  async renameDevice(id: string, name: string): Promise<boolean> {
    return ((await this.db.q('UPDATE devices SET name = $2 WHERE id = $1', [id, name])).rowCount ?? 0) > 0;
  }

  async deleteDevice(id: string): Promise<boolean> {
    return this.db.tx((c) =>
      this.recordDeviceEvent(
        c,
        // Statements in WITH run to completion whether or not their output is read.
        `WITH r AS (DELETE FROM readings WHERE device_id = $1),
              l AS (DELETE FROM latest WHERE device_id = $1),
              c AS (DELETE FROM cursors WHERE device_id = $1),
              p AS (DELETE FROM presence WHERE device_id = $1),
              b AS (DELETE FROM blobs WHERE device_id = $1),
              d AS (DELETE FROM devices WHERE id = $1 RETURNING id)
         INSERT INTO device_events (device_id, kind, at) SELECT id, 'deleted', $2 FROM d`,
        [id, Date.now()],
      ),
    );
  }

  async deviceEventsSince(afterSeq: number): Promise<DeviceEvent[]> {
    const { rows } = await this.db.q<{ seq: number; device_id: string; kind: DeviceEventKind; at: number }>(
      'SELECT seq, device_id, kind, at FROM device_events WHERE seq > $1 ORDER BY seq LIMIT 1000',
      [afterSeq],
      'iotc_events_since',
    );
    return rows.map((r) => ({ seq: r.seq, deviceId: r.device_id, kind: r.kind, at: r.at }));
  }

  async lastDeviceEventSeq(): Promise<number> {
    const { rows } = await this.db.q<{ seq: number }>('SELECT COALESCE(MAX(seq), 0) AS seq FROM device_events');
    return rows[0].seq;
  }

  async setHomeAssistant(deviceId: string, on: boolean): Promise<boolean> {
    if (on) {
      const { rowCount } = await this.db.q('INSERT INTO ha_devices (device_id) SELECT id FROM devices WHERE id = $1 ON CONFLICT DO NOTHING', [deviceId]);
      if ((rowCount ?? 0) > 0) return true;
    } else {
      await this.db.q('DELETE FROM ha_devices WHERE device_id = $1', [deviceId]);
    }
    return (await this.db.q('SELECT 1 FROM devices WHERE id = $1', [deviceId])).rows.length > 0;
  }

  async homeAssistantDevices(which: BridgeChoice): Promise<BridgedDevice[]> {
    const [filter, args] = which === 'all' ? ['true', []] : which === 'opted' ? ['d.id IN (SELECT device_id FROM ha_devices)', []] : ['d.id = ANY($2::text[])', [which]];
    const { rows } = await this.db.q<DeviceRow & { device_conns: number; mark: string }>(
      `SELECT d.*,
         ${openConnections('device', '$1')} AS device_conns,
         (SELECT COUNT(*) || ':' || COALESCE(SUM(seq), 0) FROM latest l WHERE l.device_id = d.id) AS mark
       FROM devices d WHERE ${filter} ORDER BY d.id`,
      [Date.now(), ...args],
    );
    return rows.map((r) => ({ ...toDevice(r), online: Number(r.device_conns) > 0, readingsMark: r.mark }));
  }

  async getCursor(deviceId: string, side: Side): Promise<number> {
    const { rows } = await this.db.q<{ seq: number }>('SELECT seq FROM cursors WHERE device_id = $1 AND side = $2', [deviceId, side], 'iotc_get_cursor');
    return rows[0]?.seq ?? 0;
  }

  async advanceCursor(deviceId: string, side: Side): Promise<void> {
    await this.db.q(
      `INSERT INTO cursors (device_id, side, seq, blob_seq)
       VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) FROM latest WHERE device_id = $1), (SELECT COALESCE(MAX(seq), 0) FROM blobs WHERE device_id = $1))
       ON CONFLICT (device_id, side) DO UPDATE SET seq = GREATEST(cursors.seq, excluded.seq), blob_seq = GREATEST(cursors.blob_seq, excluded.blob_seq)`,
      [deviceId, side],
      'iotc_advance_cursor',
    );
  }

  async savePresence(nodeId: string, entries: PresenceEntry[], now: number, expiresAt: number): Promise<void> {
    // Sorted so that nodes saving at once lock rows in the same order.
    const sorted = [...entries].sort((a, b) => (a.deviceId === b.deviceId ? (a.side < b.side ? -1 : 1) : a.deviceId < b.deviceId ? -1 : 1));
    const open = sorted.filter((e) => e.connections > 0);
    const gone = sorted.filter((e) => e.connections <= 0);
    await this.db.tx(async (c) => {
      if (gone.length > 0) {
        await c.query('DELETE FROM presence WHERE node_id = $1 AND (device_id, side) IN (SELECT * FROM unnest($2::text[], $3::text[]))', [
          nodeId, gone.map((e) => e.deviceId), gone.map((e) => e.side),
        ]);
      }
      if (open.length > 0) {
        await c.query(
          `INSERT INTO presence (node_id, device_id, side, connections, expires_at)
           SELECT $1, d, s, n, $5 FROM unnest($2::text[], $3::text[], $4::int[]) AS t(d, s, n)
           ON CONFLICT (device_id, side, node_id) DO UPDATE SET connections = excluded.connections, expires_at = excluded.expires_at`,
          [nodeId, open.map((e) => e.deviceId), open.map((e) => e.side), open.map((e) => e.connections), expiresAt],
        );
      }
      await c.query('UPDATE presence SET expires_at = $2 WHERE node_id = $1', [nodeId, expiresAt]);
      // Last, and in id order, so the device rows shared with other nodes are locked briefly and in one order.
      // Last seen is the device's own side: an app (or the owner's browser) watching it is not the device.
      await c.query(
        `UPDATE devices d SET last_seen = $1 FROM (
           SELECT id FROM devices WHERE id = ANY($2::text[]) OR id IN (SELECT device_id FROM presence WHERE node_id = $3 AND side = 'device')
           ORDER BY id FOR UPDATE
         ) s WHERE d.id = s.id`,
        [now, sorted.filter((e) => e.side === 'device').map((e) => e.deviceId), nodeId],
      );
    });
    // Other nodes' expired counts: dead nodes leave them behind. Outside the transaction: nothing depends on it.
    await this.db.q('DELETE FROM presence WHERE expires_at <= $1', [now]);
  }

  async clearPresence(nodeId: string): Promise<void> {
    await this.db.q('DELETE FROM presence WHERE node_id = $1', [nodeId]);
  }
}
