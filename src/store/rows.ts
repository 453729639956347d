/**
 * Rows as both SQL stores read them (same column names in every dialect), and their domain objects.
 * Each store keeps its own SQL; only the mapping is shared.
 */
import type { ApiToken, Device, Invite, Side, StoredReading, User, WebSession } from './types.js';

export interface ReadingRow { seq: number; device_id: string; sensor: string; side: Side; value: string; time: number }
export interface DeviceRow { id: string; user_id: number; name: string; key_hash: string; created_at: number; last_seen: number | null }
export interface UserRow { id: number; email: string; name: string; password_hash: string; created_at: number }
export interface TokenRow { id: number; user_id: number; name: string; token_hash: string; created_at: number; last_used: number | null }
export interface SessionRow { id_hash: string; user_id: number; csrf_token: string; created_at: number; expires_at: number }

/**
 * Web sessions one account keeps, the newest: a log-in past it ends the oldest, so logging in without end (each
 * one a row for the session's lifetime) cannot fill the store.
 */
export const KEPT_SESSIONS_PER_USER = 100;

/** The columns a ReadingRow is selected with. */
export const READING_COLS = 'seq, device_id, sensor, side, value, time';

export const toReading = (r: ReadingRow): StoredReading => ({
  seq: r.seq, deviceId: r.device_id, sensor: r.sensor, side: r.side, value: JSON.parse(r.value), time: r.time,
});
export const toDevice = (r: DeviceRow): Device => ({
  id: r.id, userId: r.user_id, name: r.name, keyHash: r.key_hash, createdAt: r.created_at, lastSeen: r.last_seen,
});
export const toUser = (r: UserRow): User => ({
  id: r.id, email: r.email, name: r.name, passwordHash: r.password_hash, createdAt: r.created_at,
});
export const toToken = (r: TokenRow): ApiToken => ({
  id: r.id, userId: r.user_id, name: r.name, tokenHash: r.token_hash, createdAt: r.created_at, lastUsed: r.last_used,
});
export const toSession = (r: SessionRow): WebSession => ({
  idHash: r.id_hash, userId: r.user_id, csrfToken: r.csrf_token, createdAt: r.created_at, expiresAt: r.expires_at,
});

export interface InviteRow {
  code_hash: string;
  email: string | null;
  created_at: number;
  used_at: number | null;
  used_email: string | null;
}
export const toInvite = (r: InviteRow): Invite => ({ codeHash: r.code_hash, email: r.email, createdAt: r.created_at, usedAt: r.used_at, usedEmail: r.used_email });
