import formbody from '@fastify/formbody';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { DeviceInfo } from '../core/accounts.js';
import { IotcError } from '../core/errors.js';
import { httpError } from '../doors/http/errors.js';
import type { Hub } from '../core/hub.js';
import type { UpgradeAuthenticator } from '../doors/ws.js';
import { serverAddress, validHost } from './address.js';
import { rulePages } from './rules.js';
import { assetDirs, VENDOR_FILES } from './assets.js';
import type { Html } from './html.js';
import { messagePage } from './pages/devices.js';
import { docsPage } from './pages/docs.js';
import { registerAccountPages } from './account.js';
import { registerAuthPages } from './auth.js';
import { registerDashboardPages } from './dashboards.js';
import { registerDevicePages } from './devices.js';
import { registerPwa } from './pwa.js';
import type { MqttListener } from './examples.js';
import { pageKit } from './page-kit.js';
import { originAllowed, WebSessions } from './session.js';
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

/** The page for an address nothing answers, for browsers. */
export function notFoundPage(path: string): Html {
  return messagePage(null, 'Not found', `There is no page at ${path}.`);
}

/** The web app: pages, their assets, and the JSON the pages poll. Registered as an encapsulated plugin. */
export async function webApp(app: FastifyInstance, opts: WebAppOptions): Promise<void> {
  const { hub, config } = opts;
  const { accounts, store } = hub;
  const log = hub.log.child({ component: 'web' });
  const signUpMode = config.signup ?? 'open';
  const sessions = new WebSessions(store, config.sessionTtl, log);
  const live = sessionSockets(store, hub.log);
  sessions.startPruning();
  app.addHook('onClose', async () => {
    sessions.stopPruning();
    live.stop();
  });

  const kit = pageKit(hub, sessions, config.trustProxy, log);
  const { signedIn, ownDevice, sendPage, wantsJson } = kit;

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

  /** What the pages say about MQTT: the port really bound, never a default where the hub may not be. */
  function mqttListener(): MqttListener {
    const port = opts.mqttPort?.() ?? null;
    if (port !== null) return { port };
    const wanted = hub.config.mqttPort;
    if (wanted === 0) return { port: null, off: 'it is turned off (--mqtt-port 0)' };
    return { port: null, off: `port ${wanted} was already taken by another program when the hub started`, taken: wanted };
  }

  registerAuthPages(app, kit, { sessions, live, sessionTtl: config.sessionTtl, signUpMode });
  registerDevicePages(app, kit);
  registerAccountPages(app, kit);
  registerDashboardPages(app, kit);
  registerPwa(app);
  rulePages(app, hub, kit);

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
