import { IotcError } from './errors.js';
import { hashSecret, randomToken } from './secrets.js';
import type { Accounts } from './accounts.js';
import { invitationsValidSince, signUpInput } from './accounts.js';
import type { Config } from '../config.js';
import type { Invite, Store, User } from '../store/types.js';

export type SignUpMode = Config['signup'];

/** 16 characters of A–Z 0–9 in groups of four, easy to read out or type: about 82 bits. */
export function newInviteCode(): string {
  return randomToken(16).replace(/(.{4})(?=.)/g, '$1-');
}

/** The code as typed: case, spaces and dashes do not matter. */
function normalise(code: string): string {
  return code.toUpperCase().replace(/[^A-Z0-9]/g, '');
}

export class Invites {
  /** `ttl`: how long a code stays valid after it is made, in ms (0 = until used). */
  constructor(private readonly store: Store, readonly ttl: number) {}

  /** When a code made at `createdAt` stops being valid; null = never. */
  expiresAt(invite: Pick<Invite, 'createdAt'>): number | null {
    return this.ttl ? invite.createdAt + this.ttl : null;
  }

  /** A new invite; the code is returned once, only its hash is kept. */
  async create(email: string | null): Promise<{ code: string; invite: Invite }> {
    const code = newInviteCode();
    const invite = await this.store.createInvite({ codeHash: hashSecret(normalise(code)), email: email ? email.trim().toLowerCase() : null });
    return { code, invite };
  }

  list(): Promise<Invite[]> {
    return this.store.listInvites();
  }

  /**
   * A sign-up from the web app or the API, as the hub's sign-up mode allows it. `iotc user add` does not come
   * here: an administrator can always make an account. The invite is claimed before the account is made and
   * given back if it is not, so one code makes one account even under parallel attempts.
   */
  async signUp(mode: SignUpMode, accounts: Accounts, input: unknown, inviteCode: unknown): Promise<User> {
    if (mode === 'closed') throw new IotcError('E_FORBIDDEN', 'Sign-up is closed on this hub: ask its administrator for an account');
    if (mode === 'open') return accounts.signUp(input);
    const parsed = signUpInput.safeParse(input);
    // Field errors first, so a typo in the password does not use up the invite.
    if (!parsed.success) return accounts.signUp(input);
    const code = typeof inviteCode === 'string' ? normalise(inviteCode) : '';
    if (!code) throw new IotcError('E_FORBIDDEN', 'Sign-up on this hub is by invitation: give your invitation code');
    const codeHash = hashSecret(code);
    const now = Date.now();
    const claimed = await this.store.claimInvite(codeHash, parsed.data.email, now, invitationsValidSince(this.ttl, now));
    if (!claimed) throw new IotcError('E_FORBIDDEN', 'This invitation code is not valid: it is unknown, used already, expired, or made for another email');
    try {
      return await accounts.signUp(parsed.data);
    } catch (err) {
      await this.store.releaseInvite(codeHash);
      throw err;
    }
  }
}
