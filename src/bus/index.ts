import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { MemoryBusHub } from './memory.js';
import type { Bus } from './types.js';

export type { Bus, BusEvent } from './types.js';

/** The one place a bus is chosen from config. */
export async function createBus(
  config: Pick<Config, 'bus'> & Partial<Pick<Config, 'natsCreds' | 'natsTlsCa' | 'natsTlsCert' | 'natsTlsKey'>>,
  nodeId: string,
  log?: Logger,
): Promise<Bus> {
  if (config.bus === 'memory') return new MemoryBusHub().connect();
  if (/^(nats|tls):\/\//.test(config.bus)) {
    // Loaded only when chosen, as the PostgreSQL store is: a single node never holds the NATS client.
    const { NatsBus } = await import('./nats.js');
    return NatsBus.connect({
      url: config.bus, nodeId, log: log?.child({ component: 'nats' }),
      credsFile: config.natsCreds || undefined, tlsCa: config.natsTlsCa || undefined, tlsCert: config.natsTlsCert || undefined, tlsKey: config.natsTlsKey || undefined,
    });
  }
  throw new Error(`Bus "${config.bus}" is not supported; use "memory" or "nats://host:4222"`);
}
