/**
 * The accounts every IOTcommunicate round starts from: one user with enough devices for the largest
 * scenario, made once through the real account service into a SQLite file that each round copies.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Accounts } from '../src/core/accounts.js';
import { hashSecret } from '../src/core/secrets.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { Store } from '../src/store/types.js';
import type { Trigger } from '../src/automations/model.js';
import { BENCH_SECRET, FIRE_COOLDOWN_MS } from './webhook-receiver.js';

export interface DeviceCreds {
  id: string;
  key: string;
}

export interface Fixture {
  file: string;
  devices: DeviceCreds[];
}

export async function makeFixture(dir: string, count: number, progress: (done: number) => void): Promise<Fixture> {
  const file = path.join(dir, 'template.db');
  const store = new SqliteStore(file);
  try {
    const accounts = new Accounts(store, null);
    const user = await accounts.signUp({ name: 'Bench', email: 'bench@example.com', password: 'benchmark password' });
    const devices: DeviceCreds[] = [];
    for (let i = 0; i < count; i++) {
      const d = await accounts.createDevice(user.id, `bench ${i}`);
      devices.push({ id: d.id, key: d.key });
      if (i % 1000 === 999) progress(i + 1);
    }
    return { file, devices };
  } finally {
    // Closing checkpoints the WAL into the main file, so copying that one file carries everything.
    await store.close();
  }
}

/**
 * The same user and devices (same ids, same keys) in a database made by another build's own store code,
 * so a baseline build runs on a schema it knows.
 */
export async function copyFixture(fixture: Fixture, distDir: string, file: string): Promise<Fixture> {
  const { SqliteStore: OtherStore } = (await import(pathToFileURL(path.join(distDir, 'store/sqlite.js')).href)) as { SqliteStore: new (file: string) => Store };
  const store = new OtherStore(file);
  try {
    const user = await store.createUser({ email: 'bench@example.com', name: 'Bench', passwordHash: 'none' });
    for (const [i, d] of fixture.devices.entries()) await store.createDevice({ id: d.id, userId: user.id, name: `bench ${i}`, keyHash: hashSecret(d.key) });
  } finally {
    await store.close();
  }
  return { file, devices: fixture.devices };
}

/** Every reading stored per device (any sensor), read back through the store after the server stopped. */
export async function storedSequenceNumbers(dbFile: string, deviceIds: string[], sensor: string): Promise<Map<string, number[]>> {
  const store = new SqliteStore(dbFile);
  try {
    const out = new Map<string, number[]>();
    for (const id of deviceIds) {
      const rows = await store.history(id, sensor, { limit: 1e9 });
      out.set(id, rows.map((r) => (r.value as { n: number }).n));
    }
    return out;
  } finally {
    await store.close();
  }
}

/**
 * The fixture again with `perDevice` automation rules on every device (`--rules N`): thresholds on the sensor the
 * load writes that never hold, so each reading is evaluated against every rule and nothing is sent. What rules
 * cost the relay in their steady state.
 *
 * With `fireTo` (`--fire`), each device also gets two rules that act, both with a webhook to that URL: one that
 * holds from the first reading on (raised once, then held with its alert open) and one that fires on every
 * change of the value, at most once per `FIRE_COOLDOWN_MS` (the load changes it with every reading).
 */
export async function fixtureWithRules(fixture: Fixture, perDevice: number, file: string, fireTo?: string): Promise<Fixture> {
  const fs = await import('node:fs');
  fs.copyFileSync(fixture.file, file);
  const store = new SqliteStore(file);
  try {
    const user = await store.getUserByEmail('bench@example.com');
    const now = Date.now();
    let n = 0;
    const add = (deviceId: string, name: string, trigger: Trigger, url: string, cooldownMs = 0) =>
      store.automations.createRule({
        id: `r_bench${(n++).toString(32)}`, deviceId, userId: user!.id, name, enabled: true, trigger,
        actions: [{ type: 'webhook', url, method: 'POST', preset: 'plain' }],
        cooldownMs, secret: BENCH_SECRET, createdAt: now, updatedAt: now, lastRunAt: null, lastError: null,
      });
    for (const d of fixture.devices) {
      for (let i = 0; i < perDevice; i++) {
        await add(d.id, `bench ${i}`, { type: 'threshold', sensor: 'temp', op: '>', value: 1e15 + i, forMs: 0 }, 'https://example.com/never');
      }
      if (fireTo) {
        // The reading's value is an object: as text it is never "off", so this holds for every reading.
        await add(d.id, 'bench holds', { type: 'threshold', sensor: 'temp', op: '!=', value: 'off', forMs: 0 }, fireTo);
        await add(d.id, 'bench changes', { type: 'changed', sensor: 'temp' }, fireTo, FIRE_COOLDOWN_MS);
      }
    }
  } finally {
    await store.close();
  }
  return { file, devices: fixture.devices };
}
