/** In-process requests to the web app as a browser makes them (fastify inject): cookies, form tokens, sign-up. */
import assert from 'node:assert/strict';
import type { TestServer } from './helpers.js';

export const PASSWORD = 'correct horse battery';
export type Res = Awaited<ReturnType<TestServer['app']['inject']>>;

export interface WebUser {
  ip: string;
  cookie: string;
  csrf: string;
  email: string;
}

let counter = 0;
export const freshIp = () => `10.7.${Math.floor(++counter / 250)}.${counter % 250}`;
export const freshEmail = () => `page${++counter}-${Date.now()}@example.com`;

export function setCookies(res: Res): Record<string, string> {
  const raw = res.headers['set-cookie'];
  const list = Array.isArray(raw) ? raw : raw ? [raw] : [];
  return Object.fromEntries(list.map((c) => [c.split('=')[0], c]));
}

export const cookieValue = (setCookie: string) => setCookie.split(';')[0].split('=').slice(1).join('=');
export const csrfIn = (body: string) => /name="_csrf" value="([^"]+)"/.exec(body)?.[1] ?? '';

export function webClient(server: TestServer) {
  function post(url: string, form: Record<string, string>, opts: { ip: string; cookie?: string; headers?: Record<string, string> }) {
    return server.app.inject({
      method: 'POST',
      url,
      remoteAddress: opts.ip,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', ...(opts.cookie ? { cookie: opts.cookie } : {}), ...opts.headers },
      payload: new URLSearchParams(form).toString(),
    });
  }

  function get(url: string, u?: Pick<WebUser, 'ip' | 'cookie'>, headers: Record<string, string> = {}) {
    return server.app.inject({ method: 'GET', url, remoteAddress: u?.ip ?? freshIp(), headers: { accept: 'text/html', ...(u ? { cookie: u.cookie } : {}), ...headers } });
  }

  async function signUp(name = 'Page User'): Promise<WebUser> {
    const ip = freshIp();
    const form = await get('/signup', { ip, cookie: '' });
    const formCookie = `iotc_form=${cookieValue(setCookies(form).iotc_form)}`;
    const email = freshEmail();
    const res = await post('/signup', { _csrf: csrfIn(form.body), name, email, password: PASSWORD }, { ip, cookie: formCookie });
    assert.equal(res.statusCode, 303, res.body.slice(0, 300));
    const cookie = `iotc_session=${cookieValue(setCookies(res).iotc_session)}`;
    const page = await get('/devices', { ip, cookie });
    return { ip, cookie, csrf: csrfIn(page.body), email };
  }

  return { post, get, signUp };
}
