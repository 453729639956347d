import type tls from 'node:tls';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Aedes } from 'aedes';
import type { Client } from 'aedes';
import { TokenBucket } from '../../core/rate-limit.js';
import type { Relay } from '../../core/relay.js';
import type { BlobRoom } from '../../core/blobs.js';
import type { Logger } from '../../log.js';
import { HandshakeGuard } from '../handshake-guard.js';
import type { PendingHandshake } from '../handshake-guard.js';
import { MqttBlobOutbox } from './blob-outbox.js';
import { authenticate, preConnect } from './connect.js';
import { MqttConnection } from './connection.js';
import type { MqttUserAuthenticator } from './connect.js';
import { callsSubscribed, sessionReady } from './delivery.js';
import { MqttListeners } from './listeners.js';
import { authorizePublish, skipConsumedRouting } from './publish.js';
import { closeSession } from './session.js';
import type { DoorContext, MqttDoorConfig, Session } from './session.js';
import { authorizeForward, authorizeSubscribe, subscribed, unsubscribed } from './subscribe.js';
import { persistOnlyGranted, resendWithContentTypes } from './session-persistence.js';
import { FilterIndex } from './subscriptions.js';
import { FastPublisher, MAX_TOPIC_LEVELS } from './fast-publish.js';
import { REASON } from './reason-codes.js';
import { MqttWire } from './wire.js';

export type { MqttUserAuthenticator } from './connect.js';
export type { MqttDoorConfig } from './session.js';

/** Slack above the largest value for the topic and MQTT headers of a PUBLISH. */
const PACKET_OVERHEAD = 1024;

/**
 * The MQTT door: an embedded aedes broker whose every decision is the relay's. Publishes are stored
 * through relay.put (the PUBACK waits for the commit) and never routed by the broker itself; each
 * connection is a relay Receiver, so what the other side writes reaches it like any WebSocket.
 * The broker's hooks are in connect.ts (CONNECT), publish.ts, subscribe.ts, and delivery.ts (what goes out).
 */
export class MqttDoor {
  private readonly sessions = new WeakMap<Client, Session>();
  private readonly live = new Set<Session>();
  private readonly listeners: MqttListeners;
  private readonly ctx: DoorContext;
  /** Largest packet: a text value up to --max-frame, a binary chunk up to --max-blob. */
  private readonly maxPacketBytes: number;

  private constructor(
    private readonly broker: Aedes,
    relay: Relay,
    private readonly config: MqttDoorConfig,
    private readonly log: Logger,
    handshakes: HandshakeGuard,
    blobs?: BlobRoom,
    users?: MqttUserAuthenticator,
  ) {
    this.ctx = { relay, config, log, blobs, users };
    this.maxPacketBytes = (blobs ? Math.max(config.maxFrameBytes, config.maxBlobBytes) : config.maxFrameBytes) + PACKET_OVERHEAD;
    this.listeners = new MqttListeners(config, log, handshakes, this.maxPacketBytes, (raw, remote, transport, handshake) => this.handleStream(raw, remote, transport, handshake));
  }

  /** `handshakes` is shared with the other doors; without one the door keeps its own. */
  static async create(relay: Relay, config: MqttDoorConfig, log: Logger, handshakes?: HandshakeGuard, blobs?: BlobRoom, users?: MqttUserAuthenticator): Promise<MqttDoor> {
    let door!: MqttDoor;
    const sessionOf = (client: Client) => door.sessions.get(client);
    const broker = await Aedes.createBroker({
      connectTimeout: config.handshakeTimeout,
      drainTimeout: 30_000,
      // Client ids are prefixed with their device (see preConnect), so 3.1's 23-character limit cannot hold.
      maxClientsIdLength: 256,
      maxTopicLevels: MAX_TOPIC_LEVELS,
      preConnect: (client, packet, done) => preConnect(sessionOf(client), door.listeners.accepting, packet, done),
      authenticate: (client, username, password, done) => authenticate(door.ctx, sessionOf(client), username, password, done),
      authorizePublish: (client, packet, done) => authorizePublish(door.ctx, client, client ? sessionOf(client) : undefined, packet, done),
      authorizeSubscribe: (client, sub, done) => authorizeSubscribe(door.ctx, sessionOf(client), sub, done),
      authorizeForward: (client, packet) => authorizeForward(sessionOf(client), packet),
    });
    door = new MqttDoor(broker, relay, config, log, handshakes ?? new HandshakeGuard(config, log, (code) => relay.countError(code)), blobs, users);
    skipConsumedRouting(broker);
    persistOnlyGranted(broker, (client) => sessionOf(client)?.filters);
    resendWithContentTypes(broker, (client) => sessionOf(client)?.wire);
    broker.on('clientReady', (client) => sessionReady(door.ctx, sessionOf(client), client));
    broker.on('subscribe', (subs, client) => subscribed(door.ctx, sessionOf(client), client, subs));
    broker.on('subscribe', (subs, client) => callsSubscribed(door.ctx, sessionOf(client), subs.map((s) => s.topic)));
    broker.on('unsubscribe', (topics, client) => unsubscribed(sessionOf(client), topics));
    broker.on('keepaliveTimeout', (client) => {
      const session = sessionOf(client);
      log.info(
        { deviceId: session?.device?.id, side: session?.side, remote: session?.remote },
        'closing mqtt connection: silent for 1.5 × its keep-alive (a keep-alive of 0 or above the limit gets --mqtt-max-keepalive / IOTC_MQTT_MAX_KEEPALIVE)',
      );
    });
    broker.on('clientError', (client, err) => log.debug({ deviceId: sessionOf(client)?.device?.id, err: err.message }, 'mqtt client error'));
    broker.on('connectionError', (_client, err) => log.debug({ err: err.message }, 'mqtt connection error'));
    return door;
  }

