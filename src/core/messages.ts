import { z } from 'zod';
import { IotcError } from './errors.js';
import { checkIntegerLiterals } from './values.js';

/** Schemas of the JSON protocol, shared by every door that speaks it. Checked before any side effect. */
export const SENSOR_MAX = 64;
export const sensorName = z
  .string({ error: (iss) => (iss.input === undefined ? 'sensor is required' : 'sensor must be a string') })
  .min(1, 'sensor must not be empty')
  .max(SENSOR_MAX, `sensor must be at most ${SENSOR_MAX} characters`)
  // PostgreSQL text cannot hold NUL; refusing it here keeps one bad name from failing a shared store batch.
  .refine((s) => !s.includes('\u0000'), 'sensor must not contain NUL characters');

/** The rules of `sensorName` in one expression, for the hand-checked fast path below (zod words the errors). */
export const isSensorName = (s: unknown): s is string => typeof s === 'string' && s.length >= 1 && s.length <= SENSOR_MAX && !s.includes('\u0000');

/** Any JSON value; `undefined` (a missing field) is not one. */
export const jsonValue = z.custom<unknown>((v) => v !== undefined, { message: 'value is required (any JSON: number, string, boolean, object, array or null)' });

export const requestId = z.union([z.string().max(64, 'id must be at most 64 characters'), z.number()], { error: 'id must be a string or a number' }).optional();
export const sideName = z.enum(['device', 'client'], { error: 'write must be "device" or "client"' });

export const sensorWrite = z.object({ sensor: sensorName, value: jsonValue }, { error: 'a reading is {"sensor":…,"value":…}' });
export const MAX_BATCH = 500;
const sensorBatch = z.array(sensorWrite).min(1, 'a batch needs at least one reading').max(MAX_BATCH, `a batch holds at most ${MAX_BATCH} readings`);

/**
 * One reading or a batch of them. Picked by shape first: a z.union failure would only say that neither form
 * matched, hiding what is actually wrong (a missing value, a batch too big, a bad sensor in reading 3).
 */
export const putStatus = z.unknown().transform((input, ctx): z.infer<typeof sensorWrite> | z.infer<typeof sensorWrite>[] => {
  if (typeof input !== 'object' || input === null) {
    ctx.addIssue({ code: 'custom', message: 'status must be {"sensor":…,"value":…} or an array of them' });
    return z.NEVER;
  }
  const parsed = (Array.isArray(input) ? sensorBatch : sensorWrite).safeParse(input);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
  return z.NEVER;
});

/** The latest time a JavaScript Date (and so the hub) can represent: year 275760. */
export const MAX_TIME = 8_640_000_000_000_000;
const TIME_RANGE = `a time must be between 0 and ${MAX_TIME} ms since epoch (year 275760)`;

/** A time bound as ms since epoch, refused (with what is wrong) outside what a Date and the stores can hold. */
export function timeInRange(ms: number, input: unknown, ctx: z.RefinementCtx): number {
  if (Number.isNaN(ms)) {
    ctx.addIssue({ code: 'custom', message: `"${String(input).slice(0, 40)}" is not a time: use ms since epoch or an ISO 8601 date` });
    return z.NEVER;
  }
  if (ms < 0 || ms > MAX_TIME) {
    ctx.addIssue({ code: 'custom', message: `${String(input).slice(0, 40)} is out of range: ${TIME_RANGE}` });
    return z.NEVER;
  }
  return ms;
}

/** A time bound: ms since epoch, or an ISO 8601 string. */
const TIME_SHAPE = 'a time is ms since epoch (0 or more) or an ISO 8601 date';
export const timeBound = z
  .union([z.number().int(TIME_SHAPE).nonnegative(TIME_SHAPE), z.string()], { error: TIME_SHAPE })
  .transform((v, ctx) => timeInRange(typeof v === 'number' ? v : Date.parse(v), v, ctx));

export const historyLimit = z.coerce.number({ error: 'limit must be a number' }).int('limit must be a whole number').min(1, 'limit must be at least 1').max(10_000, 'limit must be at most 10000');

const put = z.object({
  method: z.literal('put'),
  id: requestId,
  status: putStatus,
});
const gets = z.object({ method: z.literal('gets'), id: requestId, sensor: sensorName, write: sideName.optional() });
/** `get` is the original IOTcommunicate's name for `gets` (what iotcommute's get_state sends); both answer alike. */
const get = gets.extend({ method: z.literal('get') });
const history = z.object({
  method: z.literal('history'),
  id: requestId,
  sensor: sensorName,
  limit: historyLimit.optional(),
  from: timeBound.optional(),
  to: timeBound.optional(),
  write: sideName.optional(),
  /** Aggregate into buckets of this size ("1h", "auto"): see core/buckets.ts. */
  bucket: z.string({ error: 'bucket must be a size like "1h" or "auto"' }).max(16, 'bucket is too long').optional(),
});
const sensors = z.object({ method: z.literal('sensors'), id: requestId, write: sideName.optional(), after: sensorName.optional() });
const ping = z.object({ method: z.literal('ping'), id: requestId });

