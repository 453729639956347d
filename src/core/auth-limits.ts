import { IotcError } from './errors.js';
import { KeyedBuckets } from './rate-limit.js';
import { hashSecret } from './secrets.js';
import type { AttemptLimit, Store } from '../store/types.js';

/** Where the per-account buckets live: the store, so that every node of a cluster counts against the same one. */
export type AttemptStore = Pick<Store, 'takeAttempt' | 'giveAttemptBack'>;

/** The settings behind these limits (see src/config.ts); 0 turns one off. */
export interface AuthLimitSettings {
  loginFailuresPerAccount: number;
  keyFailuresPerAddress: number;
  keyFailuresPerDevice: number;
  authFailuresPerAddress: number;
}

const ACCOUNT_WINDOW_S = 600;
const KEY_WINDOW_S = 60;
/** How long every key attempt on a device under attack waits: slows a guesser, never refuses the right key. */
export const DEVICE_SLOWDOWN_MS = 1000;
/**
 * Map sizes. A forgotten entry starts again full. These maps guard device keys and API tokens (75 and 190 bits,
 * unguessable at any rate) and per-address attempts: pushing an entry out wins a few tries at no secret that
 * matters, where passwords are counted in the store, which forgets nothing.
 */
const MAX_KEYS = 100_000;
const MAX_ADDRESSES = 50_000;

