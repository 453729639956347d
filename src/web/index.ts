import { sharingSection } from './pages/sharing.js';
import formbody from '@fastify/formbody';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config.js';
import { deviceName, signUpInput } from '../core/accounts.js';
import type { DeviceInfo } from '../core/accounts.js';
import { readingsToCsv } from '../core/csv.js';
import { IotcError } from '../core/errors.js';
import { blobNoticeValue } from '../core/blobs.js';
import { httpError } from '../doors/http/errors.js';
import type { Hub } from '../core/hub.js';
import { MAX_TIME, historyLimit, sensorName } from '../core/messages.js';
import { DEVICE_ID_PATTERN, secretMatches } from '../core/secrets.js';
import type { UpgradeAuthenticator } from '../doors/ws.js';
import type { StoredReading, User, WebSession } from '../store/types.js';
import { serverAddress, validHost } from './address.js';
import { rulePages } from './rules.js';
import { assetDirs, VENDOR_FILES } from './assets.js';
import type { Html } from './html.js';
import { emptyForm, landingPage, logInPage, signUpPage } from './pages/auth.js';
import type { FormState } from './pages/auth.js';
import { confirmPage, deviceListJson, devicePage, devicesPage, keyPage, messagePage, newDevicePage } from './pages/devices.js';
import type { DeviceWithLatest, RenameState } from './pages/devices.js';
import { docsPage } from './pages/docs.js';
import { registerAccountPages } from './account.js';
import { registerDashboardPages } from './dashboards.js';
import { registerPwa } from './pwa.js';
import type { MqttListener } from './examples.js';
import type { Viewer } from './pages/layout.js';
import { FORM_COOKIE, newToken, originAllowed, parseCookies, serializeCookie, SESSION_COOKIE, tokensEqual, WebSessions } from './session.js';
import { isSecureRequest } from './session.js';
import { sessionSockets } from './session-sockets.js';

export interface WebAppOptions {
  hub: Hub;
  config: Pick<Config, 'trustProxy' | 'sessionTtl' | 'maxFrameBytes'> & Partial<Pick<Config, 'signup'>>;
  /** The MQTT TCP port actually bound, or null when there is none; known only once the server listens. */
  mqttPort?: () => number | null;
}

/**
 * Lets the device page open its live connection without the device key (only its hash is stored):
 * `/ws?device=ID&side=client` with the owner's login cookie, from a page of this server.
 */
export function sessionUpgradeAuthenticator(hub: Hub, config: WebAppOptions['config']): UpgradeAuthenticator {
  const sessions = new WebSessions(hub.store, config.sessionTtl, hub.log);
  const live = sessionSockets(hub.store, hub.log);
  return async (req, deviceId) => {
    const session = await sessions.fromCookieHeader(req.headers.cookie);
    if (!session) return null;
    // A page on another site can make the browser send our cookie with a WebSocket: only our own pages may.
    if (!originAllowed(req, config.trustProxy)) throw new IotcError('E_AUTH', 'Cross-site WebSocket refused');
    try {
      // The owner, or an account the device is shared with (any role reads; the role decides the rest).
      const { device, role } = await hub.sharing.authorize(session.userId, deviceId, 'read');
      // Logging out closes the page's socket: it must not outlive the login that opened it.
      return { device, grant: { userId: session.userId, role }, watch: (close) => live.watch(session.idHash, close) };
    } catch (err) {
      if (err instanceof IotcError && err.code === 'E_NOT_FOUND') throw new IotcError('E_AUTH');
      throw err;
    }
  };
}

/** The account signed in by the request's login cookie, for the API routes the pages read with it. */
export function webSessionUser(hub: Hub, config: WebAppOptions['config']): (req: FastifyRequest) => Promise<number | null> {
  const sessions = new WebSessions(hub.store, config.sessionTtl, hub.log);
  return async (req) => (await sessions.fromCookieHeader(req.headers.cookie))?.userId ?? null;
}

/** Carries a new device key from the form's POST to the page that shows it, once. */
const NEW_KEY_COOKIE = 'iotc_newkey';
/** Carries a new public link's token to the device page that shows it, once. */
const NEW_LINK_COOKIE = 'iotc_newlink';

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

interface Signed {
  session: WebSession;
  user: User;
  viewer: Viewer;
}

