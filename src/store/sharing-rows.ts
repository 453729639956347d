import { toDevice } from './rows.js';
import type { DeviceRow } from './rows.js';
import type { Invitation, PublicLink, Share, SharedDevice, ShareRole } from './types.js';

/** Rows of the sharing tables as both SQL stores read them, and their domain objects. */
export interface ShareRow { device_id: string; user_id: number; email: string; role: ShareRole; created_at: number }
export interface InvitationRow { device_id: string; email: string; role: ShareRole; created_at: number }
export interface LinkRow { id: number; token_hash: string; scope: string; target: string; user_id: number; created_at: number }
export type SharedDeviceRow = DeviceRow & { role: ShareRole; owner_email: string; device_conns: number; client_conns: number };

export const LINK_COLS = 'id, token_hash, scope, target, user_id, created_at';

export const toShare = (r: ShareRow): Share => ({ deviceId: r.device_id, userId: r.user_id, email: r.email, role: r.role, createdAt: r.created_at });
export const toInvitation = (r: InvitationRow): Invitation => ({ deviceId: r.device_id, email: r.email, role: r.role, createdAt: r.created_at });
export const toLink = (r: LinkRow): PublicLink => ({ id: r.id, tokenHash: r.token_hash, scope: r.scope, target: r.target, userId: r.user_id, createdAt: r.created_at });
export const toSharedDevice = (r: SharedDeviceRow): SharedDevice => ({
  ...toDevice(r), online: r.device_conns > 0, clients: r.client_conns, role: r.role, ownerEmail: r.owner_email,
});

/** The devices shared with a user: p(1) the user id, p(2) and p(3) `now` (SQLite binds them in text order: now, now, user). */
export function sharedWithSql(p: (n: number) => string): string {
  return `SELECT d.*, s.role, u.email AS owner_email,
      (SELECT COALESCE(SUM(connections), 0) FROM presence p WHERE p.device_id = d.id AND p.side = 'device' AND p.expires_at > ${p(2)}) AS device_conns,
      (SELECT COALESCE(SUM(connections), 0) FROM presence p WHERE p.device_id = d.id AND p.side = 'client' AND p.expires_at > ${p(3)}) AS client_conns
    FROM device_shares s JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = d.user_id
    WHERE s.user_id = ${p(1)} ORDER BY s.created_at, d.id`;
}