export function waitText(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

/** People read these on the log-in page, so the setting is named only where a developer reads it. */
function limited(what: string, retryAfter: number, setting?: string): IotcError {
  const text = `Too many ${what}. Please wait ${waitText(retryAfter)} and try again${setting ? ` (limit: ${setting})` : ''}.`;
  return new IotcError('E_RATE_LIMITED', text, { retryAfterSeconds: retryAfter });
}

/** A bucket of `perWindow` attempts refilling evenly over `windowS` seconds; 0 = unlimited. */
function buckets(perWindow: number, windowS: number, maxKeys: number): KeyedBuckets {
  return new KeyedBuckets(perWindow / windowS, Math.max(1, perWindow), maxKeys);
}

/**
 * Every log-in path's limits in one place, shared by the web app, the HTTP API and every door:
 * - passwords: failures per account (the email), whatever the address, counted in the store so that every node
 *   shares them (a password is the one secret short enough to guess); plus attempts per address;
 * - device keys: failures per (device, address) refused for a while; failures per device from anywhere, and per
 *   address across all devices (spraying ids), only slow every attempt down, so no one can lock a real device out;
 * - API tokens: failures per address refused for a while.
 * The others are per node: a cluster of N nodes allows N times as much. Their entries are capped (least recently
 * seen forgotten first).
 */
export class AuthLimits {
  /** Null when failures per account are not limited (the setting is 0). */
  private readonly accounts: AttemptLimit | null;
  /** Log-in attempts per address (failed or not): 20 a minute, 30 at once. Sign-ups: 2 a minute, 10 at once. */
  private readonly loginAddresses: KeyedBuckets;
  private readonly signUpAddresses: KeyedBuckets;
  private readonly keyPairs: KeyedBuckets;
  private readonly keyDevices: KeyedBuckets;
  /** Wrong API tokens per address: refused when spent. */
  private readonly tokenAddresses: KeyedBuckets;
  /** Wrong keys per address across all devices (spraying ids): only slowed when spent, like keyDevices. */
  private readonly keyAddresses: KeyedBuckets;

  /** `maxEntries` overrides every map's cap (tests). */
  constructor(private readonly settings: AuthLimitSettings, private readonly store: AttemptStore, maxEntries?: number) {
    const perAccount = settings.loginFailuresPerAccount;
    this.accounts = perAccount > 0 ? { burst: perAccount, perSecond: perAccount / ACCOUNT_WINDOW_S } : null;
    this.keyPairs = buckets(settings.keyFailuresPerAddress, KEY_WINDOW_S, maxEntries ?? MAX_KEYS);
    this.keyDevices = buckets(settings.keyFailuresPerDevice, KEY_WINDOW_S, maxEntries ?? MAX_KEYS);
    this.tokenAddresses = buckets(settings.authFailuresPerAddress, KEY_WINDOW_S, maxEntries ?? MAX_ADDRESSES);
    this.keyAddresses = buckets(settings.authFailuresPerAddress, KEY_WINDOW_S, maxEntries ?? MAX_ADDRESSES);
    this.loginAddresses = new KeyedBuckets(20 / 60, 30, maxEntries ?? MAX_ADDRESSES);
    this.signUpAddresses = new KeyedBuckets(2 / 60, 10, maxEntries ?? MAX_ADDRESSES);
  }

  /** Attempts per address, taken before anything is checked (even a form with errors counts). */
  fromAddress(kind: 'log-in' | 'sign-up', address: string): void {
    const taken = (kind === 'log-in' ? this.loginAddresses : this.signUpAddresses).take(address);
    if (!taken.ok) throw limited(`${kind === 'log-in' ? 'log-in attempts' : 'sign-ups'} from your network`, taken.retryAfter);
  }

  /**
   * A password check for `email`: refused when the account or the address has had too many; a failure (null)
   * counts against the account, a success gives its attempt back. The account's attempt is taken before the
   * (slow) check, so a burst of parallel guesses cannot overshoot.
   */
  async logIn<T>(email: string, address: string, check: () => Promise<T | null>): Promise<T | null> {
    this.fromAddress('log-in', address);
    return this.forAccount('log-in', email, check);
  }

  /** A sign-up: limited per address; an email already taken counts as a failure for that email (it tells the account exists). */
  async signUp<T>(email: string, address: string, attempt: () => Promise<T | null>): Promise<T | null> {
    this.fromAddress('sign-up', address);
    return this.forAccount('sign-up', email, attempt);
  }

  /** The per-account half alone, for callers that took the address's attempt earlier. Null = a failure. */
  async forAccount<T>(kind: 'log-in' | 'sign-up', email: string, attempt: () => Promise<T | null>): Promise<T | null> {
    const limit = this.accounts;
    if (!limit) return attempt();
    // Hashed: the table need not hold the emails people tried, which may be no account's.
    const key = `account:${hashSecret(email.trim().toLowerCase())}`;
    const wait = await this.store.takeAttempt(key, limit, Date.now());
    if (wait > 0) throw limited(kind === 'log-in' ? 'log-in attempts for this account' : 'attempts for this email', wait);
    // Only a wrong password (or a taken email) is a failure; success and errors of ours give the attempt back.
    let failed = false;
    try {
      const result = await attempt();
      failed = result === null;
      return result;
    } finally {
      if (!failed) await this.store.giveAttemptBack(key, limit, Date.now());
    }
  }

  /**
   * A device key check. Refused (before any check) once this address has failed too often for this device.
   * Slowed by a second once the device has failed too often from anywhere, or this address too often across all
   * devices (spraying ids): a slow-down, never a refusal, so neither a guesser elsewhere nor a broken device on
   * the same network can lock a real device out. Only failures count: a fleet behind one address reconnecting
   * with right keys is never held up.
   */
  async deviceKey<T>(deviceId: string, address: string, check: () => Promise<T>): Promise<T> {
    const pair = `${deviceId}\n${address}`;
    const byPair = this.keyPairs.check(pair);
    if (!byPair.ok) throw limited(`wrong keys for device ${deviceId.slice(0, 20)} from your address`, byPair.retryAfter, `IOTC_KEY_FAILURES_PER_ADDRESS=${this.settings.keyFailuresPerAddress} a minute`);
    if (!this.keyDevices.check(deviceId).ok || !this.keyAddresses.check(address).ok) await new Promise((r) => setTimeout(r, DEVICE_SLOWDOWN_MS));
    try {
      return await check();
    } catch (err) {
      if (err instanceof IotcError && err.code === 'E_AUTH') {
        this.keyPairs.take(pair);
        this.keyDevices.take(deviceId);
        this.keyAddresses.take(address);
      }
      throw err;
    }
  }

  /** An API token check: refused once this address has failed too often; failures count. */
  async apiToken<T>(address: string, check: () => Promise<T>): Promise<T> {
    const byAddress = this.tokenAddresses.check(address);
    if (!byAddress.ok) throw limited('wrong API tokens from your address', byAddress.retryAfter, `IOTC_AUTH_FAILURES_PER_ADDRESS=${this.settings.authFailuresPerAddress} a minute`);
    try {
      return await check();
    } catch (err) {
      if (err instanceof IotcError && err.code === 'E_AUTH') this.tokenAddresses.take(address);
      throw err;
    }
  }

  /** Entries held per map, to show memory stays bounded. */
  sizes(): Record<string, number> {
    const { loginAddresses, signUpAddresses, keyPairs, keyDevices, keyAddresses, tokenAddresses } = this;
    return {
      loginAddresses: loginAddresses.size, signUpAddresses: signUpAddresses.size,
      keyPairs: keyPairs.size, keyDevices: keyDevices.size, keyAddresses: keyAddresses.size, tokenAddresses: tokenAddresses.size,
    };
  }
}
