/** What the bench asks of a load-generator worker, and what it reports back (plain data over IPC). */
import type { Endpoint } from './targets.js';

/** Who a group's connections speak as: IOTcommunicate device credentials, a bare-relay pair, or an MQTT topic. */
export interface GroupCreds {
  id: string;
  key?: string;
}

/** Connections that share one device id (IOTcommunicate), pair (bare relay) or topic (MQTT). */
export interface GroupSpec {
  creds: GroupCreds;
  devices: number;
  clients: number;
}

export interface StreamJob {
  kind: 'stream';
  endpoint: Endpoint;
  groups: GroupSpec[];
  /** Closed loop: each device keeps at most this many messages in flight. 0 = open loop at `rate`. */
  window: number;
  /** In flight = sent − delivered to the group's clients, or sent − acknowledged by the server. */
  flow: 'delivered' | 'acked';
  /** Open loop: messages per second offered by this worker, spread evenly over its devices. */
  rate: number;
  /** Remember every acknowledged sequence number per device (durability check). */
  recordAcks: boolean;
  /**
   * Puts carry an id, so the hub acknowledges each after commit (MQTT: published at QoS 1, acknowledged by PUBACK);
   * without, they are fire-and-forget (MQTT QoS 0) and only their delivery to the receivers is measured.
   */
  ids: boolean;
  localAddresses: string[];
}

export interface ConnectJob {
  kind: 'connect';
  endpoint: Endpoint;
  creds: GroupCreds[];
  /** New connections per second from this worker. */
  rate: number;
  /** At most this many handshakes under way at once. */
  maxPending: number;
  localAddresses: string[];
  /** Add these connections to the ones already open (the idle steps: 5k, then 10k, …) instead of starting afresh. */
  keep?: boolean;
}

export type Job = StreamJob | ConnectJob;

export interface Counters {
  sent: number;
  delivered: number;
  acked: number;
  failed: number;
  /** Error replies and unexpected closes by code. */
  errors: Record<string, number>;
  opened: number;
  /** Monotonic µs (shared by every process on the machine) of the first connect attempt and the last success. */
  firstConnectAt: number;
  lastOpenAt: number;
  /** Messages due in open loop that the worker could not send on time. */
  lagging: number;
  latency: { counts: number[]; max: number };
  ackLatency: { counts: number[]; max: number };
  connectLatency: { counts: number[]; max: number };
}

export type ToWorker =
  | { type: 'setup'; job: Job }
  | { type: 'start' }
  | { type: 'mark'; id: number; reset: boolean }
  | { type: 'stop'; drainMs: number }
  | { type: 'teardown' }
  | { type: 'exit' };

export type FromWorker =
  | { type: 'ready'; connections: number }
  | { type: 'error'; message: string }
  | { type: 'mark'; id: number; counters: Counters }
  | { type: 'stopped'; counters: Counters; acked?: Record<string, number[]> }
  | { type: 'torndown' };

/** Monotonic clock in µs: CLOCK_MONOTONIC is one clock for every process, so workers' stamps compare. */
export function nowUs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
}
