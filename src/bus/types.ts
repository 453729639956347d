import type { CallState, DeviceEventKind, StoredReading } from '../store/types.js';

/** A call to a device as it travels to the nodes holding the device's connections. */
export interface BusCall {
  call: string;
  method: string;
  params: unknown;
  time: number;
  /** ms since epoch after which an answer is no longer awaited. */
  expires: number;
  persistent: boolean;
}

/** What crosses between nodes. Readings are already stored when they are published. */
export type BusEvent =
  | { type: 'readings'; deviceId: string; readings: StoredReading[] }
  | { type: 'device'; deviceId: string; kind: DeviceEventKind }
  /** A call for the device's connections on other nodes. */
  | { type: 'call'; deviceId: string; call: BusCall }
  /** A device's answer to a call made on another node (first answer wins there); `delivered`: handed to the device, answer pending. */
  | { type: 'reply'; deviceId: string; call: string; result?: unknown; error?: string; delivered?: boolean }
  /** A persistent call changed state: pushed to the device's apps on every node. */
  | { type: 'state'; deviceId: string; call: string; state: CallState; result?: unknown; error?: string }
  /** A binary chunk was stored: nodes with the device's other side read its bytes from the shared store. */
  | { type: 'blob'; deviceId: string; sensor: string; seq: number };

/**
 * Routes events between the nodes of a cluster. Interest-based: a node receives a device's events only
 * while it has subscribed to that device, and never its own publications (the node delivers those locally).
 * Per device, events arrive in the order one node published them.
 * The contract tests in test/bus-contract.ts describe what every implementation must do.
 */
export interface Bus {
  readonly kind: string;
  publish(event: BusEvent): Promise<void>;
  /** Idempotent; the node holds one interest per device however many connections it has. */
  subscribe(deviceId: string): void;
  unsubscribe(deviceId: string): void;
  /** The single receiver of events from other nodes. */
  onEvent(handler: (event: BusEvent) => void): void;
  /**
   * Called after the node's link to the others came back from an outage: events may have been missed
   * meanwhile, so the relay re-reads from the store what its connections should have received.
   * `downSince`: when the link dropped (ms since epoch, this node's clock).
   * Optional: a bus that cannot lose its link (the in-process one) has nothing to report.
   */
  onReconnect?(handler: (downSince: number) => void): void;
  /** A round trip; once it resolves, earlier subscribe/unsubscribe calls are in effect. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
