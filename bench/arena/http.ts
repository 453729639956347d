/**
 * Plain HTTP for the harness: one fresh connection per request (as a new visitor would open, so a hub that
 * cannot accept connections any more is seen), an optional local address (the attacker speaks from
 * 127.0.0.2, the victim from 127.0.0.1, so limits per address tell them apart) and a hard timeout.
 */
import http from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Milliseconds from sending to the whole answer read. */
  ms: number;
  text(): string;
  json(): any;
}

export interface HttpRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  timeoutMs?: number;
  localAddress?: string;
}

export function request(url: string, opts: HttpRequest = {}): Promise<HttpAnswer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: opts.method ?? 'GET',
      headers: { ...(opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}), ...opts.headers },
      agent: false,
      localAddress: opts.localAddress,
      timeout: opts.timeoutMs ?? 10_000,
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          ms: performance.now() - started,
          text: () => body.toString('utf8'),
          json: () => JSON.parse(body.toString('utf8')),
        });
      });
    });
    req.end(opts.body);
  });
}

export const jsonHeaders = (token?: string): Record<string, string> => ({
  'content-type': 'application/json',
  ...(token ? { authorization: `Bearer ${token}` } : {}),
});

export interface Account {
  email: string;
  password: string;
  token: string;
  device: { id: string; key: string };
}

let accountCounter = 0;
/** Signs up through the HTTP API (as anyone may) and registers one device. */
export async function signUp(baseUrl: string, label: string, localAddress?: string): Promise<Account> {
  const email = `${label}-${process.pid}-${++accountCounter}-${Date.now()}@example.com`;
  const password = `${label} password that is long`;
  const res = await request(`${baseUrl}/api/v1/auth/signup`, {
    method: 'POST',
    headers: jsonHeaders(),
    body: JSON.stringify({ name: label, email, password }),
    localAddress,
  });
  if (res.status !== 201) throw new Error(`sign-up of ${label} failed: ${res.status} ${res.text()}`);
  const token = res.json().token as string;
  const device = await createDevice(baseUrl, token, `${label} device`, localAddress);
  return { email, password, token, device };
}

export async function createDevice(baseUrl: string, token: string, name: string, localAddress?: string): Promise<{ id: string; key: string }> {
  const res = await request(`${baseUrl}/api/v1/devices`, { method: 'POST', headers: jsonHeaders(token), body: JSON.stringify({ name }), localAddress });
  if (res.status !== 201) throw new Error(`creating a device failed: ${res.status} ${res.text()}`);
  const d = res.json();
  return { id: d.id, key: d.key };
}

/** Logs in to the web app (form cookie + CSRF token, as a browser does) and returns the session cookie. */
export async function webSession(baseUrl: string, email: string, password: string, localAddress?: string): Promise<string> {
  const page = await request(`${baseUrl}/login`, { headers: { accept: 'text/html' }, localAddress });
  const formCookie = String(page.headers['set-cookie']?.find((c) => c.startsWith('iotc_form=')) ?? '').split(';')[0];
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text())?.[1] ?? '';
  const res = await request(`${baseUrl}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', cookie: formCookie },
    body: new URLSearchParams({ _csrf: csrf, email, password }).toString(),
    localAddress,
  });
  const session = res.headers['set-cookie']?.find((c) => c.startsWith('iotc_session='));
  if (!session) throw new Error(`web log-in failed: ${res.status}`);
  return session.split(';')[0];
}
