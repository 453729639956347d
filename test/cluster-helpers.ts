/** A cluster for tests: real server processes on a database of the file's own and the machine's NATS. */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Accounts } from '../src/core/accounts.js';
import { PostgresStore } from '../src/store/postgres.js';
import { serviceAvailable, TestClient } from './helpers.js';
import { createTestDatabase } from './pg-helpers.js';
import type { TestDatabase } from './pg-helpers.js';
import { NodeProcess } from './services.js';

export const NATS_URL = 'nats://127.0.0.1:4222';

/** A cluster test's `skip`: false, or which service is missing (a notice is printed; IOTC_REQUIRE_SERVICES=1 throws). */
export async function clusterSkip(): Promise<false | string> {
  return (await serviceAvailable('PostgreSQL', 5432)) && (await serviceAvailable('NATS', 4222)) ? false : 'PostgreSQL or NATS not reachable';
}

export interface Cluster {
  readonly db: TestDatabase;
  /** The cluster's store, opened by the test itself (to make accounts and check what the nodes wrote). */
  readonly store: PostgresStore;
  readonly accounts: Accounts;
  readonly a: NodeProcess;
  readonly b: NodeProcess;
  /** Every node started. */
  readonly nodes: NodeProcess[];
  /** Starts one more node, stopped with the others at the end. */
  startNode(name: string): Promise<NodeProcess>;
  /** A new user with one device. */
  newDevice(): Promise<{ userId: number; id: string; key: string }>;
  /**
   * Connects to a node as one side of a device and waits for a ping's answer: requests are answered once the
   * connection is attached (and its sync sent), so after it a reading written elsewhere arrives live, never also
   * as a sync.
   */
  open(node: NodeProcess, d: { id: string; key: string }, side: 'device' | 'client'): Promise<TestClient>;
}

/**
 * Registers, in the calling describe, the hooks that start two nodes (`<name>-a`, `<name>-b`) on a fresh database
 * with `env` before its tests, and after them close the clients, stop the nodes and drop the database.
 */
export function twoNodeCluster(opts: { name: string; deviceName: string; env?: Record<string, string> }): Cluster {
  let db: TestDatabase | undefined;
  let store: PostgresStore | undefined;
  let accounts: Accounts | undefined;
  let env: Record<string, string> = {};
  let a: NodeProcess | undefined;
  let b: NodeProcess | undefined;
  const nodes: NodeProcess[] = [];
  const clients: TestClient[] = [];
  let users = 0;

  const startNode = async (name: string) => {
    const n = await NodeProcess.start(name, env);
    nodes.push(n);
    return n;
  };

  before(async () => {
    db = await createTestDatabase();
    env = { IOTC_STORE: db.url(), IOTC_BUS: NATS_URL, ...opts.env };
    // The test's own store migrates first; the nodes find the schema in place.
    store = await PostgresStore.open(db.url());
    accounts = new Accounts(store, null);
    [a, b] = await Promise.all([startNode(`${opts.name}-a`), startNode(`${opts.name}-b`)]);
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(nodes.map((n) => n.stop('SIGTERM')));
    await store?.close();
    await db?.drop();
  });

  return {
    get db() {
      return db!;
    },
    get store() {
      return store!;
    },
    get accounts() {
      return accounts!;
    },
    get a() {
      return a!;
    },
    get b() {
      return b!;
    },
    nodes,
    startNode,
    async newDevice() {
      const user = await accounts!.signUp({ email: `${opts.name}${++users}@example.com`, name: 'C', password: 'correct horse battery' });
      const d = await accounts!.createDevice(user.id, opts.deviceName);
      return { userId: user.id, id: d.id, key: d.key };
    },
    async open(node, d, side) {
      const c = await TestClient.connect(node.wsUrl, d.id, d.key, side);
      clients.push(c);
      assert.equal((await c.request({ method: 'ping' })).ok, true);
      return c;
    },
  };
}
