/** Issue 9: /login?next=… only ever leads to a page of this site, and never answers 500. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestServer } from './helpers.js';
import type { TestServer } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

/** As they appear in the query string or form body (percent-encoded), so /%00 arrives as a NUL. */
const HOSTILE = ['/%00', '/%0d%0aSet-Cookie:%20x=1', '/%E2%80%A8', '/%C3%A9', '//evil.example', '/%5Cevil.example', '%2F%2Fevil.example', '/%09/evil.example',
  'https://evil.example/', 'javascript:alert(1)', '/a%20b', `/${'x'.repeat(600)}`];

async function logInWith(next: string) {
  const page = await server.app.inject({ method: 'GET', url: `/login?next=${next}`, headers: { accept: 'text/html' } });
  assert.ok(page.statusCode < 500, `GET /login next=${JSON.stringify(next)}: ${page.statusCode}`);
  const cookie = String(page.headers['set-cookie']).split(';')[0];
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)![1];
  return server.app.inject({
    method: 'POST', url: '/login',
    headers: { cookie, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
    payload: `${new URLSearchParams({ _csrf: csrf, email: 'next@example.com', password: 'correct horse battery' })}&next=${next}`,
  });
}

test('a hostile next is never a 500 and never leaves the site; a plain local path is kept', async () => {
  await server.hub.accounts.signUp({ name: 'Next', email: 'next@example.com', password: 'correct horse battery' });
  for (const next of HOSTILE) {
    const res = await logInWith(next);
    assert.equal(res.statusCode, 303, `POST next=${JSON.stringify(next)}: ${res.statusCode}`);
    assert.equal(res.headers.location, '/devices', JSON.stringify(next));
  }
  const ok = await logInWith(encodeURIComponent('/devices/ABC?x=1&y=%20z#top'));
  assert.equal(ok.headers.location, '/devices/ABC?x=1&y=%20z#top');

  // Already logged in: GET /login?next= redirects at once.
  const cookie = String((await logInWith('/docs')).headers['set-cookie']).split(';')[0];
  for (const next of HOSTILE) {
    const res = await server.app.inject({ method: 'GET', url: `/login?next=${next}`, headers: { cookie, accept: 'text/html' } });
    assert.equal(res.statusCode, 303, `GET next=${JSON.stringify(next)} signed in: ${res.statusCode}`);
    assert.equal(res.headers.location, '/devices');
  }
});
