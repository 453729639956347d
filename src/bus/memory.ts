import type { Bus, BusEvent } from './types.js';

/**
 * The in-process bus. One hub stands for the network; each node connects its own MemoryBus to it.
 * A single server has one hub and one node, so publishing finds nobody else and costs a map lookup.
 */
export class MemoryBusHub {
  readonly nodes = new Set<MemoryBus>();
  connect(): MemoryBus {
    const bus = new MemoryBus(this);
    this.nodes.add(bus);
    return bus;
  }
}

export class MemoryBus implements Bus {
  readonly kind = 'memory';
  private readonly interests = new Set<string>();
  private handler: (event: BusEvent) => void = () => {};
  private closed = false;

  constructor(private readonly hub: MemoryBusHub) {}

  async publish(event: BusEvent): Promise<void> {
    if (this.closed) throw new Error('bus closed');
    for (const node of this.hub.nodes) {
      // A copy per hop, as a network would make, so no node can change another's objects.
      if (node !== this && node.interests.has(event.deviceId)) {
        const copy = structuredClone(event);
        queueMicrotask(() => node.closed || node.handler(copy));
      }
    }
  }

  subscribe(deviceId: string): void {
    this.interests.add(deviceId);
  }

  unsubscribe(deviceId: string): void {
    this.interests.delete(deviceId);
  }

  onEvent(handler: (event: BusEvent) => void): void {
    this.handler = handler;
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('bus closed');
  }

  async close(): Promise<void> {
    this.closed = true;
    this.hub.nodes.delete(this);
  }
}
