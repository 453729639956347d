/** Issue 9: a device page's live socket lives only as long as the login that opened it. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { hashSecret } from '../src/core/secrets.js';
import { sessionSockets } from '../src/web/session-sockets.js';
import { makeDevice, startTestServer, within } from './helpers.js';
import type { TestServer } from './helpers.js';
import { pageCsrf, pageSocket as pageSocketOf, webLogIn } from './page-session.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

async function logIn(email: string): Promise<{ cookie: string; csrf: string }> {
  const { cookie } = await webLogIn(server, email);
  return { cookie, csrf: await pageCsrf(server, cookie) };
}

const pageSocket = (deviceId: string, cookie: string) => pageSocketOf(server, deviceId, cookie);

test('logging out closes the device page\'s open socket at once; another login\'s socket stays', async () => {
  const d = await makeDevice(server);
  const a = await logIn(d.email);
  const b = await logIn(d.email);
  const mine = await pageSocket(d.id, a.cookie);
  const other = await pageSocket(d.id, b.cookie);
  const res = await fetch(`${server.url}/logout`, {
    method: 'POST', redirect: 'manual',
    headers: { cookie: a.cookie, origin: server.url, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: a.csrf }).toString(),
  });
  assert.equal(res.status, 303);
  const closed = await within(mine.closed, 1000, 'the page socket to close');
  assert.equal(closed.code, 4401);
  assert.match(closed.reason, /logged out/);
  // The other browser's page still receives live values.
  const device = new WebSocket(`${server.wsUrl}/ws?device=${d.id}&key=${d.key}`);
  await new Promise((r) => device.once('open', r));
  device.send(JSON.stringify({ method: 'put', id: 'x1', status: { sensor: 'temp', value: 7 } }));
  await within((async () => {
    while (!other.frames.some((f) => f.sensor === 'temp' && f.value === 7)) await new Promise((r) => setTimeout(r, 20));
  })(), 3000, 'the other login to get the value');
  device.close();
  other.ws.close();
});

test('a session ended elsewhere (another node\'s log-out, expiry) closes its sockets at the next check', async () => {
  const d = await makeDevice(server);
  const a = await logIn(d.email);
  const expiring = await logIn(d.email);
  const gone = await pageSocket(d.id, a.cookie);
  const soon = await pageSocket(d.id, expiring.cookie);
  const live = sessionSockets(server.hub.store, server.hub.log);
  await server.hub.store.deleteSession(hashSecret(a.cookie.split('=')[1]));
  await live.check();
  assert.equal((await within(gone.closed, 1000, 'the socket of the deleted session to close')).code, 4401);
  assert.equal(soon.ws.readyState, WebSocket.OPEN, 'a live session keeps its socket');
  await live.check(Date.now() + 31 * 86_400_000);
  const closed = await within(soon.closed, 1000, 'the socket of the expired session to close');
  assert.match(closed.reason, /login ended/);
  assert.equal(live.sessions, 0, 'nothing left watched');
});
