import type pg from 'pg';
import { IotcError } from '../core/errors.js';
import type { PostgresAccess } from './calls-postgres.js';
import type { ApiToken, Invite, User, WebSession } from './account-types.js';
import { giveOne, takeOne } from './attempt-buckets.js';
import type { AttemptLimit, AttemptRow, AttemptWrite } from './attempt-buckets.js';
import { KEPT_SESSIONS_PER_USER, toInvite, toSession, toToken, toUser } from './rows.js';
import type { InviteRow, SessionRow, TokenRow, UserRow } from './rows.js';

/** Users, web sessions, API tokens and sign-up invites in the PostgreSQL store. */
export class PostgresAccounts {
  constructor(private readonly db: PostgresAccess) {}

  async createUser(u: { email: string; name: string; passwordHash: string }): Promise<User> {
    try {
      const { rows } = await this.db.q<UserRow>(
        'INSERT INTO users (email, name, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING *',
        [u.email, u.name, u.passwordHash, Date.now()],
      );
      return toUser(rows[0]);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new IotcError('E_CONFLICT', 'An account with this email already exists');
      throw err;
    }
  }

  async getUserByEmail(email: string): Promise<User | null> {
    const { rows } = await this.db.q<UserRow>('SELECT * FROM users WHERE lower(email) = lower($1)', [email]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  async getUser(id: number): Promise<User | null> {
    const { rows } = await this.db.q<UserRow>('SELECT * FROM users WHERE id = $1', [id]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  async updateUser(id: number, change: { name?: string; passwordHash?: string }): Promise<boolean> {
    const r = await this.db.q('UPDATE users SET name = COALESCE($2, name), password_hash = COALESCE($3, password_hash) WHERE id = $1', [id, change.name ?? null, change.passwordHash ?? null]);
    return (r.rowCount ?? 0) > 0;
  }

  async deleteUser(id: number): Promise<boolean> {
    // Sessions, API tokens (and any device row left) go with it: ON DELETE CASCADE.
    return ((await this.db.q('DELETE FROM users WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  async deleteUserSessions(userId: number, keepIdHash = ''): Promise<number> {
    return (await this.db.q('DELETE FROM web_sessions WHERE user_id = $1 AND id_hash <> $2', [userId, keepIdHash])).rowCount ?? 0;
  }

  async createSession(s: WebSession): Promise<void> {
    await this.db.q('INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)', [
      s.idHash, s.userId, s.csrfToken, s.createdAt, s.expiresAt,
    ]);
    await this.db.q(
      'DELETE FROM web_sessions WHERE id_hash IN (SELECT id_hash FROM web_sessions WHERE user_id = $1 ORDER BY created_at DESC, id_hash LIMIT ALL OFFSET $2)',
      [s.userId, KEPT_SESSIONS_PER_USER],
    );
  }

  async getSession(idHash: string, now: number): Promise<WebSession | null> {
    const { rows } = await this.db.q<SessionRow>('SELECT * FROM web_sessions WHERE id_hash = $1 AND expires_at > $2', [idHash, now]);
    const r = rows[0];
    return r ? toSession(r) : null;
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.db.q('DELETE FROM web_sessions WHERE id_hash = $1', [idHash]);
  }

  async pruneSessions(now: number): Promise<number> {
    return (await this.db.q('DELETE FROM web_sessions WHERE expires_at <= $1', [now])).rowCount ?? 0;
  }

  async createApiToken(t: { userId: number; name: string; tokenHash: string }, maxPerUser = 0): Promise<ApiToken> {
    return this.db.tx(async (c) => {
      if (maxPerUser > 0) {
        // Nodes creating tokens for one user at once take turns, so the cap holds across a cluster.
        await this.db.lock(c, `tokens:${t.userId}`);
        const { rows } = await c.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM api_tokens WHERE user_id = $1', [t.userId]);
        if (rows[0].n >= maxPerUser) throw new IotcError('E_LIMIT', `This account already has ${maxPerUser} API tokens`);
      }
      const { rows } = await c.query<TokenRow>(
        'INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING *',
        [t.userId, t.name, t.tokenHash, Date.now()],
      );
      return toToken(rows[0]);
    });
  }

  async listApiTokens(userId: number): Promise<ApiToken[]> {
    return (await this.db.q<TokenRow>('SELECT * FROM api_tokens WHERE user_id = $1 ORDER BY created_at, id', [userId])).rows.map(toToken);
  }

  async useApiToken(tokenHash: string, now: number): Promise<ApiToken | null> {
    const { rows } = await this.db.q<TokenRow>('UPDATE api_tokens SET last_used = $1 WHERE token_hash = $2 RETURNING *', [now, tokenHash]);
    return rows[0] ? toToken(rows[0]) : null;
  }

  async deleteApiToken(userId: number, id: number): Promise<boolean> {
    return ((await this.db.q('DELETE FROM api_tokens WHERE user_id = $1 AND id = $2', [userId, id])).rowCount ?? 0) > 0;
  }

  async createInvite(invite: { codeHash: string; email: string | null }): Promise<Invite> {
    const { rows } = await this.db.q<InviteRow>('INSERT INTO invites (code_hash, email, created_at) VALUES ($1, $2, $3) RETURNING *', [invite.codeHash, invite.email, Date.now()]);
    return toInvite(rows[0]);
  }

  async claimInvite(codeHash: string, email: string, now: number, validSince: number): Promise<Invite | null> {
    const { rows } = await this.db.q<InviteRow>(
      'UPDATE invites SET used_at = $1, used_email = $2 WHERE code_hash = $3 AND used_at IS NULL AND created_at >= $4 AND (email IS NULL OR lower(email) = lower($2)) RETURNING *',
      [now, email, codeHash, validSince],
    );
    return rows[0] ? toInvite(rows[0]) : null;
  }

  async releaseInvite(codeHash: string): Promise<void> {
    await this.db.q('UPDATE invites SET used_at = NULL, used_email = NULL WHERE code_hash = $1', [codeHash]);
  }

  async listInvites(): Promise<Invite[]> {
    return (await this.db.q<InviteRow>('SELECT * FROM invites ORDER BY created_at DESC, code_hash')).rows.map(toInvite);
  }

  takeAttempt(key: string, limit: AttemptLimit, now: number): Promise<number> {
    return this.onAttempt(key, async (c, row) => {
      const taken = takeOne(row, limit, now);
      if ('waitSeconds' in taken) return taken.waitSeconds;
      await this.setAttempt(c, key, taken.write);
      return 0;
    });
  }

  giveAttemptBack(key: string, limit: AttemptLimit, now: number): Promise<void> {
    return this.onAttempt(key, async (c, row) => {
      const given = giveOne(row, limit, now);
      if (given) await this.setAttempt(c, key, given);
      else await c.query('DELETE FROM attempt_buckets WHERE key = $1', [key]);
    });
  }

  async pruneAttempts(now: number): Promise<number> {
    return (await this.db.q('DELETE FROM attempt_buckets WHERE full_at <= $1', [now])).rowCount ?? 0;
  }

  /** Runs `fn` on the key's row under a lock of the key's own: the row may not exist yet, so FOR UPDATE would not hold it. */
  private onAttempt<T>(key: string, fn: (c: pg.PoolClient, row: AttemptRow | null) => Promise<T>): Promise<T> {
    return this.db.tx(async (c) => {
      await this.db.lock(c, `attempts:${key}`);
      const { rows } = await c.query<AttemptRow>('SELECT level, at FROM attempt_buckets WHERE key = $1', [key]);
      return fn(c, rows[0] ?? null);
    });
  }

  private async setAttempt(c: pg.PoolClient, key: string, w: AttemptWrite): Promise<void> {
    await c.query(
      'INSERT INTO attempt_buckets (key, level, at, full_at) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET level = excluded.level, at = excluded.at, full_at = excluded.full_at',
      [key, w.level, w.at, w.fullAt],
    );
  }
}