type Body = Record<string, unknown> | undefined;

/** A form field as one string: repeated fields take the first, anything else is empty. */
function str(body: unknown, name: string): string {
  const v = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' ? s : typeof s === 'number' || typeof s === 'boolean' ? String(s) : '';
}

/** Field errors from a zod failure, first message per field. */
function fieldErrors(error: z.ZodError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const issue of error.issues) {
    const key = String(issue.path[0] ?? '_');
    out[key] ??= issue.message.charAt(0).toUpperCase() + issue.message.slice(1) + '.';
  }
  return out;
}

/**
 * Only a path on this site, in the characters a URL may hold as such (RFC 3986): never `//evil.example`,
 * `/\evil.example`, control characters (a NUL or CR/LF makes the Location header invalid) or non-ASCII.
 */
function safeNext(next: string): string | undefined {
  return next.length < 512 && /^\/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?#]*$/.test(next) ? next : undefined;
}

const csvQuery = z.object({
  sensor: sensorName.optional(),
  limit: historyLimit.optional(),
  from: z.string().optional(),
  to: z.string().optional(),
});

function parseTime(text: string | undefined, name: string): number | undefined {
  if (text === undefined || text === '') return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) throw new IotcError('E_VALIDATION', `${name}: "${text.slice(0, 40)}" is not a time: use ms since epoch or an ISO 8601 date`);
  if (ms < 0 || ms > MAX_TIME) throw new IotcError('E_VALIDATION', `${name}: ${text.slice(0, 40)} is out of range: a time must be between 0 and ${MAX_TIME} ms since epoch`);
  return ms;
}

function fileSlug(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'device';
}

/** The web app: pages, their assets, and the JSON the pages poll. Registered as an encapsulated plugin. */
/** The page for an address nothing answers, for browsers. */
export function notFoundPage(path: string): Html {
  return messagePage(null, 'Not found', `There is no page at ${path}.`);
}

