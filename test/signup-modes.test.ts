/** IOTC_SIGNUP=open|invite|closed on the web app and the API sign-up; `iotc user add` and `iotc invite` from the CLI. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runCli, startTestServer } from './helpers.js';
import type { TestServer } from './helpers.js';

const PASSWORD = 'correct horse battery';
let n = 0;
const email = () => `signup${++n}-${Date.now()}@example.com`;
const ip = () => `10.77.0.${++n % 250}`;

type Res = Awaited<ReturnType<TestServer['app']['inject']>>;
const cookieOf = (res: Res, name: string) => {
  const raw = res.headers['set-cookie'];
  const list = Array.isArray(raw) ? raw : raw ? [raw] : [];
  const c = list.find((x) => x.startsWith(`${name}=`));
  return c ? c.split(';')[0] : '';
};

/** Posts the web sign-up form as a browser would: form cookie and CSRF token from a logged-out page first. */
async function webSignUp(server: TestServer, fields: Record<string, string>, page = '/signup'): Promise<Res> {
  const addr = ip();
  const form = await server.app.inject({ method: 'GET', url: page, remoteAddress: addr });
  const token = /name="_csrf" value="([^"]+)"/.exec(form.body)?.[1] ?? '';
  return server.app.inject({
    method: 'POST',
    url: '/signup',
    remoteAddress: addr,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', cookie: cookieOf(form, 'iotc_form') },
    payload: new URLSearchParams({ _csrf: token, ...fields }).toString(),
  });
}

function apiSignUp(server: TestServer, body: Record<string, unknown>): Promise<Res> {
  return server.app.inject({ method: 'POST', url: '/api/v1/auth/signup', remoteAddress: ip(), payload: body });
}

describe('IOTC_SIGNUP=closed', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ signup: 'closed' });
  });
  after(() => server.stop());

  test('the API and the web form refuse with a message saying whom to ask; no account is made', async () => {
    const e = email();
    const api = await apiSignUp(server, { name: 'A', email: e, password: PASSWORD });
    assert.equal(api.statusCode, 403);
    assert.deepEqual(api.json(), { error: 'E_FORBIDDEN', message: 'Sign-up is closed on this hub: ask its administrator for an account' });
    const page = await server.app.inject({ method: 'GET', url: '/signup', headers: { accept: 'text/html' } });
    assert.equal(page.statusCode, 403);
    assert.match(page.body, /Sign-up is closed/);
    assert.doesNotMatch(page.body, /name="password"/);
    const web = await webSignUp(server, { name: 'A', email: e, password: PASSWORD }, '/login');
    assert.equal(web.statusCode, 403);
    assert.match(web.body, /Sign-up is closed/);
    assert.equal(await server.hub.store.getUserByEmail(e), null);
  });

  test('iotc user add still makes accounts, and they log in', async () => {
    const e = email();
    const env = { IOTC_DATA_DIR: server.dataDir, IOTC_SIGNUP: 'closed' };
    const r = await runCli(['user', 'add', '--email', e, '--name', 'Admin made', '--password', PASSWORD], { env });
    assert.equal(r.code, 0, r.stderr);
    const login = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: ip(), payload: { email: e, password: PASSWORD } });
    assert.equal(login.statusCode, 200, login.body);
  });
});

describe('IOTC_SIGNUP=invite', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ signup: 'invite' });
  });
  after(() => server.stop());

  const invite = async (forEmail?: string): Promise<string> => {
    const r = await runCli(['invite', 'add', '--json', ...(forEmail ? ['--email', forEmail] : [])], { env: { IOTC_DATA_DIR: server.dataDir, IOTC_SIGNUP: 'invite' } });
    assert.equal(r.code, 0, r.stderr);
    const { code } = JSON.parse(r.stdout);
    assert.match(code, /^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
    return code;
  };

  test('the API: no code or a wrong code is refused; a code makes one account, once', async () => {
    const none = await apiSignUp(server, { name: 'A', email: email(), password: PASSWORD });
    assert.equal(none.statusCode, 403);
    assert.match(none.json().message, /by invitation: give your invitation code/);
    const wrong = await apiSignUp(server, { name: 'A', email: email(), password: PASSWORD, invite: 'AAAA-BBBB-CCCC-DDDD' });
    assert.equal(wrong.statusCode, 403);
    assert.match(wrong.json().message, /invitation code is not valid/);

    const code = await invite();
    // A field error does not use the code up.
    const short = await apiSignUp(server, { name: 'A', email: email(), password: 'short', invite: code });
    assert.equal(short.statusCode, 400);
    // Typed in lower case without dashes: still the code.
    const ok = await apiSignUp(server, { name: 'A', email: email(), password: PASSWORD, invite: code.toLowerCase().replace(/-/g, '') });
    assert.equal(ok.statusCode, 201, ok.body);
    const twice = await apiSignUp(server, { name: 'B', email: email(), password: PASSWORD, invite: code });
    assert.equal(twice.statusCode, 403);
  });

  test('a code made for an email works for that email only; a sign-up that fails gives the code back', async () => {
    const e = email();
    const code = await invite(e);
    assert.equal((await apiSignUp(server, { name: 'X', email: email(), password: PASSWORD, invite: code })).statusCode, 403);
    // An email already taken: 409, and the code is still good for its owner.
    const taken = email();
    assert.equal((await apiSignUp(server, { name: 'T', email: taken, password: PASSWORD, invite: await invite() })).statusCode, 201);
    const open = await invite();
    assert.equal((await apiSignUp(server, { name: 'T', email: taken, password: PASSWORD, invite: open })).statusCode, 409);
    assert.equal((await apiSignUp(server, { name: 'U', email: email(), password: PASSWORD, invite: open })).statusCode, 201, 'the code came back after the 409');
    assert.equal((await apiSignUp(server, { name: 'E', email: e.toUpperCase(), password: PASSWORD, invite: code })).statusCode, 201);
  });

  test('the web form asks for the code and says what is wrong with it', async () => {
    const page = await server.app.inject({ method: 'GET', url: '/signup', headers: { accept: 'text/html' } });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /name="invite"/);
    const e = email();
    const bad = await webSignUp(server, { name: 'W', email: e, password: PASSWORD, invite: 'nope' });
    assert.equal(bad.statusCode, 403);
    assert.match(bad.body, /invitation code is not valid/);
    const good = await webSignUp(server, { name: 'W', email: e, password: PASSWORD, invite: await invite() });
    assert.equal(good.statusCode, 303, good.body);
    assert.equal(good.headers.location, '/devices?welcome=1');
  });

  test('iotc invite list shows who used which invitation, never the code', async () => {
    const r = await runCli(['invite', 'list', '--json'], { env: { IOTC_DATA_DIR: server.dataDir } });
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout) as { email: string | null; usedAt: number | null; usedEmail: string | null; codeHash?: string }[];
    assert.ok(list.length >= 5);
    assert.ok(list.some((i) => i.usedEmail !== null && i.usedAt !== null));
    assert.ok(list.every((i) => !('codeHash' in i)));
  });
});

