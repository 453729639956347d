import type { Client } from 'aedes';
import type { Config } from '../../config.js';
import type { BlobRoom } from '../../core/blobs.js';
import type { TokenBucket } from '../../core/rate-limit.js';
import type { Attachment, Relay } from '../../core/relay.js';
import type { Logger } from '../../log.js';
import type { Device, Side, StoredReading } from '../../store/types.js';
import type { PendingHandshake } from '../handshake-guard.js';
import type { MqttBlobOutbox } from './blob-outbox.js';
import type { MqttUserAuthenticator } from './connect.js';
import type { MqttConnection } from './connection.js';
import type { FilterIndex } from './subscriptions.js';
import type { MqttWire } from './wire.js';

export type MqttDoorConfig = Pick<
  Config,
  'mqttPort' | 'host' | 'maxFrameBytes' | 'rateLimit' | 'rateBurst' | 'sendQueueBytes' | 'mqttMaxSubscriptions' | 'mqttMaxKeepalive' | 'handshakeTimeout' | 'maxUnauthPerAddress' | 'trustProxy' | 'maxBlobBytes'
>;

/** What the door's broker hooks share: the relay they decide by, the settings, and the optional chunk room and token log-in. */
export interface DoorContext {
  relay: Relay;
  config: MqttDoorConfig;
  log: Logger;
  blobs?: BlobRoom;
  users?: MqttUserAuthenticator;
}

/** One MQTT connection: its wire, its device once authenticated, and the relay's view of it. */
export interface Session {
  wire: MqttWire;
  remote: string;
  transport: 'tcp' | 'tls' | 'websocket';
  device: Device | null;
  side: Side;
  attachment: Attachment | null;
  receiver: MqttConnection;
  /** True once the broker has restored the session and sent CONNACK: deliveries can be matched to subscriptions. */
  ready: boolean;
  /** Readings handed over before `ready`: the latest per sensor. */
  early: Map<string, StoredReading>;
  /** The newest sequence number sent per sensor, so a late retained or sync copy never overtakes a live one. */
  sent: Map<string, number>;
  /** Binary chunks on their way to this connection (when the hub takes chunks). */
  blobs: MqttBlobOutbox | null;
  bucket: TokenBucket;
  revoked: boolean;
  closed: boolean;
  willTopic: string | null;
  /** The filters this connection holds (as granted, including those the broker is still adding), by topic level. */
  filters: FilterIndex;
  /** The firmware command filters among them (cmnd/T/#, N/+/+/command), in the order subscribed; changed only with `filters`. */
  firmwareFilters: string[];
  /** Where each sensor's readings go (see delivery.ts), worked out again once `filters` changed; null until the first delivery. */
  targets: { generation: number; bySensor: Map<string, readonly DeliveryTarget[]> } | null;
  /** Filters refused over the cap since the last SUBACK, logged once per SUBSCRIBE. */
  overCap: number;
  /** Open until the connection is authenticated. */
  handshake: PendingHandshake;
}

/** One topic a reading is published on to a connection, at the QoS its filters grant; `firmware` for a firmware's own command topic. */
export interface DeliveryTarget {
  topic: string;
  qos: number;
  firmware: boolean;
}

/** Ends a connection the hub gives up on; an MQTT 5 client is told why. */
export function closeSession(session: Session, client: Client, reason: number, text: string): void {
  if (session.closed) return;
  session.wire.disconnect(reason, text);
  client.close();
}
