import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { DeviceInfo } from '../core/accounts.js';
import { IotcError } from '../core/errors.js';
import type { Hub } from '../core/hub.js';
import { DEVICE_ID_PATTERN } from '../core/secrets.js';
import type { Logger } from '../log.js';
import type { User, WebSession } from '../store/types.js';
import type { Html } from './html.js';
import { messagePage } from './pages/devices.js';
import type { Viewer } from './pages/layout.js';
import { isSecureRequest, originAllowed, tokensEqual } from './session.js';
import type { WebSessions } from './session.js';

/** The signed-in request: its login, its account, and what the page layout shows of them. */
export interface Signed {
  session: WebSession;
  user: User;
  viewer: Viewer;
}

/** What the route modules borrow from the web app: its session checks, page sending and form reading. */
export interface PageKit {
  hub: Hub;
  log: Logger;
  trustProxy: boolean;
  needUser(req: FastifyRequest, reply: FastifyReply): Promise<Signed | null>;
  guarded(req: FastifyRequest, reply: FastifyReply): Promise<Signed | null>;
  sendPage(reply: FastifyReply, page: Html, status?: number): unknown;
  secure(req: FastifyRequest): boolean;
  field(body: unknown, name: string): string;
  fieldErrors(error: z.ZodError): Record<string, string>;
}

/** The whole kit, for the web app's own routes: also the login without redirects, the CSRF check and device ownership. */
export interface WebKit extends PageKit {
  signedIn(req: FastifyRequest): Promise<Signed | null>;
  csrfOk(req: FastifyRequest, expected: string): boolean;
  ownDevice(signed: Signed, id: string, reply: FastifyReply, json?: boolean): Promise<DeviceInfo | null>;
  wantsJson(req: FastifyRequest): boolean;
}

/** A form field as one string: repeated fields take the first, anything else is empty. */
export function str(body: unknown, name: string): string {
  const v = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' ? s : typeof s === 'number' || typeof s === 'boolean' ? String(s) : '';
}

/** Field errors from a zod failure, first message per field. */
export function fieldErrors(error: z.ZodError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const issue of error.issues) {
    const key = String(issue.path[0] ?? '_');
    out[key] ??= issue.message.charAt(0).toUpperCase() + issue.message.slice(1) + '.';
  }
  return out;
}

/** The kit of one web app: its logins read once per request. */
export function pageKit(hub: Hub, sessions: WebSessions, trustProxy: boolean, log: Logger): WebKit {
  const { accounts, store } = hub;

  const secure = (req: FastifyRequest) => isSecureRequest(req.raw, trustProxy);
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
    if (!originAllowed(req.raw, trustProxy)) return false;
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

  return { hub, log, trustProxy, needUser, guarded, sendPage, secure, field: str, fieldErrors, signedIn, csrfOk, ownDevice, wantsJson };
}
