import crypto from 'node:crypto';
import type { ServerAddresses } from '../addresses.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { createBus } from '../bus/index.js';
import type { Bus } from '../bus/types.js';
import { createStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { Accounts } from './accounts.js';
import { BlobRoom } from './blobs.js';
import { Dashboards } from './dashboards.js';
import { sharedAccess } from './device-access.js';
import { AuthLimits } from './auth-limits.js';
import { Relay } from './relay.js';
import { RetentionJob } from './retention.js';
import { RollupFillJob } from './rollup-fill.js';
import { ApiTokens } from './tokens.js';
import { Invites } from './invites.js';
import { AutomationEngine } from '../automations/engine.js';
import { Rules } from '../automations/rules.js';
import { Sharing } from './sharing.js';

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
  /** Sign-up codes (IOTC_SIGNUP=invite). */
  invites: Invites;
  /** Binary chunks (camera frames, files): stored within a per-device budget and relayed byte-exact. */
  blobs: BlobRoom;
  /** Who may do what with a device: the one authorisation check every door asks. */
  sharing: Sharing;
  /** Every log-in path's limits (passwords, device keys, API tokens), shared by the doors and the web app. */
  authLimits: AuthLimits;
  /** Users' dashboards; their device checks (dashboards.access) are the place sharing's roles plug in. */
  dashboards: Dashboards;
  /** Where the doors really listen (MQTT port or why it is off); set by startServer once they are bound. */
  addresses?: ServerAddresses;
  /** Automation rules, alerts, deliveries and notifications (docs/automations.md). */
  rules: Rules;
  automations: AutomationEngine;
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
  const authLimits = new AuthLimits(config, store);
  const relay = new Relay({
    store, bus, log, nodeId, maxConnectionsPerDevice: config.maxConnectionsPerDevice, authLimits, callLimits: config,
    valueLimits: { maxDepth: config.maxValueDepth, maxBytes: config.maxValueBytes }, maxSensorsPerDevice: config.maxSensors,
    maxLatestBytesPerDevice: config.maxLatestBytes,
  });
  await relay.start();
  const retention = new RetentionJob(
    store, log, { maxCount: config.retentionCount, maxAgeMs: config.retentionAge, maxBytesPerDevice: config.retentionBytes },
    config.pruneInterval, () => relay.sensorsPruned(),
  );
  relay.onDeviceStored = (deviceId, written, from, to) => retention.noteStored(deviceId, written, from, to);
  retention.start();
  const rollupFill = new RollupFillJob(store, log);
  if (config.rollupFill) rollupFill.start();
  const accounts = new Accounts(store, relay, config);
  const tokens = new ApiTokens(store, config);
  const automations = new AutomationEngine(store, relay, config, log.child({ component: 'automations' }));
  await automations.start();
  const rules = new Rules(store, config, automations);
  const blobs = new BlobRoom(relay, config, log.child({ component: 'blobs' }));
  const sharing = new Sharing(store, relay, config.inviteTtl);
  return {
    config, log, nodeId, store, bus, relay, accounts, tokens, invites: new Invites(store, config.inviteTtl), authLimits, rules, automations, blobs, sharing, dashboards: new Dashboards(store, sharedAccess(sharing)),
    async close() {
      await retention.stop();
      await rollupFill.stop();
      await automations.stop();
      await relay.close();
      await blobs.drain();
      await bus.close();
      await store.close();
    },
  };
}
