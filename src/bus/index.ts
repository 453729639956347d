import type { Config } from '../config.js';
import { MemoryBusHub } from './memory.js';
import type { Bus } from './types.js';

export type { Bus, BusEvent } from './types.js';

/** The one place a bus is chosen from config. */
export async function createBus(config: Pick<Config, 'bus'>, _nodeId: string): Promise<Bus> {
  if (config.bus === 'memory') return new MemoryBusHub().connect();
  throw new Error(`Bus "${config.bus}" is not supported by this build; use "memory"`);
}
