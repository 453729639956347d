import client from 'prom-client';
import type { Hub } from './core/hub.js';
import { LoopDelayMonitor } from './loop-delay.js';

/** What a node's metrics keep running between scrapes, ended by stopMetrics when the node closes. */
const running = new WeakMap<client.Registry, () => void>();

/** Stops the node's event-loop monitor (its 1 ms timer would otherwise outlive a closed node in the same process). */
export function stopMetrics(register: client.Registry): void {
  running.get(register)?.();
  running.delete(register);
}

/**
 * Prometheus metrics of one node, in a registry of its own (several nodes may share a process in tests).
 * Counts the relay keeps are read when scraped; events (store batches, bus lag, errors) are observed as they happen.
 */
export function createMetrics(hub: Hub, doors: { handshakesPending?: () => number } = {}): client.Registry {
  const register = new client.Registry();
  // The standard process_* and nodejs_* names, so stock dashboards work.
  client.collectDefaultMetrics({ register });

  // The event loop's pauses since the previous scrape, to the tail (prom-client's nodejs_eventloop_lag_* stop at p99
  // and sample every 10 ms); what readers of a busy hub wait on beyond the network. Read and reset per scrape.
  const { relay } = hub;
  const loopDelay = new LoopDelayMonitor(() => relay.counters.readingsIn + relay.counters.readingsOut + hub.blobs.counters.bytesIn + hub.blobs.counters.bytesOut);
  running.set(register, () => loopDelay.stop());
  new client.Gauge({
    name: 'iotc_eventloop_delay_seconds',
    help: 'Event-loop delay since the previous scrape of /metrics, by quantile (and max); timed every 1 ms while readings flow, every 10 ms after 10 s without',
    labelNames: ['quantile'] as const,
    registers: [register],
    collect() {
      const d = loopDelay.read();
      this.set({ quantile: '0.5' }, d.p50);
      this.set({ quantile: '0.99' }, d.p99);
      this.set({ quantile: '0.999' }, d.p999);
      this.set({ quantile: 'max' }, d.max);
    },
  });

  new client.Gauge({
    name: 'iotc_node_info',
    help: 'This node: its id and the store and bus it uses (always 1)',
    labelNames: ['node', 'store', 'bus'] as const,
    registers: [register],
    collect() {
      this.set({ node: hub.nodeId, store: hub.store.kind, bus: hub.bus.kind }, 1);
    },
  });

  new client.Gauge({
    name: 'iotc_connections',
    help: 'Open connections on this node, by door and side',
    labelNames: ['door', 'side'] as const,
    registers: [register],
    collect() {
      this.reset();
      for (const [door, counts] of relay.connectionsByDoor()) {
        this.set({ door, side: 'device' }, counts.device);
        this.set({ door, side: 'client' }, counts.client);
      }
    },
  });

  const { handshakesPending } = doors;
  if (handshakesPending) {
    new client.Gauge({
      name: 'iotc_handshakes_pending',
      help: 'Connections on this node not yet authenticated (HTTP before its first request, WebSocket, MQTT)',
      registers: [register],
      collect() {
        this.set(handshakesPending());
      },
    });
  }

  // Counters the relay keeps as plain numbers, exposed as Prometheus counters when scraped.
  const mirrored = (name: string, help: string, read: () => number) =>
    new client.Counter({
      name,
      help,
      registers: [register],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  mirrored('iotc_readings_in_total', 'Readings accepted from connections on this node', () => relay.counters.readingsIn);
  mirrored('iotc_readings_out_total', 'Readings delivered to connections on this node (one per receiving connection)', () => relay.counters.readingsOut);
  mirrored('iotc_blob_bytes_in_total', 'Bytes of binary chunks stored from connections on this node', () => hub.blobs.counters.bytesIn);
  mirrored('iotc_blob_bytes_out_total', 'Bytes of binary chunks handed to connections on this node (one per receiving connection; a slow viewer may skip some)', () => hub.blobs.counters.bytesOut);

  new client.Gauge({
    name: 'iotc_store_pending_readings',
    help: 'Readings accepted and waiting for the store to commit them',
    registers: [register],
    collect() {
      this.set(relay.pendingWrites);
    },
  });

  const batchSize = new client.Histogram({
    name: 'iotc_store_batch_size',
    help: 'Readings per store transaction',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
    registers: [register],
  });
  const batchSeconds = new client.Histogram({
    name: 'iotc_store_batch_seconds',
    help: 'Time to commit one store transaction of readings',
    labelNames: ['outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [register],
  });
  const busLag = new client.Histogram({
    name: 'iotc_bus_lag_seconds',
    help: 'Time from a reading being written on another node to its arrival here',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [register],
  });
  const busPublishErrors = new client.Counter({
    name: 'iotc_bus_publish_errors_total',
    help: 'Failed publications to other nodes (the readings are stored; other nodes catch up when the bus returns)',
    registers: [register],
  });
  const errors = new client.Counter({
    name: 'iotc_errors_total',
    help: 'Errors answered to or closing connections, by code',
    labelNames: ['code'] as const,
    registers: [register],
  });

  // Bound once: a labelled observe() turns its labels into a key at every call, and this one runs for every commit.
  const committedSeconds = batchSeconds.labels({ outcome: 'committed' });
  relay.observer = {
    batch(size, seconds, ok) {
      batchSize.observe(size);
      if (ok) committedSeconds.observe(seconds);
      else batchSeconds.observe({ outcome: 'failed' }, seconds);
    },
    busLag: (seconds) => busLag.observe(seconds),
    busPublishFailed: () => busPublishErrors.inc(),
    error: (code) => errors.inc({ code }),
  };
  return register;
}