export async function webApp(app: FastifyInstance, opts: WebAppOptions): Promise<void> {
  const { hub, config } = opts;
  const { accounts, relay, store } = hub;
  const log = hub.log.child({ component: 'web' });
  const signUpMode = config.signup ?? 'open';
  const { invites } = hub;
  const sessions = new WebSessions(store, config.sessionTtl, log);
  const live = sessionSockets(store, hub.log);
  sessions.startPruning();
  app.addHook('onClose', async () => {
    sessions.stopPruning();
    live.stop();
  });

  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) await app.register(formbody);

  const dirs = assetDirs();
  await app.register(fastifyStatic, {
    root: [dirs.own, dirs.vendor],
    prefix: `/assets/${dirs.version}/`,
    decorateReply: false,
    index: false,
    list: false,
    dotfiles: 'deny',
    // The version in the path changes with any file, so a browser may keep each URL for good.
    immutable: true,
    maxAge: '365d',
    allowedPath: (pathName, root) => root !== dirs.vendor || VENDOR_FILES.includes(pathName.replace(/^\//, '')),
  });

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'same-origin');
    const type = String(reply.getHeader('content-type') ?? '');
    if (type.startsWith('text/html')) {
      reply.header('Content-Security-Policy', CSP);
      reply.header('X-Frame-Options', 'DENY');
    }
    return payload;
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const e = httpError(err, config.maxFrameBytes);
    if (e.code === 'E_INTERNAL') log.error({ err, url: req.url }, 'web request failed');
    if (wantsJson(req)) return reply.code(e.status).send({ error: e.code, message: e.message });
    return sendPage(reply, messagePage(null, e.status === 404 ? 'Not found' : 'Something went wrong', e.status >= 500 ? 'The server could not do that. Please try again.' : e.message), e.status);
  });

  const secure = (req: FastifyRequest) => isSecureRequest(req.raw, config.trustProxy);
  const wantsJson = (req: FastifyRequest) => req.url.split('?')[0].endsWith('.json') || !String(req.headers.accept ?? '').includes('text/html');

  function sendPage(reply: FastifyReply, page: Html, status = 200) {
    return reply.code(status).header('Content-Type', 'text/html; charset=utf-8').header('Cache-Control', 'no-store').send(page.text);
  }

  const signedCache = new WeakMap<FastifyRequest, Promise<Signed | null>>();
  function signedIn(req: FastifyRequest): Promise<Signed | null> {
    let p = signedCache.get(req);
    if (!p) {
      p = (async () => {
        const session = await sessions.fromCookieHeader(req.headers.cookie);
        const user = session ? await store.getUser(session.userId) : null;
        if (!session || !user) return null;
        return { session, user, viewer: { name: user.name, email: user.email, csrf: session.csrfToken } };
      })();
      signedCache.set(req, p);
    }
    return p;
  }

  /** The signed-in user, or a redirect to the login page (a 401 for JSON). */
  async function needUser(req: FastifyRequest, reply: FastifyReply): Promise<Signed | null> {
    const signed = await signedIn(req);
    if (signed) return signed;
    if (wantsJson(req) && req.method === 'GET') {
      await reply.code(401).send({ error: 'E_AUTH', message: 'Log in first' });
    } else {
      await reply.redirect(req.method === 'GET' ? `/login?${new URLSearchParams({ next: req.url })}` : '/login', 303);
    }
    return null;
  }

  /** Every state-changing request: from a page of ours (Origin) carrying the session's CSRF token. */
  function csrfOk(req: FastifyRequest, expected: string): boolean {
    if (!originAllowed(req.raw, config.trustProxy)) return false;
    const sent = str(req.body, '_csrf') || String(req.headers['x-csrf-token'] ?? '');
    return tokensEqual(sent, expected);
  }

  async function guarded(req: FastifyRequest, reply: FastifyReply): Promise<Signed | null> {
    const signed = await needUser(req, reply);
    if (!signed) return null;
    if (!csrfOk(req, signed.session.csrfToken)) {
      log.info({ url: req.url, ip: req.ip }, 'refused: missing or wrong CSRF token or foreign origin');
      await sendPage(reply, messagePage(signed.viewer, 'This form has expired', 'It was opened before you logged in again, or it came from another site. Go back, reload the page and try again.'), 403);
      return null;
    }
    return signed;
  }

  /** The device if it is the user's; a 404 page otherwise, the same for another user's device and none at all. */
  async function ownDevice(signed: Signed, id: string, reply: FastifyReply, json = false): Promise<DeviceInfo | null> {
    try {
      if (!DEVICE_ID_PATTERN.test(id)) throw new IotcError('E_NOT_FOUND', 'No such device');
      return await accounts.getDevice(signed.user.id, id);
    } catch (err) {
      if (!(err instanceof IotcError && err.code === 'E_NOT_FOUND')) throw err;
      if (json) await reply.code(404).send({ error: 'E_NOT_FOUND', message: 'No such device' });
      else await sendPage(reply, messagePage(signed.viewer, 'Device not found', 'There is no such device in your account. It may have been deleted.'), 404);
      return null;
    }
  }

  /** Logged-out forms: a random token in a cookie and in the form must match (double submit). */
  function formToken(req: FastifyRequest, reply: FastifyReply): string {
    const existing = parseCookies(req.headers.cookie)[FORM_COOKIE];
    if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
    const token = newToken();
    reply.header('Set-Cookie', serializeCookie(FORM_COOKIE, token, { secure: secure(req), maxAgeSeconds: 86_400 }));
    return token;
  }

  function formCsrfOk(req: FastifyRequest): boolean {
    return originAllowed(req.raw, config.trustProxy) && tokensEqual(str(req.body, '_csrf'), parseCookies(req.headers.cookie)[FORM_COOKIE]);
  }

  async function startSession(req: FastifyRequest, reply: FastifyReply, user: User): Promise<void> {
    const old = await signedIn(req);
    if (old) {
      await sessions.destroy(old.session);
      live.end(old.session.idHash);
    }
    const { cookieValue } = await sessions.create(user.id);
    reply.header('Set-Cookie', serializeCookie(SESSION_COOKIE, cookieValue, { secure: secure(req), maxAgeSeconds: config.sessionTtl / 1000 }));
  }

  /** The form again, 429 with Retry-After and the limiter's words. */
  function limited(reply: FastifyReply, form: FormState, err: unknown, again: (status: number) => unknown) {
    if (!(err instanceof IotcError && err.code === 'E_RATE_LIMITED')) throw err;
    reply.header('Retry-After', String(err.retryAfterSeconds ?? 60));
    form.message = err.message;
    return again(429);
  }

  /** A logged-out form's first checks, its token then its network's attempts: the answer when one fails, else null. */
  function refusedForm(req: FastifyRequest, reply: FastifyReply, form: FormState, again: (status: number) => unknown, kind: 'sign-up' | 'log-in', expired: string) {
    if (!formCsrfOk(req)) {
      form.message = expired;
      return again(403);
    }
    try {
      hub.authLimits.fromAddress(kind, req.ip);
    } catch (err) {
      return limited(reply, form, err, again);
    }
    return null;
  }

  /** What the pages say about MQTT: the port really bound, never a default where the hub may not be. */
  function mqttListener(): MqttListener {
    const port = opts.mqttPort?.() ?? null;
    if (port !== null) return { port };
    const wanted = hub.config.mqttPort;
    if (wanted === 0) return { port: null, off: 'it is turned off (--mqtt-port 0)' };
    return { port: null, off: `port ${wanted} was already taken by another program when the hub started`, taken: wanted };
  }

  // ---- Accounts ----

  app.get('/', async (req, reply) => {
    if (await signedIn(req)) return reply.redirect('/devices', 303);
    return sendPage(reply, landingPage());
  });

  app.get('/signup', async (req, reply) => {
    if (await signedIn(req)) return reply.redirect('/devices', 303);
    return sendPage(reply, signUpPage(formToken(req, reply), emptyForm(), signUpMode), signUpMode === 'closed' ? 403 : 200);
  });

  app.post('/signup', async (req, reply) => {
    const body = req.body as Body;
    const form: FormState = { values: { name: str(body, 'name'), email: str(body, 'email'), invite: str(body, 'invite') }, errors: {} };
    const again = (status: number) => sendPage(reply, signUpPage(formToken(req, reply), form, signUpMode), status);
    if (signUpMode === 'closed') return again(403);
    const refused = refusedForm(req, reply, form, again, 'sign-up', 'This form expired. Please send it again.');
    if (refused !== null) return refused;
    const parsed = signUpInput.safeParse({ name: form.values.name, email: form.values.email, password: str(body, 'password') });
    if (!parsed.success) {
      form.errors = fieldErrors(parsed.error);
      return again(400);
    }
    let user: User | null;
    try {
      user = await hub.authLimits.forAccount('sign-up', parsed.data.email, async () => {
        try {
          return await invites.signUp(signUpMode, accounts, parsed.data, form.values.invite);
        } catch (err) {
          if (err instanceof IotcError && err.code === 'E_CONFLICT') return null;
          throw err;
        }
      });
    } catch (err) {
      if (err instanceof IotcError && err.code === 'E_FORBIDDEN') {
        form.errors.invite = err.message;
        return again(403);
      }
      return limited(reply, form, err, again);
    }
    if (!user) {
      form.errors.email = 'An account with this email already exists. Log in instead?';
      return again(409);
    }
    log.info({ userId: user.id }, 'user signed up');
    await startSession(req, reply, user);
    return reply.redirect('/devices?welcome=1', 303);
  });

  app.get('/login', async (req, reply) => {
    const q = req.query as Record<string, string>;
    if (await signedIn(req)) return reply.redirect(safeNext(q.next ?? '') ?? '/devices', 303);
    const notice = q.bye !== undefined ? 'You have logged out.' : q.next ? 'Please log in to continue.' : undefined;
    return sendPage(reply, logInPage(formToken(req, reply), emptyForm(), safeNext(q.next ?? ''), notice));
  });

  app.post('/login', async (req, reply) => {
    const body = req.body as Body;
    const next = safeNext(str(body, 'next'));
    const form: FormState = { values: { email: str(body, 'email') }, errors: {} };
    const again = (status: number) => sendPage(reply, logInPage(formToken(req, reply), form, next), status);
    const refused = refusedForm(req, reply, form, again, 'log-in', 'This form expired. Please log in again.');
    if (refused !== null) return refused;
    const email = form.values.email.trim().toLowerCase();
    const password = str(body, 'password');
    if (!email) form.errors.email = 'Enter your email.';
    if (!password) form.errors.password = 'Enter your password.';
    if (email.length > 254) form.errors.email = 'Email is too long.';
    if (password.length > 1024) form.errors.password = 'Password is too long.';
    if (Object.keys(form.errors).length) return again(400);
    let user: User | null;
    try {
      user = await hub.authLimits.forAccount('log-in', email, () => accounts.logIn(email, password));
    } catch (err) {
      return limited(reply, form, err, again);
    }
    if (!user) {
      log.info({ ip: req.ip }, 'log-in refused: wrong email or password');
      form.message = 'Wrong email or password.';
      return again(401);
    }
    await startSession(req, reply, user);
    return reply.redirect(next ?? '/devices', 303);
  });

  app.post('/logout', async (req, reply) => {
    const signed = await signedIn(req);
    if (!signed) return reply.redirect('/login', 303);
    if (!csrfOk(req, signed.session.csrfToken)) return sendPage(reply, messagePage(signed.viewer, 'This form has expired', 'Reload the page and log out again.'), 403);
    await sessions.destroy(signed.session);
    live.end(signed.session.idHash);
    reply.header('Set-Cookie', serializeCookie(SESSION_COOKIE, '', { secure: secure(req), maxAgeSeconds: 0 }));
    return reply.redirect('/login?bye', 303);
  });

  // ---- Devices ----

  async function withLatest(devices: DeviceInfo[]): Promise<DeviceWithLatest[]> {
    // Most recently updated first: what moved is what the list shows.
    const byRecency = (a: StoredReading, b: StoredReading) => b.time - a.time || a.sensor.localeCompare(b.sensor);
    return Promise.all(devices.map(async (d) => ({ ...d, latest: (await relay.sensors(d.id)).sort(byRecency) })));
  }

  app.get('/devices', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    const q = req.query as Record<string, string>;
    const devices = await withLatest(await accounts.listDevices(signed.user.id));
    const notice =
      q.welcome !== undefined ? `Welcome, ${signed.user.name}! Create a device to get its connection URL.` : q.deleted !== undefined ? 'The device was deleted.' : undefined;
    return sendPage(reply, devicesPage(signed.viewer, devices, notice));
  });

  app.get('/devices.json', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    reply.header('Cache-Control', 'no-store');
    return { devices: deviceListJson(await withLatest(await accounts.listDevices(signed.user.id))) };
  });

  app.get('/devices/new', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    return sendPage(reply, newDevicePage(signed.viewer, emptyForm()));
  });

  app.post('/devices/new', async (req, reply) => {
    const signed = await guarded(req, reply);
    if (!signed) return reply;
    const name = str(req.body, 'name');
    const parsed = deviceName.safeParse(name);
    if (!parsed.success) {
      return sendPage(reply, newDevicePage(signed.viewer, { values: { name }, errors: { name: fieldErrors(parsed.error)._ ?? 'Enter a name.' } }), 400);
    }
    const device = await accounts.createDevice(signed.user.id, parsed.data);
    log.info({ userId: signed.user.id, deviceId: device.id }, 'device created');
    return showKeyOnce(req, reply, device.id, device.key, 'created');
  });

  /**
   * Post/redirect/get for a new key: the key rides to the next page in a cookie only that page receives, for two
   * minutes, read once. A reload then cannot create or rotate again, and the key never appears in a URL (server
   * logs, browser history) or in the server's memory.
   */
  function showKeyOnce(req: FastifyRequest, reply: FastifyReply, deviceId: string, key: string, mode: 'created' | 'rotated') {
    const path = `/devices/${deviceId}/key`;
    reply.header('Set-Cookie', serializeCookie(NEW_KEY_COOKIE, key, { secure: secure(req), maxAgeSeconds: 120, path }));
    return reply.redirect(`${path}?${mode}`, 303);
  }

  app.get<{ Params: { id: string } }>('/devices/:id/key', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply);
    if (!device) return reply;
    const path = `/devices/${device.id}/key`;
    const sent = parseCookies(req.headers.cookie)[NEW_KEY_COOKIE];
    let key: string | null = null;
    if (sent !== undefined) {
      reply.header('Set-Cookie', serializeCookie(NEW_KEY_COOKIE, '', { secure: secure(req), maxAgeSeconds: 0, path }));
      // Only the device's current key: never one a later rotation (say, in another tab) has replaced.
      const stored = await accounts.owned(signed.user.id, device.id);
      if (/^[A-Z0-9]{15}$/.test(sent) && secretMatches(sent, stored.keyHash)) key = sent;
    }
    const mode = (req.query as Record<string, string>).rotated !== undefined ? 'rotated' : 'created';
    return sendPage(reply, keyPage(signed.viewer, device, key, serverAddress(req.raw, config.trustProxy), mode));
  });

  app.get<{ Params: { id: string } }>('/devices/:id', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply);
    if (!device) return reply;
    const q = req.query as Record<string, string>;
    const shareSection = device.shared ? undefined : sharingSection(signed.viewer, device.id, { ...(await hub.sharing.sharesOf(signed.user.id, device.id)), links: await hub.sharing.deviceLinks(signed.user.id, device.id) });
    const link = device.shared ? undefined : parseCookies(req.headers.cookie)[NEW_LINK_COOKIE];
    if (link) reply.header('Set-Cookie', serializeCookie(NEW_LINK_COOKIE, '', { secure: secure(req), maxAgeSeconds: 0, path: `/devices/${device.id}` }));
    const notice = q.renamed !== undefined ? 'Renamed.' : q.shared !== undefined ? 'Sharing updated.' : link ? `Public link (shown once): ${serverAddress(req.raw, config.trustProxy).httpBase}/api/v1/public/${link}` : undefined;
    return sendPage(reply, devicePage(signed.viewer, device, await relay.sensors(device.id), serverAddress(req.raw, config.trustProxy), notice, undefined, shareSection));
  });

  app.get<{ Params: { id: string } }>('/devices/:id/status.json', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply, true);
    if (!device) return reply;
    reply.header('Cache-Control', 'no-store');
    return { id: device.id, name: device.name, online: device.online, lastSeen: device.lastSeen, clients: device.clients };
  });

  // Binary chunks for the device page: the newest of each sensor (their bytes come from the API, which reads with the login cookie).
  app.get<{ Params: { id: string } }>('/devices/:id/blobs.json', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply, true);
    if (!device) return reply;
    reply.header('Cache-Control', 'no-store');
    return { blobs: (await store.latestBlobs(device.id)).map((b) => ({ sensor: b.sensor, value: blobNoticeValue(b), time: b.time, write: b.side })) };
  });

  app.get<{ Params: { id: string } }>('/devices/:id/history.csv', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply, true);
    if (!device) return reply;
    const raw = Object.fromEntries(Object.entries(req.query as Record<string, string>).filter(([, v]) => v !== ''));
    const parsed = csvQuery.safeParse(raw);
    if (!parsed.success) throw new IotcError('E_VALIDATION', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const limit = parsed.data.limit ?? 10_000;
    const query = { limit, from: parseTime(parsed.data.from, 'from'), to: parseTime(parsed.data.to, 'to') };
    const sensors = parsed.data.sensor ? [parsed.data.sensor] : (await relay.sensors(device.id)).map((r) => r.sensor);
    let readings: StoredReading[] = (await Promise.all(sensors.map((s) => relay.history(device.id, s, query)))).flat();
    readings.sort((a, b) => a.seq - b.seq);
    if (readings.length > limit) readings = readings.slice(readings.length - limit);
    const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
    const filename = `${fileSlug(device.name)}-${parsed.data.sensor ? fileSlug(parsed.data.sensor) : 'all'}-${stamp}.csv`;
    return reply
      .header('Content-Type', 'text/csv; charset=utf-8')
      .header('Content-Disposition', `attachment; filename="${filename}"`)
      .header('Cache-Control', 'no-store')
      .send(readingsToCsv(readings));
  });

  app.post<{ Params: { id: string } }>('/devices/:id/rename', async (req, reply) => {
    const signed = await guarded(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply);
    if (!device) return reply;
    const name = str(req.body, 'name');
    const parsed = deviceName.safeParse(name);
    if (!parsed.success) {
      const rename: RenameState = { value: name, error: fieldErrors(parsed.error)._ ?? 'Enter a name.' };
      return sendPage(reply, devicePage(signed.viewer, device, await relay.sensors(device.id), serverAddress(req.raw, config.trustProxy), undefined, rename), 400);
    }
    await accounts.renameDevice(signed.user.id, device.id, parsed.data);
    return reply.redirect(`/devices/${device.id}?renamed`, 303);
  });

  // ---- sharing (owner only; errors such as a bad email come back as a message page) ----
  const sharingPost = (path: string, act: (userId: number, id: string, body: unknown, reply: FastifyReply) => Promise<void>) =>
    app.post<{ Params: { id: string; linkId?: string } }>(path, async (req, reply) => {
      const signed = await guarded(req, reply);
      if (!signed) return reply;
      try {
        await act(signed.user.id, req.params.id, req.params.linkId ?? req.body, reply);
      } catch (err) {
        if (!(err instanceof IotcError) || err.code === 'E_INTERNAL') throw err;
        return sendPage(reply, messagePage(signed.viewer, 'Sharing not changed', err.message, { href: `/devices/${req.params.id}`, label: 'Back to the device' }), err.status);
      }
      return reply.redirect(`/devices/${req.params.id}?shared`, 303);
    });
  sharingPost('/devices/:id/shares', async (userId, id, body) => void (await hub.sharing.share(userId, id, { email: str(body, 'email'), role: str(body, 'role') })));
  sharingPost('/devices/:id/shares/remove', (userId, id, body) => hub.sharing.unshare(userId, id, { email: str(body, 'email') }));
  sharingPost('/devices/:id/links', async (userId, id, _body, reply) => {
    const link = await hub.sharing.createDeviceLink(userId, id);
    // Shown once on the next page, like a new key: a short-lived cookie for that page only.
    reply.header('Set-Cookie', serializeCookie(NEW_LINK_COOKIE, link.token, { secure: secure(reply.request), maxAgeSeconds: 120, path: `/devices/${id}` }));
  });
  sharingPost('/devices/:id/links/:linkId/revoke', (userId, id, linkId) => hub.sharing.revokeDeviceLink(userId, id, Number(linkId)));

  for (const action of ['rotate', 'delete'] as const) {
    app.get<{ Params: { id: string } }>(`/devices/:id/${action}`, async (req, reply) => {
      const signed = await needUser(req, reply);
      if (!signed) return reply;
      const device = await ownDevice(signed, req.params.id, reply);
      if (!device) return reply;
      return sendPage(reply, confirmPage(signed.viewer, device, action));
    });
  }

  app.post<{ Params: { id: string } }>('/devices/:id/rotate', async (req, reply) => {
    const signed = await guarded(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply);
    if (!device) return reply;
    const rotated = await accounts.rotateKey(signed.user.id, device.id);
    log.info({ userId: signed.user.id, deviceId: device.id }, 'device key rotated');
    return showKeyOnce(req, reply, device.id, rotated.key, 'rotated');
  });

  app.post<{ Params: { id: string } }>('/devices/:id/delete', async (req, reply) => {
    const signed = await guarded(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply);
    if (!device) return reply;
    const typed = str(req.body, 'confirm');
    if (typed.trim() !== device.name) return sendPage(reply, confirmPage(signed.viewer, device, 'delete', `Type “${device.name}” to confirm.`, typed), 400);
    await accounts.deleteDevice(signed.user.id, device.id);
    log.info({ userId: signed.user.id, deviceId: device.id }, 'device deleted');
    return reply.redirect('/devices?deleted', 303);
  });

  const kit = { hub, log, trustProxy: config.trustProxy, needUser, guarded, sendPage, secure, field: str, fieldErrors };
  registerAccountPages(app, kit);
  registerDashboardPages(app, kit);
  registerPwa(app);
  rulePages(app, hub, { needUser, guarded, ownDevice, sendPage });

  // ---- Documentation ----

  app.get('/docs', async (req, reply) => {
    const q = req.query as Record<string, string>;
    const signed = await signedIn(req);
    const hostOverride = typeof q.host === 'string' && validHost(q.host) ? q.host : undefined;
    const addr = serverAddress(req.raw, config.trustProxy, hostOverride);
    let devices: DeviceInfo[] = [];
    let selected: DeviceInfo | null = null;
    if (signed) {
      devices = await accounts.listDevices(signed.user.id);
      if (q.device) {
        selected = await ownDevice(signed, String(q.device), reply);
        if (!selected) return reply;
      } else {
        selected = devices.at(-1) ?? null;
      }
    }
    return sendPage(reply, docsPage(signed?.viewer ?? null, addr, devices, selected, hostOverride, mqttListener()));
  });
}
