/** A web login over real HTTP, as a browser makes it, and the device page's live socket opened with its cookie. */
import assert from 'node:assert/strict';
import { socketTo, within } from './helpers.js';
import type { TestServer } from './helpers.js';

export interface WebLogin {
  /** `iotc_session=…`, for a Cookie header. */
  cookie: string;
  /** The login form's own cookie and token: secrets too (the log redaction test looks for them). */
  formCookie: string;
  csrf: string;
}

const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)![1];

/** Logs in through the login form. */
export async function webLogIn(server: TestServer, email: string, password = 'correct horse battery'): Promise<WebLogin> {
  const page = await fetch(`${server.url}/login`);
  const formCookie = page.headers.get('set-cookie')!.split(';')[0];
  const csrf = csrfOf(await page.text());
  const res = await fetch(`${server.url}/login`, {
    method: 'POST', redirect: 'manual',
    headers: { cookie: formCookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf, email, password }).toString(),
  });
  assert.equal(res.status, 303);
  return { cookie: res.headers.get('set-cookie')!.split(';')[0], formCookie, csrf };
}

/** The form token of a page the login opens (what a form on it posts). */
export async function pageCsrf(server: TestServer, cookie: string, path = '/devices'): Promise<string> {
  return csrfOf(await (await fetch(`${server.url}${path}`, { headers: { cookie, accept: 'text/html' } })).text());
}

/**
 * The device page's live socket: the login cookie, no key, from the hub's own origin. `frames` keeps every frame;
 * `next` takes the first one not yet taken that matches.
 */
export async function pageSocket(server: TestServer, deviceId: string, cookie: string) {
  const { ws, opened, closed } = socketTo(`${server.wsUrl}/ws?device=${deviceId}&side=client`, { headers: { cookie, origin: server.url } });
  const frames: any[] = [];
  const inbox: any[] = [];
  const waiters: { pred: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  ws.on('message', (data) => {
    const m = JSON.parse(String(data));
    frames.push(m);
    const i = waiters.findIndex((w) => w.pred(m));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
    else inbox.push(m);
  });
  await opened;
  let id = 0;
  const next = (pred: (m: any) => boolean = () => true, ms = 5000): Promise<any> => {
    const i = inbox.findIndex(pred);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
    return within(new Promise((resolve) => waiters.push({ pred, resolve })), ms, 'a frame');
  };
  const request = (msg: Record<string, unknown>) => {
    const rid = `r${++id}`;
    ws.send(JSON.stringify({ ...msg, id: rid }));
    return next((m: any) => m.id === rid);
  };
  return { ws, frames, closed, next, request };
}