  /** Listens on config.mqttPort (0 = no TCP listener); resolves to the bound port or null. */
  listen(): Promise<number | null> {
    return this.listeners.listen();
  }

  /** MQTT over TLS on `port` (0 = off); resolves to the bound port or null. */
  listenTls(port: number, secure: tls.TlsOptions): Promise<number | null> {
    return this.listeners.listenTls(port, secure);
  }

  /** Swaps the certificate of the MQTTS listener; connections already open keep theirs. */
  setSecureContext(secure: tls.SecureContextOptions): void {
    this.listeners.setSecureContext(secure);
  }

  /** MQTT over WebSocket: the server routes upgrades of /mqtt here. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.listeners.handleUpgrade(req, socket, head);
  }

  get connectionCount(): number {
    return this.live.size;
  }

  /** A connection admitted by a listener: its wire, its session (a relay Receiver) and its broker client. */
  private handleStream(raw: Duplex, remote: string, transport: Session['transport'], handshake: PendingHandshake): void {
    if (!this.listeners.accepting) {
      handshake.settle();
      raw.destroy();
      return;
    }
    const wire = new MqttWire(raw, { maxPacketBytes: this.maxPacketBytes, maxKeepaliveSeconds: Math.ceil(this.config.mqttMaxKeepalive / 1000) });
    const { session } = new MqttConnection(this.ctx, {
      wire, remote, transport, device: null, side: 'device', attachment: null, ready: false,
      early: new Map(), sent: new Map(), blobs: null, bucket: new TokenBucket(this.config.rateLimit, this.config.rateBurst),
      revoked: false, closed: false, willTopic: null, filters: new FilterIndex(), firmwareFilters: [], targets: null, overCap: 0, handshake,
    });
    const client = this.broker.handle(wire);
    session.receiver.client = client;
    wire.fast = new FastPublisher(this.ctx, session, client);
    if (this.ctx.blobs) session.blobs = new MqttBlobOutbox(session.receiver, this.config.maxBlobBytes);
    this.sessions.set(client, session);
    this.live.add(session);
    wire.once('close', () => {
      session.closed = true;
      if (wire.accountHeld && session.device !== null) this.ctx.relay.letGo(session.device.userId, wire);
      handshake.settle();
      this.live.delete(session);
      session.attachment?.detach();
    });
    wire.on('error', (err) => this.log.debug({ remote, err: err.message }, 'mqtt stream error'));
  }

  /** Takes no more connections, and reads no more from those open (see MqttWire.stopReading). */
  stopAccepting(): void {
    this.listeners.stopAccepting();
    for (const session of this.live) session.wire.stopReading();
  }

  /**
   * Closes every MQTT connection (MQTT 5 clients are told the server is shutting down) and the broker, once the
   * acknowledgements of what was stored have left: the broker writes its PUBACKs some turns after the commit, and
   * a client slow to read holds them in its socket. A client that reads nothing is given up on after `timeoutMs`.
   */
  async close(timeoutMs = 2000): Promise<void> {
    this.stopAccepting();
    const until = Date.now() + timeoutMs;
    while ([...this.live].some(acknowledging) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const session of this.live) {
      if (session.wire.version === 5) session.wire.disconnect(REASON.serverShuttingDown, 'Server is shutting down');
    }
    await new Promise<void>((resolve) => this.broker.close(() => resolve()));
    for (const session of this.live) session.wire.destroy();
    await this.listeners.close();
  }
}

/** A connection with publishes not yet answered, or answers not yet handed to its socket's peer. */
function acknowledging(session: Session): boolean {
  return !session.closed && (!(session.wire.fast?.answered ?? true) || session.wire.queuedBytes > 0);
}
