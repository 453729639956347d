/**
 * The limits that must hold for a whole cluster, not per node: a guesser who spreads log-in attempts over two
 * real server processes gets no more password checks than on one, and a burst of device and token creations
 * spread over both makes exactly the account's cap (the shared PostgreSQL counts, under a lock per account).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clusterSkip, twoNodeCluster } from './cluster-helpers.js';
import type { NodeProcess } from './services.js';

const skip = await clusterSkip();
const PASSWORD = 'correct horse battery';

async function api(node: NodeProcess, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${node.url}/api/v1${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('limits held across the nodes of a cluster', { skip }, () => {
  const cluster = twoNodeCluster({
    name: 'limits', deviceName: 'Lamp',
    env: { IOTC_LOGIN_FAILURES_PER_ACCOUNT: '6', IOTC_MAX_DEVICES_PER_USER: '4', IOTC_MAX_TOKENS_PER_USER: '3' },
  });

  test('wrong passwords spread over two nodes count against one allowance per account', async () => {
    const email = `guessed-${Date.now()}@example.com`;
    await cluster.accounts.signUp({ name: 'Guessed', email, password: PASSWORD });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await api(i % 2 ? cluster.b : cluster.a, 'POST', '/auth/login', { email, password: `guess ${i}` })).status);
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401, 429, 429], 'six checks in all, then refused on both nodes');
    const right = await api(cluster.b, 'POST', '/auth/login', { email: email.toUpperCase(), password: PASSWORD });
    assert.equal(right.status, 429, 'the right password waits too: the allowance is spent');
    assert.equal(right.json.error, 'E_RATE_LIMITED');
    assert.match(String(right.json.message), /log-in attempts for this account/);

    const other = `bystander-${Date.now()}@example.com`;
    await cluster.accounts.signUp({ name: 'Bystander', email: other, password: PASSWORD });
    assert.equal((await api(cluster.a, 'POST', '/auth/login', { email: other, password: PASSWORD })).status, 200, 'another account is not touched');
  });

  test('a burst of device creations over both nodes makes exactly the cap; the rest get E_LIMIT naming the setting', async () => {
    const email = `burst-${Date.now()}@example.com`;
    await cluster.accounts.signUp({ name: 'Burst', email, password: PASSWORD });
    const token = String((await api(cluster.a, 'POST', '/auth/login', { email, password: PASSWORD })).json.token);
    const all = await Promise.all(Array.from({ length: 20 }, (_, i) => api(i % 2 ? cluster.b : cluster.a, 'POST', '/devices', { name: `d${i}` }, token)));
    assert.equal(all.filter((r) => r.status === 201).length, 4);
    const refused = all.filter((r) => r.status !== 201);
    assert.equal(refused.length, 16);
    for (const r of refused) {
      assert.equal(r.status, 403);
      assert.equal(r.json.error, 'E_LIMIT');
      assert.match(String(r.json.message), /limit of 4 devices.*IOTC_MAX_DEVICES_PER_USER/);
    }
    const user = await cluster.store.getUserByEmail(email);
    assert.equal((await cluster.store.listDevices(user!.id)).length, 4);
  });

  test('API log-ins on both nodes at once make at most the cap of tokens', async () => {
    const email = `tokens-${Date.now()}@example.com`;
    await cluster.accounts.signUp({ name: 'Tokens', email, password: PASSWORD });
    // Six at once: the account's whole allowance of attempts in flight (each right password gives its attempt back).
    const all = await Promise.all(Array.from({ length: 6 }, (_, i) => api(i % 2 ? cluster.b : cluster.a, 'POST', '/auth/login', { email, password: PASSWORD })));
    assert.equal(all.filter((r) => r.status === 200).length, 3);
    for (const r of all.filter((x) => x.status !== 200)) assert.equal(r.json.error, 'E_LIMIT');
    const user = await cluster.store.getUserByEmail(email);
    assert.equal((await cluster.store.listApiTokens(user!.id)).length, 3);
  });
});
