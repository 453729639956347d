import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { signUpInput } from '../core/accounts.js';
import { IotcError } from '../core/errors.js';
import type { User } from '../store/types.js';
import { emptyForm, landingPage, logInPage, signUpPage } from './pages/auth.js';
import type { FormState } from './pages/auth.js';
import { messagePage } from './pages/devices.js';
import { fieldErrors, str } from './page-kit.js';
import type { WebKit } from './page-kit.js';
import { FORM_COOKIE, newToken, originAllowed, parseCookies, serializeCookie, SESSION_COOKIE, tokensEqual } from './session.js';
import type { WebSessions } from './session.js';
import type { SessionSockets } from './session-sockets.js';

type Body = Record<string, unknown> | undefined;

/** What signing in and out needs besides the kit: the logins, their live sockets, and who may sign up. */
export interface AuthOptions {
  sessions: WebSessions;
  live: SessionSockets;
  sessionTtl: number;
  signUpMode: NonNullable<Config['signup']>;
}

/**
 * Only a path on this site, in the characters a URL may hold as such (RFC 3986): never `//evil.example`,
 * `/\evil.example`, control characters (a NUL or CR/LF makes the Location header invalid) or non-ASCII.
 */
function safeNext(next: string): string | undefined {
  return next.length < 512 && /^\/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?#]*$/.test(next) ? next : undefined;
}

/** The landing page, sign-up, log-in and log-out: the forms a logged-out visitor sends carry a double-submit token. */
export function registerAuthPages(app: FastifyInstance, kit: WebKit, opts: AuthOptions): void {
  const { hub, log, trustProxy, signedIn, csrfOk, sendPage, secure } = kit;
  const { accounts, invites } = hub;
  const { sessions, live, sessionTtl, signUpMode } = opts;

  /** Logged-out forms: a random token in a cookie and in the form must match (double submit). */
  function formToken(req: FastifyRequest, reply: FastifyReply): string {
    const existing = parseCookies(req.headers.cookie)[FORM_COOKIE];
    if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
    const token = newToken();
    reply.header('Set-Cookie', serializeCookie(FORM_COOKIE, token, { secure: secure(req), maxAgeSeconds: 86_400 }));
    return token;
  }

  function formCsrfOk(req: FastifyRequest): boolean {
    return originAllowed(req.raw, trustProxy) && tokensEqual(str(req.body, '_csrf'), parseCookies(req.headers.cookie)[FORM_COOKIE]);
  }

  async function startSession(req: FastifyRequest, reply: FastifyReply, user: User): Promise<void> {
    const old = await signedIn(req);
    if (old) {
      await sessions.destroy(old.session);
      live.end(old.session.idHash);
    }
    const { cookieValue } = await sessions.create(user.id);
    reply.header('Set-Cookie', serializeCookie(SESSION_COOKIE, cookieValue, { secure: secure(req), maxAgeSeconds: sessionTtl / 1000 }));
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
}
