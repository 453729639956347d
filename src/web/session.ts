import crypto from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { hashSecret } from '../core/secrets.js';
import type { Logger } from '../log.js';
import type { Store, WebSession } from '../store/types.js';

export const SESSION_COOKIE = 'iotc_session';
/** Logged-out visitors' CSRF token (double submit), so sign-up and log-in forms cannot be forged either. */
export const FORM_COOKIE = 'iotc_form';

/** 256 random bits, URL-safe: a session cookie, a CSRF token. */
export function newToken(): string {
  return crypto.randomBytes(32).toString('base64url');
}

export function tokensEqual(a: string | undefined | null, b: string | undefined | null): boolean {
  if (!a || !b) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (!name || name in out) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      out[name] = decodeURIComponent(value);
    } catch {
      out[name] = value;
    }
  }
  return out;
}

export interface CookieOptions {
  maxAgeSeconds?: number;
  secure: boolean;
  /** Narrower than the whole site, for a cookie only one page may read. */
  path?: string;
}

/** HttpOnly and SameSite=Lax always; Secure when the browser reached us over TLS. */
export function serializeCookie(name: string, value: string, opts: CookieOptions): string {
  const parts = [`${name}=${encodeURIComponent(value)}`, `Path=${opts.path ?? '/'}`, 'HttpOnly', 'SameSite=Lax'];
  if (opts.maxAgeSeconds !== undefined) parts.push(`Max-Age=${Math.max(0, Math.floor(opts.maxAgeSeconds))}`);
  if (opts.secure) parts.push('Secure');
  return parts.join('; ');
}

function firstHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s?.split(',')[0].trim() || undefined;
}

/** Whether the browser's connection is TLS: our own socket, or (only when configured) the proxy's word for it. */
export function isSecureRequest(req: IncomingMessage, trustProxy: boolean): boolean {
  if ((req.socket as TLSSocket).encrypted) return true;
  return trustProxy && firstHeader(req.headers, 'x-forwarded-proto')?.toLowerCase() === 'https';
}

/** host[:port] the browser addressed. */
export function requestHost(req: IncomingMessage, trustProxy: boolean): string {
  return (trustProxy && firstHeader(req.headers, 'x-forwarded-host')) || req.headers.host || 'localhost';
}

/**
 * A request a browser sends from another site carries that site's Origin: refuse it. Requests without
 * Origin (old browsers' same-origin form posts, scripts) rely on the CSRF token alone.
 */
export function originAllowed(req: IncomingMessage, trustProxy: boolean): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    const from = new URL(origin);
    // Parsed with the origin's scheme, so an explicit default port (Host: example.com:80) compares equal.
    return from.host === new URL(`${from.protocol}//${requestHost(req, trustProxy)}`).host;
  } catch {
    return false; // "null" (sandboxed frames, privacy redirects) and garbage
  }
}

/** Web app logins, kept in the store by the sha256 of the cookie value. */
export class WebSessions {
  private pruner: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: Store,
    readonly ttlMs: number,
    private readonly log: Logger,
  ) {}

  async create(userId: number, now = Date.now()): Promise<{ cookieValue: string; session: WebSession }> {
    const cookieValue = newToken();
    const session: WebSession = { idHash: hashSecret(cookieValue), userId, csrfToken: newToken(), createdAt: now, expiresAt: now + this.ttlMs };
    await this.store.createSession(session);
    return { cookieValue, session };
  }

  async fromCookieHeader(header: string | undefined, now = Date.now()): Promise<WebSession | null> {
    const value = parseCookies(header)[SESSION_COOKIE];
    if (!value || value.length > 200) return null;
    return this.store.getSession(hashSecret(value), now);
  }

  async destroy(session: WebSession): Promise<void> {
    await this.store.deleteSession(session.idHash);
  }

  startPruning(everyMs = 3_600_000): void {
    this.pruner = setInterval(() => {
      this.store.pruneSessions(Date.now()).catch((err) => this.log.warn({ err }, 'could not prune expired web sessions'));
    }, everyMs);
    this.pruner.unref();
  }

  stopPruning(): void {
    if (this.pruner) clearInterval(this.pruner);
    this.pruner = null;
  }
}