test('IOTC_INVITE_TTL: a code and a device invitation older than it are refused; iotc invite says until when', async () => {
  const ttl = 3000;
  const server = await startTestServer({ signup: 'invite', inviteTtl: ttl });
  const { hub } = server;
  const env = { IOTC_DATA_DIR: server.dataDir, IOTC_SIGNUP: 'invite', IOTC_INVITE_TTL: `${ttl}ms` };
  const cli = async (args: string[], extra: Record<string, string> = {}) => {
    const r = await runCli(args, { env: { ...env, ...extra } });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  try {
    const { expiresAt } = JSON.parse(await cli(['invite', 'add', '--json'])) as { expiresAt: number };
    assert.ok(expiresAt > Date.now() && expiresAt <= Date.now() + ttl, `valid for the TTL: ${expiresAt - Date.now()} ms left`);
    assert.match(await cli(['invite', 'add']), /valid until \d{4}-\d\d-\d\dT/);
    assert.equal(JSON.parse(await cli(['invite', 'add', '--json'], { IOTC_INVITE_TTL: '0' })).expiresAt, null, 'TTL 0: no end');

    // An owner shares a device with an email that has no account yet, and a code is made; both wait past the TTL.
    const owner = await hub.accounts.signUp({ name: 'Owner', email: email(), password: PASSWORD });
    const device = await hub.accounts.createDevice(owner.id, 'greenhouse');
    const latecomer = email();
    assert.equal((await hub.sharing.share(owner.id, device.id, { email: latecomer, role: 'operator' })).state, 'invited');
    const { code: late } = await hub.invites.create(null);
    await new Promise((r) => setTimeout(r, ttl + 200));

    const [waiting] = (await hub.sharing.sharesOf(owner.id, device.id)).invitations;
    assert.deepEqual([waiting.email, waiting.expired], [latecomer, true], 'the owner sees the invitation has expired');
    const refused = await apiSignUp(server, { name: 'Late', email: email(), password: PASSWORD, invite: late });
    assert.equal(refused.statusCode, 403);
    assert.match(refused.json().message, /expired/);
    const list = JSON.parse(await cli(['invite', 'list', '--json'])) as { usedAt: number | null; expired: boolean }[];
    assert.ok(list.length >= 4 && list.every((i) => i.usedAt === null && i.expired), 'every unused code of the TTL is listed as expired');
    assert.match(await cli(['invite', 'list'], { IOTC_INVITE_TTL: '0' }), /unused/, 'with no TTL nothing has expired');

    // The latecomer signs up with a fresh code: the device invitation has expired, so nothing is shared.
    const { code: fresh } = await hub.invites.create(null);
    const signed = await apiSignUp(server, { name: 'L', email: latecomer, password: PASSWORD, invite: fresh });
    assert.equal(signed.statusCode, 201, signed.body);
    const user = await hub.store.getUserByEmail(latecomer);
    assert.ok(user);
    assert.equal(await hub.store.sharing.roleOf(device.id, user.id), null, 'an expired device invitation gives no access');
    assert.deepEqual(await hub.store.sharing.invitationsOf(device.id), [], 'and it is gone');
    const used = JSON.parse(await cli(['invite', 'list', '--json'])) as { usedEmail: string | null; expired: boolean }[];
    assert.equal(used.find((i) => i.usedEmail === latecomer)?.expired, false, 'a used code is not called expired');
  } finally {
    await server.stop();
  }
});

test('IOTC_SIGNUP=open (the default) needs no code; a bad mode is refused at start', async () => {
  const server = await startTestServer();
  try {
    assert.equal((await apiSignUp(server, { name: 'O', email: email(), password: PASSWORD })).statusCode, 201);
  } finally {
    await server.stop();
  }
  const r = await runCli(['config'], { env: { IOTC_SIGNUP: 'members' } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /IOTC_SIGNUP="members"/);
});