/** Commands with confirmation: the app side calls a method of its device (limits in src/core/calls.ts). */
export const callId = z.string({ error: 'call must be a call id (a string)' }).min(1, 'call must not be empty').max(64, 'call must be at most 64 characters');
export const callTimeout = z.number({ error: 'timeout must be a number of milliseconds' }).int('timeout must be a whole number of milliseconds');
export const CALL_ERROR_MAX = 1024;
/** A device method is named like a sensor (the device receives it as the frame's `sensor`). */
export const deviceMethodName = z
  .string({ error: (iss) => (iss.input === undefined ? 'the method name is required' : 'the method name must be a string') })
  .min(1, 'the method name must not be empty')
  .max(SENSOR_MAX, `the method name must be at most ${SENSOR_MAX} characters`)
  .refine((s) => !s.includes('\u0000') && s !== '$call', 'the method name must not contain NUL characters or be "$call"');
const call = z.object({
  method: z.literal('call'),
  id: requestId,
  device_method: deviceMethodName,
  params: z.unknown().optional(),
  timeout: callTimeout.optional(),
  persistent: z.boolean({ error: 'persistent must be true or false' }).optional(),
});
const callStatus = z.object({ method: z.literal('call_status'), id: requestId, call: callId });
const reply = z.object({
  method: z.literal('reply'),
  id: requestId,
  call: callId,
  result: z.unknown().optional(),
  error: z.string({ error: 'error must be a string (the device\'s message)' }).max(CALL_ERROR_MAX, `error must be at most ${CALL_ERROR_MAX} characters`).optional(),
});

export const request = z.discriminatedUnion('method', [put, gets, get, history, sensors, ping, call, callStatus, reply]);
export type Request = z.infer<typeof request>;
export const METHODS = ['put', 'get', 'gets', 'history', 'sensors', 'ping', 'call', 'call_status', 'reply'] as const;

/** Human-readable summary of a zod failure: "status.sensor: sensor must not be empty". */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

/** Parses one text frame into a request, or throws an IotcError that says what is wrong. */
export function parseRequest(text: string): Request {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new IotcError('E_BAD_MESSAGE', 'Message is not valid JSON');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new IotcError('E_BAD_MESSAGE', 'Message must be a JSON object with a "method"');
  }
  const method = (data as { method?: unknown }).method;
  if (typeof method !== 'string') throw new IotcError('E_BAD_MESSAGE', `"method" is required: one of ${METHODS.join(', ')}`);
  if (!(METHODS as readonly string[]).includes(method)) {
    throw new IotcError('E_BAD_MESSAGE', `Unknown method "${method.slice(0, 32)}": use one of ${METHODS.join(', ')}`);
  }
  // Before either path below: both would take a rounded number for the one written.
  checkIntegerLiterals(text);
  if (method === 'put') {
    const put = plainPut(data as Record<string, unknown>);
    if (put) return put;
  }
  const parsed = request.safeParse(data);
  if (!parsed.success) throw new IotcError('E_VALIDATION', describeIssues(parsed.error));
  return parsed.data;
}

const plainWrite = (w: unknown): w is { sensor: string; value: unknown } => {
  if (typeof w !== 'object' || w === null || Array.isArray(w)) return false;
  const { sensor, value } = w as { sensor?: unknown; value?: unknown };
  return isSensorName(sensor) && value !== undefined;
};

/**
 * The common put, checked by hand: accepts exactly what the zod schema accepts and returns the same shape
 * (unknown keys dropped). Anything else returns null and goes through zod, which words the error.
 */
function plainPut(data: Record<string, unknown>): Request | null {
  const { id, status } = data;
  // JSON.parse turns 1e400 into Infinity, which z.number() refuses.
  if (!(id === undefined || (typeof id === 'number' && Number.isFinite(id)) || (typeof id === 'string' && id.length <= 64))) return null;
  let out: Request;
  if (Array.isArray(status)) {
    if (status.length < 1 || status.length > MAX_BATCH || !status.every(plainWrite)) return null;
    out = { method: 'put', status: status.map((w) => ({ sensor: w.sensor, value: w.value })) };
  } else {
    if (!plainWrite(status)) return null;
    out = { method: 'put', status: { sensor: status.sensor, value: status.value } };
  }
  if (id !== undefined) out.id = id;
  return out;
}

/** What an error reply can still echo of a request it could not take: its id, and the sensor it was about. */
export interface RequestPeek {
  id: string | number | undefined;
  /** The request's sensor (a put's first reading's) when it is a usable name, else null. */
  sensor: string | null;
}

export function peekRequest(text: string): RequestPeek {
  let req: { id?: unknown; sensor?: unknown; status?: unknown };
  try {
    req = JSON.parse(text) as typeof req;
  } catch {
    return { id: undefined, sensor: null };
  }
  if (typeof req !== 'object' || req === null) return { id: undefined, sensor: null };
  const id = typeof req.id === 'string' || typeof req.id === 'number' ? req.id : undefined;
  return { id, sensor: usableSensor(req.sensor) ?? usableSensor(firstWrite(req.status)?.sensor) };
}

const firstWrite = (status: unknown): { sensor?: unknown } | undefined => {
  const w: unknown = Array.isArray(status) ? status[0] : status;
  return typeof w === 'object' && w !== null ? (w as { sensor?: unknown }) : undefined;
};

const usableSensor = (s: unknown): string | null => (typeof s === 'string' && sensorName.safeParse(s).success ? s : null);
