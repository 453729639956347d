import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config.js';
import { IotcError } from '../../core/errors.js';
import type { Hub } from '../../core/hub.js';
import { readingsToCsv } from '../../core/csv.js';
import { bucketFor, MAX_BUCKETS } from '../../core/buckets.js';
import { signUpInput } from '../../core/accounts.js';
import { readingView } from '../../core/reading-wire.js';
import { historyPage, sensorsPage } from '../../core/replies.js';
import { checkIntegerLiterals } from '../../core/values.js';
import type { SensorWrite } from '../../core/relay.js';
import type { Logger } from '../../log.js';
import { otherSide } from '../../store/types.js';
import type { StoredReading, User } from '../../store/types.js';
import { blobRoutes } from './blobs.js';
import { CallerAuth } from './credentials.js';
import type { SessionUser } from './credentials.js';
import { callRoutes } from './call-routes.js';
import { shareRoutes } from './share-routes.js';
import { dashboardRoutes } from './dashboard-routes.js';
import { installErrorHandling } from './errors.js';
import { openApiDocument } from './openapi.js';
import { RateLimits } from './rate-limits.js';
import { ruleRoutes } from './rule-routes.js';
import {
  check, deviceIdParam, historyQuery, latestQuery, loginBody, nameBody, readingsBody, sensorParams, sensorsQuery,
  signUpBody, tokenBody, tokenIdParam, updateWrites,
} from './schemas.js';

export interface HttpApiOptions {
  hub: Hub;
  config: Config;
  log: Logger;
  /** The web app's login, for the routes its pages read with it (binary chunks); none without the web app. */
  sessionUser?: SessionUser;
}

/** A body sent as text/plain or a form (curl -d's default) is still read as the JSON it holds. */
function jsonBody(body: unknown): unknown {
  if (body === undefined || body === null || body === '') throw new IotcError('E_VALIDATION', 'A JSON body is required');
  if (typeof body !== 'string') return body;
  return parseJsonText(body);
}

/** JSON text as the API reads it: a big integer that would be rounded is refused, as on every door. */
function parseJsonText(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new IotcError('E_BAD_MESSAGE', 'The body is not valid JSON');
  }
  checkIntegerLiterals(text);
  return value;
}

const written = (stored: StoredReading[]) => ({ ok: true as const, count: stored.length, time: stored[0].time });
const userView = (u: User) => ({ id: u.id, email: u.email, name: u.name });

function wantsCsv(req: FastifyRequest, format: 'json' | 'csv' | undefined): boolean {
  if (format) return format === 'csv';
  const accept = String(req.headers.accept ?? '');
  return /\btext\/csv\b/i.test(accept) && !/\bapplication\/json\b/i.test(accept);
}

/**
 * The HTTP API under /api/v1: the device side (device id + key) and the account side (personal API
 * tokens). Every write goes through the relay, so it reaches WebSocket and MQTT connections alike.
 */
