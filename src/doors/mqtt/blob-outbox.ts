import type { PublishPacket } from 'aedes';
import type { BlobDelivery } from '../../core/blobs.js';
import { sensorTopic, unpublishableSensor } from './topics.js';

/** What the outbox needs of its MQTT connection. */
export interface BlobOutboxPeer {
  closed(): boolean;
  /** CONNACK sent and the session restored: deliveries can be matched to subscriptions. */
  ready(): boolean;
  /** The QoS of the connection's subscription matching a topic, -1 if none. */
  qosFor(topic: string): number;
  /** Bytes written to the connection and not yet taken by the peer. */
  queuedBytes(): number;
  /** `contentType`: the chunk's type, for the MQTT 5 Content Type property. */
  publish(packet: PublishPacket, contentType: string): void;
}

/**
 * Binary chunks for one MQTT connection, published byte-exact on devices/ID/SENSOR.
 * Latest wins: while the connection's queue holds more than a chunk limit's worth, the newest chunk per sensor
 * waits and older ones are skipped. A chunk older than one already sent for its sensor (a retained or sync copy
 * read before a live one went out) is never sent after it.
 */
export class MqttBlobOutbox {
  /** Chunks handed over before the connection was ready: the newest per sensor. */
  private readonly early = new Map<string, BlobDelivery>();
  private readonly parked = new Map<string, { d: BlobDelivery; retain: boolean }>();
  private readonly sent = new Map<string, number>();
  private retrying = false;

  constructor(private readonly peer: BlobOutboxPeer, private readonly maxBlobBytes: number) {}

  deliver(d: BlobDelivery, retain = false): void {
    const sensor = d.info.sensor;
    if (this.peer.closed() || unpublishableSensor(sensor)) return;
    if (!this.peer.ready()) {
      if ((this.early.get(sensor)?.info.seq ?? 0) < d.info.seq) this.early.set(sensor, d);
      return;
    }
    const topic = sensorTopic(d.info.deviceId, sensor);
    const qos = this.peer.qosFor(topic);
    if (qos < 0 || (this.sent.get(sensor) ?? 0) >= d.info.seq) return;
    if (this.peer.queuedBytes() > this.maxBlobBytes) {
      if ((this.parked.get(sensor)?.d.info.seq ?? 0) < d.info.seq) this.parked.set(sensor, { d, retain });
      this.retryParked();
      return;
    }
    this.sent.set(sensor, d.info.seq);
    this.peer.publish({ cmd: 'publish', topic, payload: d.data, qos: Math.min(qos, 1), retain, dup: false } as PublishPacket, d.info.type);
  }

  /**
   * The connection is ready. A persistent session gets what came before through its restored subscriptions;
   * a clean one has none yet, and gets the newest chunks as retained messages when it subscribes.
   */
  ready(clean: boolean): void {
    const early = [...this.early.values()];
    this.early.clear();
    if (!clean) for (const d of early) this.deliver(d);
  }

  private retryParked(): void {
    if (this.retrying) return;
    this.retrying = true;
    setTimeout(() => {
      this.retrying = false;
      if (this.peer.closed()) return this.parked.clear();
      if (this.peer.queuedBytes() > this.maxBlobBytes) return this.retryParked();
      const ready = [...this.parked.values()];
      this.parked.clear();
      for (const { d, retain } of ready) this.deliver(d, retain);
    }, 50).unref();
  }
}
