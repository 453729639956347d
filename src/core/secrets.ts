import crypto from 'node:crypto';
import { promisify } from 'node:util';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/**
 * What new device ids and keys are made of: A–Z 0–9 without O, 0, I and 1, which people copying a key from a
 * screen into a sketch confuse. 32 symbols: exactly 5 random bits a character, so ids carry 100 bits and keys 75.
 * L (its look-alikes 1 and I are gone) and S/5, Z/2, B/8 (distinct in the fonts keys are shown in) stay:
 * dropping those pairs too would cost a key 5 more bits for little. Ids and keys made before, from all 36, stay
 * valid: the patterns below still accept every letter and digit.
 */
export const UNAMBIGUOUS_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
export const DEVICE_ID_LENGTH = 20;
export const DEVICE_KEY_LENGTH = 15;
export const DEVICE_ID_PATTERN = /^[A-Z0-9]{20}$/;
export const DEVICE_KEY_PATTERN = /^[A-Z0-9]{15}$/;

/** Uniform over the alphabet: bytes at or above the largest multiple of its size are rejected, not folded. */
export function randomToken(length: number, alphabet = ALPHABET): string {
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < length) {
    for (const byte of crypto.randomBytes(length * 2)) {
      if (byte < limit) out += alphabet[byte % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

export const newDeviceId = () => randomToken(DEVICE_ID_LENGTH, UNAMBIGUOUS_ALPHABET);
export const newDeviceKey = () => randomToken(DEVICE_KEY_LENGTH, UNAMBIGUOUS_ALPHABET);

/**
 * Device keys (75 random bits) and API tokens (190) are out of reach of guessing, so a fast hash is as safe as a slow one for them
 * and keeps connection set-up cheap; passwords, chosen by people, get scrypt below.
 */
export function hashSecret(secret: string): string {
  return crypto.createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

const scrypt = promisify(crypto.scrypt) as (pw: string, salt: Buffer, len: number, opts: crypto.ScryptOptions) => Promise<Buffer>;
const SCRYPT = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

/** `scrypt$N$r$p$salt$hash`, so the cost can be raised later without breaking old hashes. */
export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const hash = await scrypt(password, salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts;
  const expected = Buffer.from(hash, 'base64');
  const actual = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem,
  });
  return crypto.timingSafeEqual(actual, expected);
}
