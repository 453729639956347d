import type pg from 'pg';
import { IotcError } from '../core/errors.js';
import type { PostgresAccess } from './calls-postgres.js';
import { LINK_COLS, sharedWithSql, toInvitation, toLink, toShare, toSharedDevice } from './sharing-rows.js';
import type { InvitationRow, LinkRow, SharedDeviceRow, ShareRow } from './sharing-rows.js';
import type { Invitation, PublicLink, Share, SharedDevice, ShareRole, SharingStore } from './types.js';

/** Shares, invitations and public links in the PostgreSQL store. A share change and its device event commit together. */
export class PostgresSharingStore implements SharingStore {
  constructor(private readonly db: PostgresAccess) {}

  /** Device events are numbered under the store's events lock, as every other event (see PostgresDevices). */
  private async event(c: pg.PoolClient, deviceId: string, now: number): Promise<void> {
    await this.db.lock(c, 'events');
    await c.query("INSERT INTO device_events (device_id, kind, at) VALUES ($1, 'access', $2)", [deviceId, now]);
  }

  async share(deviceId: string, userId: number, role: ShareRole, now: number, maxPeople = 0): Promise<boolean> {
    return this.db.tx(async (c) => {
      await this.roomFor(c, deviceId, maxPeople, 'SELECT 1 FROM device_shares WHERE device_id = $1 AND user_id = $2', [deviceId, userId]);
      const { rowCount } = await c.query(
        `INSERT INTO device_shares (device_id, user_id, role, created_at)
         SELECT d.id, u.id, $3, $4 FROM devices d, users u WHERE d.id = $1 AND u.id = $2
         ON CONFLICT (device_id, user_id) DO UPDATE SET role = excluded.role`,
        [deviceId, userId, role, now],
      );
      if (!rowCount) return false;
      await this.event(c, deviceId, now);
      return true;
    });
  }

  /**
   * E_LIMIT when the person is new (`existing` finds no row of theirs) and the device's shares and invitations
   * already number `max` (0: no cap). Under a lock per device, so parallel requests on any node take turns.
   */
  private async roomFor(c: pg.PoolClient, deviceId: string, max: number, existing: string, params: unknown[]): Promise<void> {
    if (max <= 0) return;
    await this.db.lock(c, `people:${deviceId}`);
    if ((await c.query(existing, params)).rowCount) return;
    const { rows } = await c.query<{ n: number }>(
      'SELECT (SELECT COUNT(*) FROM device_shares WHERE device_id = $1) + (SELECT COUNT(*) FROM device_invitations WHERE device_id = $1) AS n',
      [deviceId],
    );
    if (Number(rows[0].n) >= max) throw new IotcError('E_LIMIT', `This device already has ${max} people`);
  }

  async unshare(deviceId: string, userId: number, now: number): Promise<boolean> {
    return this.db.tx(async (c) => {
      const { rowCount } = await c.query('DELETE FROM device_shares WHERE device_id = $1 AND user_id = $2', [deviceId, userId]);
      if (!rowCount) return false;
      await this.event(c, deviceId, now);
      return true;
    });
  }

  async roleOf(deviceId: string, userId: number): Promise<ShareRole | null> {
    const { rows } = await this.db.q<{ role: ShareRole }>('SELECT role FROM device_shares WHERE device_id = $1 AND user_id = $2', [deviceId, userId], 'iotc_share_role');
    return rows[0]?.role ?? null;
  }

  async sharesOf(deviceId: string): Promise<Share[]> {
    const { rows } = await this.db.q<ShareRow>(
      `SELECT s.device_id, s.user_id, u.email, s.role, s.created_at FROM device_shares s JOIN users u ON u.id = s.user_id
       WHERE s.device_id = $1 ORDER BY s.created_at, s.user_id`,
      [deviceId],
    );
    return rows.map(toShare);
  }

  async sharedWith(userId: number, now: number): Promise<SharedDevice[]> {
    const { rows } = await this.db.q<SharedDeviceRow>(sharedWithSql((n) => `$${n}`), [userId, now, now]);
    return rows.map(toSharedDevice);
  }

