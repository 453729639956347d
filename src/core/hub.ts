import crypto from 'node:crypto';
import type { ServerAddresses } from '../addresses.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { createBus } from '../bus/index.js';
import type { Bus } from '../bus/types.js';
import { createStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { Accounts } from './accounts.js';
import { Dashboards } from './dashboards.js';
import { ownerAccess } from './device-access.js';
import { AuthLimits } from './auth-limits.js';
import { Relay } from './relay.js';
import { RetentionJob } from './retention.js';
import { ApiTokens } from './tokens.js';

/** Everything a node runs except its doors: the store, the bus, the relay and the account service. */
export interface Hub {
  config: Config;
  log: Logger;
  nodeId: string;
  store: Store;
  bus: Bus;
  relay: Relay;
  accounts: Accounts;
  tokens: ApiTokens;
  /** Every log-in path's limits (passwords, device keys, API tokens), shared by the doors and the web app. */
  authLimits: AuthLimits;
  /** Users' dashboards; their device checks (dashboards.access) are the place sharing's roles plug in. */
  dashboards: Dashboards;
  /** Where the doors really listen (MQTT port or why it is off); set by startServer once they are bound. */
  addresses?: ServerAddresses;
  close(): Promise<void>;
}

export async function createHub(config: Config, log: Logger): Promise<Hub> {
  const nodeId = config.nodeId || `node-${crypto.randomBytes(4).toString('hex')}`;
  const store = await createStore(config, log);
  let bus: Bus;
  try {
    bus = await createBus(config, nodeId, log);
  } catch (err) {
    await store.close();
    throw err;
  }
  const authLimits = new AuthLimits(config);
  const relay = new Relay({
    store, bus, log, nodeId, maxConnectionsPerDevice: config.maxConnectionsPerDevice, authLimits, callLimits: config,
    valueLimits: { maxDepth: config.maxValueDepth, maxBytes: config.maxValueBytes }, maxSensorsPerDevice: config.maxSensors,
  });
  await relay.start();
  const retention = new RetentionJob(store, log, { maxCount: config.retentionCount, maxAgeMs: config.retentionAge }, config.pruneInterval, () => relay.sensorsPruned());
  retention.start();
  const accounts = new Accounts(store, relay, config);
  const tokens = new ApiTokens(store, config);
  return {
    config, log, nodeId, store, bus, relay, accounts, tokens, authLimits, dashboards: new Dashboards(store, ownerAccess(accounts)),
    async close() {
      await retention.stop();
      await relay.close();
      await bus.close();
      await store.close();
    },
  };
}
