import { z } from 'zod';
import { IotcError, overCap } from './errors.js';
import { describeIssues } from './messages.js';
import { hashSecret, randomToken } from './secrets.js';
import type { ApiToken, Store, User } from '../store/types.js';

export const tokenName = z.string({ error: 'name is required' }).trim().min(1, 'name is required').max(100, 'name must be at most 100 characters');

/** Personal API tokens look like `iotc_` + 32 letters and digits; the prefix lets secret scanners spot a leaked one. */
export const TOKEN_PREFIX = 'iotc_';

export interface TokenInfo {
  id: number;
  name: string;
  createdAt: number;
  lastUsed: number | null;
}

const info = (t: ApiToken): TokenInfo => ({ id: t.id, name: t.name, createdAt: t.createdAt, lastUsed: t.lastUsed });

/** Personal API tokens: created, named, listed and revoked by their user; only hashes are kept. */
export class ApiTokens {
  constructor(private readonly store: Store, private readonly limits: { maxTokensPerUser?: number } = {}) {}

  /** The token text is returned once, here. E_LIMIT once the user has IOTC_MAX_TOKENS_PER_USER tokens, on every node. */
  async create(userId: number, name: unknown): Promise<TokenInfo & { token: string }> {
    const parsed = tokenName.safeParse(name);
    if (!parsed.success) throw new IotcError('E_VALIDATION', describeIssues(parsed.error));
    const max = this.limits.maxTokensPerUser ?? 0;
    const token = TOKEN_PREFIX + randomToken(32, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789');
    try {
      const row = await this.store.createApiToken({ userId, name: parsed.data, tokenHash: hashSecret(token) }, max);
      return { ...info(row), token };
    } catch (err) {
      throw overCap(err, `This account has reached its limit of ${max} API tokens (set by --max-tokens-per-user / IOTC_MAX_TOKENS_PER_USER): revoke tokens you no longer use first (each API log-in makes one)`);
    }
  }

  async list(userId: number): Promise<TokenInfo[]> {
    return (await this.store.listApiTokens(userId)).map(info);
  }

  async revoke(userId: number, id: number): Promise<void> {
    if (!(await this.store.deleteApiToken(userId, id))) throw new IotcError('E_NOT_FOUND', 'No such token');
  }

  /** The token's user, or E_AUTH. */
  async authenticate(token: string): Promise<User> {
    const row = token.startsWith(TOKEN_PREFIX) ? await this.store.useApiToken(hashSecret(token), Date.now()) : null;
    const user = row ? await this.store.getUser(row.userId) : null;
    if (!user) throw new IotcError('E_AUTH', 'Invalid or revoked API token');
    return user;
  }
}
