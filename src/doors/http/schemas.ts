import { z } from 'zod';
import { IotcError } from '../../core/errors.js';
import { deviceName } from '../../core/accounts.js';
import { describeIssues, historyLimit, MAX_BATCH, sensorName, sensorWrite, sideName, timeInRange } from '../../core/messages.js';
import { tokenName } from '../../core/tokens.js';

/** Checks `input` against `schema` before any side effect; a failure is a 400 that says what is wrong. */
export function check<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new IotcError('E_VALIDATION', describeIssues(parsed.error));
  return parsed.data;
}

/** A time in a query string: ms since epoch or an ISO 8601 date. */
const queryTime = z.string().transform((v, ctx) => timeInRange(/^\d+$/.test(v) ? Number(v) : Date.parse(v), v, ctx));

export const deviceIdParam = z.object({ id: z.string().min(1).max(64, 'device id is too long') });
export const sensorParams = deviceIdParam.extend({ sensor: sensorName });
export const tokenIdParam = z.object({ tokenId: z.coerce.number({ error: 'token id must be a number' }).int('token id must be a whole number').positive('token id must be positive') });

export const readingsBody = z.union(
  [sensorWrite, z.array(sensorWrite).min(1, 'a batch needs at least one reading').max(MAX_BATCH, `a batch holds at most ${MAX_BATCH} readings`)],
  { error: 'the body must be {"sensor":…,"value":…} or an array of them' },
);

export const historyQuery = z.object({
  from: queryTime.optional(),
  to: queryTime.optional(),
  limit: historyLimit.optional(),
  write: sideName.optional(),
  format: z.enum(['json', 'csv'], { error: 'format must be "json" or "csv"' }).optional(),
  bucket: z.string().max(16, 'bucket is too long').optional(),
});

export const latestQuery = z.object({
  sensor: sensorName.optional(),
  since: queryTime.optional(),
  after: sensorName.optional(),
});

export const sensorsQuery = z.object({ write: sideName.optional(), after: sensorName.optional() });
export const nameBody = z.object({ name: deviceName }, { error: 'the body must be {"name":"…"}' });
export const tokenBody = z.object({ name: tokenName }, { error: 'the body must be {"name":"…"}' });
export const loginBody = z.object(
  {
    email: z.string({ error: 'email is required' }).max(254, 'email is too long'),
    password: z.string({ error: 'password is required' }).max(1024, 'password is too long'),
    tokenName: tokenName.optional(),
  },
  { error: 'the body must be {"email":"…","password":"…"}' },
);
export const signUpBody = z.object(
  { name: z.unknown(), email: z.unknown(), password: z.unknown(), tokenName: tokenName.optional(), invite: z.string().max(100).optional() },
  { error: 'the body must be {"name":"…","email":"…","password":"…"}' },
);

/** Query parameters of the one-line update that are not sensors. */
export const UPDATE_RESERVED = new Set(['device', 'key', 'side']);

/**
 * The one-line update's sensors: every other query parameter. Numbers become numbers and true/false
 * booleans, as a device that types `temp=21.5` means; anything else stays a string.
 */
export function updateWrites(query: Record<string, unknown>): { sensor: string; value: unknown }[] {
  const writes: { sensor: string; value: unknown }[] = [];
  for (const [sensor, raw] of Object.entries(query)) {
    if (UPDATE_RESERVED.has(sensor)) continue;
    if (typeof raw !== 'string') throw new IotcError('E_VALIDATION', `${sensor.slice(0, 64)}: give each sensor once`);
    check(sensorName, sensor);
    writes.push({ sensor, value: plainValue(raw) });
  }
  if (writes.length === 0) throw new IotcError('E_VALIDATION', 'Give at least one sensor: /api/v1/update?device=ID&key=KEY&temp=21.5');
  if (writes.length > MAX_BATCH) throw new IotcError('E_VALIDATION', `At most ${MAX_BATCH} sensors in one update`);
  return writes;
}

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/**
 * A query value as the device meant it. A number a JavaScript number cannot hold exactly (an integer
 * beyond ±2^53, or beyond ±1.7e308 at all) stays the text it was: here the hub picks the type, so nothing
 * is rounded, silently or otherwise.
 */
export function plainValue(text: string): unknown {
  if (NUMBER.test(text) && !(/^-?\d{16,}$/.test(text) && !Number.isSafeInteger(Number(text)))) {
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  if (text === 'true') return true;
  if (text === 'false') return false;
  return text;
}
