import type Database from 'better-sqlite3';
import { IotcError } from '../core/errors.js';
import { LINK_COLS, sharedWithSql, toInvitation, toLink, toShare, toSharedDevice } from './sharing-rows.js';
import type { InvitationRow, LinkRow, SharedDeviceRow, ShareRow } from './sharing-rows.js';
import type { Invitation, PublicLink, Share, SharedDevice, ShareRole, SharingStore } from './types.js';

/** Shares, invitations and public links in the SQLite store. A share change and its device event commit together. */
export class SqliteSharingStore implements SharingStore {
  private readonly stmt;
  private readonly shareTx: Database.Transaction<(deviceId: string, userId: number, role: ShareRole, now: number, maxPeople: number) => boolean>;
  private readonly unshareTx: Database.Transaction<(deviceId: string, userId: number, now: number) => boolean>;
  private readonly acceptTx: Database.Transaction<(userId: number, email: string, now: number, validSince: number) => number>;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      exists: db.prepare('SELECT (SELECT COUNT(*) FROM devices WHERE id = ?) + (SELECT COUNT(*) FROM users WHERE id = ?) AS n'),
      upsert: db.prepare(`INSERT INTO device_shares (device_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (device_id, user_id) DO UPDATE SET role = excluded.role`),
      remove: db.prepare('DELETE FROM device_shares WHERE device_id = ? AND user_id = ?'),
      event: db.prepare("INSERT INTO device_events (device_id, kind, at) VALUES (?, 'access', ?)"),
      role: db.prepare('SELECT role FROM device_shares WHERE device_id = ? AND user_id = ?').pluck(),
      sharesOf: db.prepare(`SELECT s.device_id, s.user_id, u.email, s.role, s.created_at FROM device_shares s JOIN users u ON u.id = s.user_id
        WHERE s.device_id = ? ORDER BY s.created_at, s.user_id`),
      sharedWith: db.prepare(sharedWithSql(() => '?')),
      invite: db.prepare(`INSERT INTO device_invitations (device_id, email, role, created_at) VALUES (?, lower(?), ?, ?)
        ON CONFLICT (device_id, email) DO UPDATE SET role = excluded.role, created_at = excluded.created_at`),
      uninvite: db.prepare('DELETE FROM device_invitations WHERE device_id = ? AND email = ?'),
      invitationsOf: db.prepare('SELECT device_id, email, role, created_at FROM device_invitations WHERE device_id = ? ORDER BY created_at, email'),
      invitationsFor: db.prepare('SELECT device_id, email, role, created_at FROM device_invitations WHERE email = ? AND created_at >= ?'),
      dropInvitations: db.prepare('DELETE FROM device_invitations WHERE email = ?'),
      // An invitation to the owner's own email would share the device with its owner: skipped.
      ownerOf: db.prepare('SELECT user_id FROM devices WHERE id = ?').pluck(),
      insertLink: db.prepare(`INSERT INTO public_links (token_hash, scope, target, user_id, created_at) VALUES (?, ?, ?, ?, ?) RETURNING ${LINK_COLS}`),
      linkByHash: db.prepare(`SELECT ${LINK_COLS} FROM public_links WHERE token_hash = ?`),
      linksOf: db.prepare(`SELECT ${LINK_COLS} FROM public_links WHERE scope = ? AND target = ? ORDER BY id`),
      deleteLink: db.prepare('DELETE FROM public_links WHERE id = ? AND scope = ? AND target = ?'),
      deleteLinksOf: db.prepare('DELETE FROM public_links WHERE scope = ? AND target = ?'),
      people: db.prepare('SELECT (SELECT COUNT(*) FROM device_shares WHERE device_id = ?) + (SELECT COUNT(*) FROM device_invitations WHERE device_id = ?)').pluck(),
      invited: db.prepare('SELECT 1 FROM device_invitations WHERE device_id = ? AND email = lower(?)').pluck(),
      links: db.prepare('SELECT COUNT(*) FROM public_links WHERE scope = ? AND target = ?').pluck(),
    };
    this.shareTx = db.transaction((deviceId, userId, role, now, maxPeople) => {
      if ((this.stmt.exists.get(deviceId, userId) as { n: number }).n < 2) return false;
      if (this.stmt.role.get(deviceId, userId) === undefined) this.roomFor(deviceId, maxPeople);
      this.stmt.upsert.run(deviceId, userId, role, now);
      this.stmt.event.run(deviceId, now);
      return true;
    });
    this.unshareTx = db.transaction((deviceId, userId, now) => {
      if (this.stmt.remove.run(deviceId, userId).changes === 0) return false;
      this.stmt.event.run(deviceId, now);
      return true;
    });
    this.acceptTx = db.transaction((userId, email, now, validSince) => {
      let n = 0;
      for (const inv of this.stmt.invitationsFor.all(email.toLowerCase(), validSince) as InvitationRow[]) {
        if (this.stmt.ownerOf.get(inv.device_id) === userId) continue;
        this.stmt.upsert.run(inv.device_id, userId, inv.role, now);
        this.stmt.event.run(inv.device_id, now);
        n++;
      }
      this.stmt.dropInvitations.run(email.toLowerCase());
      return n;
    });
  }

  async share(deviceId: string, userId: number, role: ShareRole, now: number, maxPeople = 0): Promise<boolean> {
    return this.shareTx.immediate(deviceId, userId, role, now, maxPeople);
  }

  /** E_LIMIT when the device's shares and invitations already number `max` (0: no cap); inside the caller's transaction. */
  private roomFor(deviceId: string, max: number): void {
    if (max > 0 && (this.stmt.people.get(deviceId, deviceId) as number) >= max) throw new IotcError('E_LIMIT', `This device already has ${max} people`);
  }

  async unshare(deviceId: string, userId: number, now: number): Promise<boolean> {
    return this.unshareTx.immediate(deviceId, userId, now);
  }

  async roleOf(deviceId: string, userId: number): Promise<ShareRole | null> {
    return (this.stmt.role.get(deviceId, userId) as ShareRole | undefined) ?? null;
  }

  async sharesOf(deviceId: string): Promise<Share[]> {
    return (this.stmt.sharesOf.all(deviceId) as ShareRow[]).map(toShare);
  }

  async sharedWith(userId: number, now: number): Promise<SharedDevice[]> {
    return (this.stmt.sharedWith.all(now, now, userId) as SharedDeviceRow[]).map(toSharedDevice);
  }

  async invite(deviceId: string, email: string, role: ShareRole, now: number, maxPeople = 0): Promise<void> {
    this.db
      .transaction(() => {
        if (this.stmt.invited.get(deviceId, email) === undefined) this.roomFor(deviceId, maxPeople);
        this.stmt.invite.run(deviceId, email, role, now);
      })
      .immediate();
  }

  async uninvite(deviceId: string, email: string): Promise<boolean> {
    return this.stmt.uninvite.run(deviceId, email.toLowerCase()).changes > 0;
  }

  async invitationsOf(deviceId: string): Promise<Invitation[]> {
    return (this.stmt.invitationsOf.all(deviceId) as InvitationRow[]).map(toInvitation);
  }

  async acceptInvitations(userId: number, email: string, now: number, validSince: number): Promise<number> {
    return this.acceptTx.immediate(userId, email, now, validSince);
  }

  async createLink(link: { tokenHash: string; scope: string; target: string; userId: number }, now: number, maxPerTarget = 0): Promise<PublicLink> {
    return this.db
      .transaction(() => {
        if (maxPerTarget > 0 && (this.stmt.links.get(link.scope, link.target) as number) >= maxPerTarget) {
          throw new IotcError('E_LIMIT', `This ${link.scope} already has ${maxPerTarget} links`);
        }
        return toLink(this.stmt.insertLink.get(link.tokenHash, link.scope, link.target, link.userId, now) as LinkRow);
      })
      .immediate();
  }

  async linkByHash(tokenHash: string): Promise<PublicLink | null> {
    const row = this.stmt.linkByHash.get(tokenHash) as LinkRow | undefined;
    return row ? toLink(row) : null;
  }

  async linksOf(scope: string, target: string): Promise<PublicLink[]> {
    return (this.stmt.linksOf.all(scope, target) as LinkRow[]).map(toLink);
  }

  async deleteLink(id: number, scope: string, target: string): Promise<boolean> {
    return this.stmt.deleteLink.run(id, scope, target).changes > 0;
  }

  async deleteLinksOf(scope: string, target: string): Promise<number> {
    return this.stmt.deleteLinksOf.run(scope, target).changes;
  }
}