  async invite(deviceId: string, email: string, role: ShareRole, now: number, maxPeople = 0): Promise<void> {
    await this.db.tx(async (c) => {
      await this.roomFor(c, deviceId, maxPeople, 'SELECT 1 FROM device_invitations WHERE device_id = $1 AND email = lower($2)', [deviceId, email]);
      await c.query(
        `INSERT INTO device_invitations (device_id, email, role, created_at) VALUES ($1, lower($2), $3, $4)
         ON CONFLICT (device_id, email) DO UPDATE SET role = excluded.role, created_at = excluded.created_at`,
        [deviceId, email, role, now],
      );
    });
  }

  async uninvite(deviceId: string, email: string): Promise<boolean> {
    return ((await this.db.q('DELETE FROM device_invitations WHERE device_id = $1 AND email = lower($2)', [deviceId, email])).rowCount ?? 0) > 0;
  }

  async invitationsOf(deviceId: string): Promise<Invitation[]> {
    const { rows } = await this.db.q<InvitationRow>('SELECT device_id, email, role, created_at FROM device_invitations WHERE device_id = $1 ORDER BY created_at, email', [deviceId]);
    return rows.map(toInvitation);
  }

  async acceptInvitations(userId: number, email: string, now: number, validSince: number): Promise<number> {
    return this.db.tx(async (c) => {
      // An invitation to the owner's own email would share the device with its owner: skipped. Expired ones
      // are dropped with the rest.
      const { rows } = await c.query<{ device_id: string }>(
        `WITH inv AS (DELETE FROM device_invitations WHERE email = lower($2) RETURNING device_id, role, created_at)
         INSERT INTO device_shares (device_id, user_id, role, created_at)
         SELECT inv.device_id, $1, inv.role, $3 FROM inv JOIN devices d ON d.id = inv.device_id WHERE d.user_id <> $1 AND inv.created_at >= $4
         ON CONFLICT (device_id, user_id) DO UPDATE SET role = excluded.role RETURNING device_id`,
        [userId, email, now, validSince],
      );
      for (const r of rows) await this.event(c, r.device_id, now);
      return rows.length;
    });
  }

  async createLink(link: { tokenHash: string; scope: string; target: string; userId: number }, now: number, maxPerTarget = 0): Promise<PublicLink> {
    return this.db.tx(async (c) => {
      if (maxPerTarget > 0) {
        // One target's links are made in turns, so parallel requests on any node cannot pass the cap.
        await this.db.lock(c, `links:${link.scope}:${link.target}`);
        const { rows } = await c.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM public_links WHERE scope = $1 AND target = $2', [link.scope, link.target]);
        if (rows[0].n >= maxPerTarget) throw new IotcError('E_LIMIT', `This ${link.scope} already has ${maxPerTarget} links`);
      }
      const { rows } = await c.query<LinkRow>(
        `INSERT INTO public_links (token_hash, scope, target, user_id, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING ${LINK_COLS}`,
        [link.tokenHash, link.scope, link.target, link.userId, now],
      );
      return toLink(rows[0]);
    });
  }

  async linkByHash(tokenHash: string): Promise<PublicLink | null> {
    const { rows } = await this.db.q<LinkRow>(`SELECT ${LINK_COLS} FROM public_links WHERE token_hash = $1`, [tokenHash], 'iotc_link_by_hash');
    return rows[0] ? toLink(rows[0]) : null;
  }

  async linksOf(scope: string, target: string): Promise<PublicLink[]> {
    const { rows } = await this.db.q<LinkRow>(`SELECT ${LINK_COLS} FROM public_links WHERE scope = $1 AND target = $2 ORDER BY id`, [scope, target]);
    return rows.map(toLink);
  }

  async deleteLink(id: number, scope: string, target: string): Promise<boolean> {
    return ((await this.db.q('DELETE FROM public_links WHERE id = $1 AND scope = $2 AND target = $3', [id, scope, target])).rowCount ?? 0) > 0;
  }

  async deleteLinksOf(scope: string, target: string): Promise<number> {
    return (await this.db.q('DELETE FROM public_links WHERE scope = $1 AND target = $2', [scope, target])).rowCount ?? 0;
  }
}