export async function httpApiRoutes(app: FastifyInstance, opts: HttpApiOptions): Promise<void> {
  const { hub, config, log } = opts;
  const { relay, accounts, tokens } = hub;
  const { invites } = hub;
  const auth = new CallerAuth(hub, new RateLimits(config.apiRateLimit, config.apiRateBurst), opts.sessionUser ?? null);
  installErrorHandling(app, log, config.maxFrameBytes);

  // Small devices send what curl -d sends (a form content type) or text/plain; both are read as JSON text.
  if (app.hasContentTypeParser('application/x-www-form-urlencoded')) app.removeContentTypeParser('application/x-www-form-urlencoded');
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  // JSON is read from its text, which fastify's parser does not keep: the integer check needs it.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if (body === '') return done(new IotcError('E_BAD_MESSAGE', 'The body is empty; send JSON'), undefined);
    try {
      done(null, parseJsonText(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  // Token-authenticated calls carry no cookie, so any origin may make them (browser apps of app developers).
  app.addHook('onRequest', async (req, reply) => {
    reply.header('access-control-allow-origin', '*');
    if (req.method === 'OPTIONS') {
      reply
        .header('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS')
        .header('access-control-allow-headers', 'Authorization, Content-Type, X-Device-Key, X-Device-Side, Accept')
        .header('access-control-max-age', '600')
        .code(204)
        .send();
    }
  });
  app.options('/*', async (_req, reply) => reply.code(204).send());

  // ---- device side ----

  app.get('/update', async (req) => {
    const caller = await auth.caller(req, undefined, 'write');
    const writes = updateWrites(req.query as Record<string, unknown>);
    return written(await relay.put(caller.device.id, caller.side, writes, { owner: caller.device.userId }));
  });

  app.post('/devices/:id/readings', async (req, reply) => {
    const { id } = check(deviceIdParam, req.params);
    const caller = await auth.caller(req, id, 'write');
    const body = check(readingsBody, jsonBody(req.body));
    const writes: SensorWrite[] = Array.isArray(body) ? body : [body];
    const stored = await relay.put(caller.device.id, caller.side, writes, { owner: caller.device.userId });
    return reply.code(201).send(written(stored));
  });

  app.get('/devices/:id/latest', async (req) => {
    const { id } = check(deviceIdParam, req.params);
    const caller = await auth.caller(req, id);
    const q = check(latestQuery, req.query);
    // What the other side wrote: a sleepy device polls its commands here, an app its device's readings.
    const from = otherSide(caller.side);
    const rows = q.sensor === undefined
      ? await relay.sensors(caller.device.id, from, { after: q.after, maxBytes: config.maxReplyBytes / 2 })
      : [await relay.gets(caller.device.id, q.sensor, from)].filter((r): r is StoredReading => r !== null);
    // Each value is sent twice (readings and values): half the bound each. Cut before `since` filters, so a cut is always seen.
    const page = sensorsPage(rows, q.after, config.maxReplyBytes / 2);
    const kept = q.since === undefined ? page.readings : page.readings.filter((r) => r.time > q.since!);
    const body = { readings: kept.map(readingView), values: Object.fromEntries(kept.map((r) => [r.sensor, r.value])) };
    return page.next ? { ...body, more: true, next: page.next } : body;
  });

  app.get('/devices/:id/sensors', async (req) => {
    const { id } = check(deviceIdParam, req.params);
    const caller = await auth.caller(req, id);
    const q = check(sensorsQuery, req.query);
    const page = sensorsPage(await relay.sensors(caller.device.id, q.write, { after: q.after, maxBytes: config.maxReplyBytes }), q.after, config.maxReplyBytes);
    return page.next ? { sensors: page.readings.map(readingView), more: true, next: page.next } : { sensors: page.readings.map(readingView) };
  });

  app.get('/devices/:id/sensors/:sensor/history', async (req, reply) => {
    const { id, sensor } = check(sensorParams, req.params);
    const caller = await auth.caller(req, id);
    const q = check(historyQuery, req.query);
    if (q.bucket !== undefined) {
      // Aggregated: one row per non-empty bucket, for charts over long ranges (default: the last day).
      const to = q.to ?? Date.now();
      const from = q.from ?? to - 86_400_000;
      const bucketMs = bucketFor(q.bucket, from, to);
      const buckets = await relay.store.historyBuckets(caller.device.id, sensor, { from, to, bucketMs, side: q.write, limit: MAX_BUCKETS });
      return { sensor, from, to, bucket: bucketMs, buckets };
    }
    const limit = q.limit ?? 100;
    const rows = await relay.history(caller.device.id, sensor, { limit, from: q.from, to: q.to, side: q.write, maxBytes: config.maxReplyBytes });
    const page = historyPage(rows, { limit, from: q.from }, config.maxReplyBytes);
    if (wantsCsv(req, q.format)) {
      const file = `${caller.device.id}-${sensor}`.replace(/[^A-Za-z0-9_.-]/g, '_');
      // CSV has no room for a marker: a cut answer says where to go on in headers.
      if (page.next) reply.header('access-control-expose-headers', 'X-More, X-Next').header('x-more', 'true').header('x-next', new URLSearchParams(Object.entries(page.next).map(([k, v]) => [k, String(v)])).toString());
      return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${file}.csv"`).send(readingsToCsv(page.readings));
    }
    const readings = page.readings.map(readingView);
    return page.next ? { sensor, readings, more: true, next: page.next } : { sensor, readings };
  });

  // ---- calls to devices (commands with confirmation) ----

  callRoutes(app, hub, auth, jsonBody);
  dashboardRoutes(app, hub, auth, jsonBody);

  // Binary chunks, in their own scope: raw bodies up to --max-blob.
  await app.register(blobRoutes, { hub, auth });

  // ---- sharing: shares, invitations, public links ----

  shareRoutes(app, hub, auth, jsonBody, config.maxReplyBytes);

  // ---- account side ----

  ruleRoutes(app, hub, auth, jsonBody);

  app.get('/devices', async (req) => {
    const user = await auth.user(req);
    return { devices: await accounts.listDevices(user.id) };
  });

  app.post('/devices', async (req, reply) => {
    const user = await auth.user(req);
    const { name } = check(nameBody, jsonBody(req.body));
    return reply.code(201).send(await accounts.createDevice(user.id, name));
  });

  app.get('/devices/:id', async (req) => {
    const { id } = check(deviceIdParam, req.params);
    const user = await auth.user(req);
    return accounts.getDevice(user.id, id);
  });

  app.patch('/devices/:id', async (req) => {
    const { id } = check(deviceIdParam, req.params);
    const user = await auth.user(req);
    const { name } = check(nameBody, jsonBody(req.body));
    await accounts.renameDevice(user.id, id, name);
    return accounts.getDevice(user.id, id);
  });

  app.delete('/devices/:id', async (req, reply) => {
    const { id } = check(deviceIdParam, req.params);
    const user = await auth.user(req);
    await accounts.deleteDevice(user.id, id);
    return reply.code(204).send();
  });

  app.post('/devices/:id/rotate', async (req) => {
    const { id } = check(deviceIdParam, req.params);
    const user = await auth.user(req);
    return accounts.rotateKey(user.id, id);
  });

  app.get('/tokens', async (req) => {
    const user = await auth.user(req);
    return { tokens: await tokens.list(user.id) };
  });

  app.post('/tokens', async (req, reply) => {
    const user = await auth.user(req);
    const { name } = check(tokenBody, jsonBody(req.body));
    return reply.code(201).send(await tokens.create(user.id, name));
  });

  app.delete('/tokens/:tokenId', async (req, reply) => {
    const { tokenId } = check(tokenIdParam, req.params);
    const user = await auth.user(req);
    await tokens.revoke(user.id, tokenId);
    return reply.code(204).send();
  });

  app.post('/auth/signup', async (req, reply) => {
    const body = check(signUpBody, jsonBody(req.body));
    // Checked before the limit, so a too-short password does not count as a failure for the email.
    const input = check(signUpInput, body);
    // IOTC_SIGNUP: closed refuses before anything is counted; invite needs a code from iotc invite add.
    if (config.signup === 'closed') await invites.signUp('closed', accounts, input, null);
    const user = await auth.signUp(req, input.email, async () => {
      try {
        return await invites.signUp(config.signup, accounts, input, body.invite);
      } catch (err) {
        if (err instanceof IotcError && err.code === 'E_CONFLICT') return null;
        throw err;
      }
    });
    if (!user) throw new IotcError('E_CONFLICT', 'An account with this email already exists: log in instead');
    const token = await tokens.create(user.id, body.tokenName ?? 'sign-up');
    return reply.code(201).send({ user: userView(user), token: token.token, tokenId: token.id });
  });

  app.post('/auth/login', async (req) => {
    const body = check(loginBody, jsonBody(req.body));
    const user = await auth.logIn(req, body.email, () => accounts.logIn(body.email, body.password));
    if (!user) throw new IotcError('E_AUTH', 'Wrong email or password');
    const token = await tokens.create(user.id, body.tokenName ?? `log-in ${new Date().toISOString().slice(0, 16).replace('T', ' ')}`);
    return { user: userView(user), token: token.token, tokenId: token.id };
  });
}

/** Mounts the API under /api/v1 and its OpenAPI document at /api/openapi.json. */
export function registerHttpApi(app: FastifyInstance, opts: HttpApiOptions): void {
  app.register(httpApiRoutes, { prefix: '/api/v1', ...opts });
  const doc = JSON.stringify(openApiDocument());
  app.get('/api/openapi.json', async (_req, reply: FastifyReply) =>
    reply.header('access-control-allow-origin', '*').type('application/json; charset=utf-8').send(doc),
  );
}
