import type Database from 'better-sqlite3';
import { IotcError } from '../core/errors.js';
import type { ApiToken, Invite, User, WebSession } from './account-types.js';
import { giveOne, takeOne } from './attempt-buckets.js';
import type { AttemptLimit, AttemptRow, AttemptWrite } from './attempt-buckets.js';
import { KEPT_SESSIONS_PER_USER, toInvite, toSession, toToken, toUser } from './rows.js';
import type { InviteRow, SessionRow, TokenRow, UserRow } from './rows.js';

/** Users, web sessions, API tokens and sign-up invites in the SQLite store. */
export class SqliteAccounts {
  private readonly stmt;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      insertUser: db.prepare('INSERT INTO users (email, name, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING *'),
      userByEmail: db.prepare('SELECT * FROM users WHERE email = ?'),
      userById: db.prepare('SELECT * FROM users WHERE id = ?'),
      insertSession: db.prepare('INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)'),
      trimSessions: db.prepare(
        'DELETE FROM web_sessions WHERE id_hash IN (SELECT id_hash FROM web_sessions WHERE user_id = ? ORDER BY created_at DESC, id_hash LIMIT -1 OFFSET ?)',
      ),
      getSession: db.prepare('SELECT * FROM web_sessions WHERE id_hash = ? AND expires_at > ?'),
      deleteSession: db.prepare('DELETE FROM web_sessions WHERE id_hash = ?'),
      pruneSessions: db.prepare('DELETE FROM web_sessions WHERE expires_at <= ?'),
      // One statement counts and inserts, so a burst from several processes cannot pass the cap.
      insertToken: db.prepare(
        'INSERT INTO api_tokens (user_id, name, token_hash, created_at) SELECT ?, ?, ?, ? WHERE ? = 0 OR (SELECT COUNT(*) FROM api_tokens WHERE user_id = ?) < ? RETURNING *',
      ),
      tokensByUser: db.prepare('SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at, id'),
      useToken: db.prepare('UPDATE api_tokens SET last_used = ? WHERE token_hash = ? RETURNING *'),
      deleteToken: db.prepare('DELETE FROM api_tokens WHERE user_id = ? AND id = ?'),
      attempt: db.prepare('SELECT level, at FROM attempt_buckets WHERE key = ?'),
      setAttempt: db.prepare('INSERT INTO attempt_buckets (key, level, at, full_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET level = excluded.level, at = excluded.at, full_at = excluded.full_at'),
      dropAttempt: db.prepare('DELETE FROM attempt_buckets WHERE key = ?'),
      pruneAttempts: db.prepare('DELETE FROM attempt_buckets WHERE full_at <= ?'),
    };
  }

  createUser(u: { email: string; name: string; passwordHash: string }): User {
    try {
      return toUser(this.stmt.insertUser.get(u.email, u.name, u.passwordHash, Date.now()) as UserRow);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new IotcError('E_CONFLICT', 'An account with this email already exists');
      }
      throw err;
    }
  }

  getUserByEmail(email: string): User | null {
    const row = this.stmt.userByEmail.get(email) as UserRow | undefined;
    return row ? toUser(row) : null;
  }

  getUser(id: number): User | null {
    const row = this.stmt.userById.get(id) as UserRow | undefined;
    return row ? toUser(row) : null;
  }

  updateUser(id: number, change: { name?: string; passwordHash?: string }): boolean {
    const r = this.db
      .prepare('UPDATE users SET name = COALESCE(?, name), password_hash = COALESCE(?, password_hash) WHERE id = ?')
      .run(change.name ?? null, change.passwordHash ?? null, id);
    return r.changes > 0;
  }

  deleteUser(id: number): boolean {
    // Sessions, API tokens (and any device row left) go with it: ON DELETE CASCADE.
    return this.db.prepare('DELETE FROM users WHERE id = ?').run(id).changes > 0;
  }

  deleteUserSessions(userId: number, keepIdHash = ''): number {
    return this.db.prepare('DELETE FROM web_sessions WHERE user_id = ? AND id_hash <> ?').run(userId, keepIdHash).changes;
  }

  createSession(s: WebSession): void {
    this.db.transaction(() => {
      this.stmt.insertSession.run(s.idHash, s.userId, s.csrfToken, s.createdAt, s.expiresAt);
      this.stmt.trimSessions.run(s.userId, KEPT_SESSIONS_PER_USER);
    }).immediate();
  }

  getSession(idHash: string, now: number): WebSession | null {
    const r = this.stmt.getSession.get(idHash, now) as SessionRow | undefined;
    return r ? toSession(r) : null;
  }

  deleteSession(idHash: string): void {
    this.stmt.deleteSession.run(idHash);
  }

  pruneSessions(now: number): number {
    return this.stmt.pruneSessions.run(now).changes;
  }

  createApiToken(t: { userId: number; name: string; tokenHash: string }, maxPerUser = 0): ApiToken {
    const row = this.stmt.insertToken.get(t.userId, t.name, t.tokenHash, Date.now(), maxPerUser, t.userId, maxPerUser) as TokenRow | undefined;
    if (!row) throw new IotcError('E_LIMIT', `This account already has ${maxPerUser} API tokens`);
    return toToken(row);
  }

  listApiTokens(userId: number): ApiToken[] {
    return (this.stmt.tokensByUser.all(userId) as TokenRow[]).map(toToken);
  }

  useApiToken(tokenHash: string, now: number): ApiToken | null {
    const row = this.stmt.useToken.get(now, tokenHash) as TokenRow | undefined;
    return row ? toToken(row) : null;
  }

  deleteApiToken(userId: number, id: number): boolean {
    return this.stmt.deleteToken.run(userId, id).changes > 0;
  }

  createInvite(invite: { codeHash: string; email: string | null }): Invite {
    return toInvite(this.db.prepare('INSERT INTO invites (code_hash, email, created_at) VALUES (?, ?, ?) RETURNING *').get(invite.codeHash, invite.email, Date.now()) as InviteRow);
  }

  claimInvite(codeHash: string, email: string, now: number, validSince: number): Invite | null {
    const row = this.db
      .prepare('UPDATE invites SET used_at = ?, used_email = ? WHERE code_hash = ? AND used_at IS NULL AND created_at >= ? AND (email IS NULL OR email = ?) RETURNING *')
      .get(now, email, codeHash, validSince, email) as InviteRow | undefined;
    return row ? toInvite(row) : null;
  }

  releaseInvite(codeHash: string): void {
    this.db.prepare('UPDATE invites SET used_at = NULL, used_email = NULL WHERE code_hash = ?').run(codeHash);
  }

  listInvites(): Invite[] {
    return (this.db.prepare('SELECT * FROM invites ORDER BY created_at DESC, code_hash').all() as InviteRow[]).map(toInvite);
  }

  takeAttempt(key: string, limit: AttemptLimit, now: number): number {
    // IMMEDIATE: the read and the write hold the write lock together, against the CLI or another process too.
    return this.db
      .transaction(() => {
        const taken = takeOne(this.stmt.attempt.get(key) as AttemptRow | undefined ?? null, limit, now);
        if ('waitSeconds' in taken) return taken.waitSeconds;
        this.setAttempt(key, taken.write);
        return 0;
      })
      .immediate();
  }

  giveAttemptBack(key: string, limit: AttemptLimit, now: number): void {
    this.db
      .transaction(() => {
        const given = giveOne(this.stmt.attempt.get(key) as AttemptRow | undefined ?? null, limit, now);
        if (given) this.setAttempt(key, given);
        else this.stmt.dropAttempt.run(key);
      })
      .immediate();
  }

  pruneAttempts(now: number): number {
    return this.stmt.pruneAttempts.run(now).changes;
  }

  private setAttempt(key: string, w: AttemptWrite): void {
    this.stmt.setAttempt.run(key, w.level, w.at, w.fullAt);
  }
}
