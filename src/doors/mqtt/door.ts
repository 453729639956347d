import net from 'node:net';
import tls from 'node:tls';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Aedes } from 'aedes';
import type { AuthenticateError, Client, PublishPacket, Subscription } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Config } from '../../config.js';
import { IotcError, toIotcError } from '../../core/errors.js';
import { sensorName } from '../../core/messages.js';
import { TokenBucket } from '../../core/rate-limit.js';
import type { Attachment, Receiver, Relay } from '../../core/relay.js';
import type { Logger } from '../../log.js';
import { clientAddress } from '../client-address.js';
import { otherSide } from '../../store/types.js';
import type { Device, Side, StoredReading } from '../../store/types.js';
import { HandshakeGuard } from '../handshake-guard.js';
import type { PendingHandshake } from '../handshake-guard.js';
import { FilterIndex, latestBlobsMatching, latestMatching, persistOnlyGranted, publishToConnection } from './subscriptions.js';
import { chunkTypeOf } from './content-type.js';
import { MqttBlobOutbox } from './blob-outbox.js';
import { aliasDeliveryTopic, aliasFilterAllowed, aliasPayload, aliasPublish, filterAllowed, payloadValue, sensorFromTopic, sensorTopic, unpublishableSensor, valuePayload } from './topics.js';
import { MqttWire, REASON } from './wire.js';
import { isRpcSensor, parseRpcTopic, publishTo, rpcTopic, runRpc } from './rpc.js';
import type { RpcKind } from './rpc.js';
import type { DeviceCall } from '../../core/calls.js';
import { blobDelivery } from '../../core/blobs.js';
import type { BlobRoom } from '../../core/blobs.js';
import { forbidden, roleAllows } from '../../core/sharing.js';
import type { Role } from '../../core/sharing.js';
import { TOKEN_PREFIX } from '../../core/tokens.js';

/**
 * Checks an API token for a device (username `ID:client`, password = the token): the device and the token's
 * account's role on it (owner, operator, viewer). Rejects E_AUTH for a wrong token or a device the account cannot see.
 */
export type MqttUserAuthenticator = (token: string, deviceId: string, address: string) => Promise<{ device: Device; userId: number; role: Role }>;

export type MqttDoorConfig = Pick<
  Config,
  'mqttPort' | 'host' | 'maxFrameBytes' | 'rateLimit' | 'rateBurst' | 'sendQueueBytes' | 'mqttMaxSubscriptions' | 'mqttMaxKeepalive' | 'handshakeTimeout' | 'maxUnauthPerAddress' | 'trustProxy' | 'maxBlobBytes'
>;

/** Where a publish goes once the relay has stored it: a topic nobody may subscribe to, so the broker routes it nowhere. */
const CONSUMED_TOPIC = '$IOTC/consumed';
/** Slack above the largest value for the topic and MQTT headers of a PUBLISH. */
const PACKET_OVERHEAD = 1024;

/** One MQTT connection: its wire, its device once authenticated, and the relay's view of it. */
interface Session {
  wire: MqttWire;
  remote: string;
  transport: 'tcp' | 'tls' | 'websocket';
  device: Device | null;
  side: Side;
  attachment: Attachment | null;
  receiver: Receiver;
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
  /** The firmware command filters among them (cmnd/T/#, N/+/+/command), in the order subscribed. */
  firmwareFilters: string[];
  /** Filters refused over the cap since the last SUBACK, logged once per SUBSCRIBE. */
  overCap: number;
  /** Open until the connection is authenticated. */
  handshake: PendingHandshake;
}

/** `ID` is the device side; `ID:client` (or `ID:device`) names the side explicitly. */
function parseUsername(username: string | undefined): { deviceId: string; side: Side } | null {
  if (!username) return null;
  const m = /^([^:]{1,64})(?::(device|client))?$/.exec(username);
  return m ? { deviceId: m[1], side: (m[2] as Side | undefined) ?? 'device' } : null;
}

function authError(returnCode: 2 | 3 | 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/**
 * Where a reading goes on this connection: its devices/ID/SENSOR topic if a subscription matches it (found through
 * the index, whatever the number of filters), and the command topic of a firmware's own layout. A firmware
 * subscribed to several (Tasmota: its topic, its group's, its fallback) gets a command once, on the first it
 * subscribed to, so a TOGGLE toggles once. Firmware filters are few (a Tasmota holds three) and within the cap.
 */
function deliveryTargets(session: Pick<Session, 'filters' | 'firmwareFilters'>, deviceId: string, sensor: string): { topic: string; qos: number; firmware: boolean }[] {
  const out: { topic: string; qos: number; firmware: boolean }[] = [];
  if (!unpublishableSensor(sensor)) {
    const topic = sensorTopic(deviceId, sensor);
    const qos = session.filters.qosFor(topic);
    if (qos >= 0) out.push({ topic, qos, firmware: false });
  }
  for (const filter of session.firmwareFilters) {
    const topic = aliasDeliveryTopic(filter, sensor);
    if (topic !== null) {
      out.push({ topic, qos: session.filters.qosOf(filter), firmware: true });
      break;
    }
  }
  return out;
}

/**
 * The MQTT door: an embedded aedes broker whose every decision is the relay's. Publishes are stored
 * through relay.put (the PUBACK waits for the commit) and never routed by the broker itself; each
 * connection is a relay Receiver, so what the other side writes reaches it like any WebSocket.
 */
export class MqttDoor {
  private readonly sessions = new WeakMap<Client, Session>();
  private readonly live = new Set<Session>();
  private readonly wss: WebSocketServer;
  private readonly servers: net.Server[] = [];
  private accepting = true;
  /** Largest packet: a text value up to --max-frame, a binary chunk up to --max-blob. */
  private readonly maxPacketBytes: number;

  private constructor(
    private readonly broker: Aedes,
    private readonly relay: Relay,
    private readonly config: MqttDoorConfig,
    private readonly log: Logger,
    private readonly handshakes: HandshakeGuard,
    private readonly blobs?: BlobRoom,
    private readonly users?: MqttUserAuthenticator,
  ) {
    this.maxPacketBytes = (blobs ? Math.max(config.maxFrameBytes, config.maxBlobBytes) : config.maxFrameBytes) + PACKET_OVERHEAD;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.maxPacketBytes,
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
    });
  }

  /** `handshakes` is shared with the other doors; without one the door keeps its own. */
  static async create(relay: Relay, config: MqttDoorConfig, log: Logger, handshakes?: HandshakeGuard, blobs?: BlobRoom, users?: MqttUserAuthenticator): Promise<MqttDoor> {
    let door!: MqttDoor;
    const broker = await Aedes.createBroker({
      connectTimeout: config.handshakeTimeout,
      drainTimeout: 30_000,
      // Client ids are prefixed with their device (see preConnect), so 3.1's 23-character limit cannot hold.
      maxClientsIdLength: 256,
      maxTopicLevels: 32,
      preConnect: (client, packet, done) => door.preConnect(client, packet, done),
      authenticate: (client, username, password, done) => door.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => door.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => door.authorizeSubscribe(client, sub, done),
      authorizeForward: (client, packet) => door.authorizeForward(client, packet),
    });
    door = new MqttDoor(broker, relay, config, log, handshakes ?? new HandshakeGuard(config, log, (code) => relay.countError(code)), blobs, users);
    persistOnlyGranted(broker, (client) => door.sessions.get(client)?.filters);
    broker.on('clientReady', (client) => door.ready(client));
    broker.on('subscribe', (subs, client) => door.subscribed(client, subs));
    broker.on('subscribe', (subs, client) => door.callsSubscribed(client, subs.map((s) => s.topic)));
    broker.on('unsubscribe', (topics, client) => door.unsubscribed(client, topics));
    broker.on('keepaliveTimeout', (client) => {
      const session = door.sessions.get(client);
      log.info(
        { deviceId: session?.device?.id, side: session?.side, remote: session?.remote },
        'closing mqtt connection: silent for 1.5 × its keep-alive (a keep-alive of 0 or above the limit gets --mqtt-max-keepalive / IOTC_MQTT_MAX_KEEPALIVE)',
      );
    });
    broker.on('clientError', (client, err) => log.debug({ deviceId: door.sessions.get(client)?.device?.id, err: err.message }, 'mqtt client error'));
    broker.on('connectionError', (_client, err) => log.debug({ err: err.message }, 'mqtt connection error'));
    return door;
  }

  /** Listens on config.mqttPort (0 = no TCP listener); resolves to the bound port or null. */
  async listen(): Promise<number | null> {
    if (this.config.mqttPort === 0) return null;
    const server = net.createServer((socket) => {
      socket.setNoDelay(true);
      const remote = socket.remoteAddress ?? '?';
      this.handleStream(socket, remote, 'tcp', this.handshakes.admit(remote, () => socket.destroy()));
    });
    return this.bind(server, this.config.mqttPort, '--mqtt-port / IOTC_MQTT_PORT');
  }

  /**
   * MQTT over TLS on `port` (0 = off); resolves to the bound port or null. The connection counts as in its
   * handshake from the first TCP byte, so a peer that never finishes TLS is dropped like any other.
   */
  async listenTls(port: number, secure: tls.TlsOptions): Promise<number | null> {
    if (port === 0) return null;
    const server = tls.createServer({ ...secure, handshakeTimeout: this.config.handshakeTimeout });
    const pending = new Map<string, PendingHandshake>();
    const key = (s: net.Socket) => `${s.remoteAddress}:${s.remotePort}`;
    server.on('connection', (socket: net.Socket) => {
      const remote = socket.remoteAddress ?? '?';
      const k = key(socket);
      pending.set(k, this.handshakes.admit(remote, () => socket.destroy()));
      socket.once('close', () => {
        pending.get(k)?.settle();
        pending.delete(k);
      });
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      socket.setNoDelay(true);
      const k = key(socket);
      const handshake = pending.get(k);
      pending.delete(k);
      if (!handshake) return void socket.destroy();
      this.handleStream(socket, socket.remoteAddress ?? '?', 'tls', handshake);
    });
    server.on('tlsClientError', (err) => this.log.debug({ err: err.message }, 'mqtts handshake failed'));
    return this.bind(server, port, '--mqtts-port / IOTC_MQTTS_PORT');
  }

  /** Swaps the certificate of the MQTTS listener; connections already open keep theirs. */
  setSecureContext(secure: tls.SecureContextOptions): void {
    for (const server of this.servers) if (server instanceof tls.Server) server.setSecureContext(secure);
  }

  private async bind(server: net.Server, port: number, setting: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE'
          ? Object.assign(new Error(`MQTT port ${port} is already in use: stop what runs there, pick another with ${setting}, or 0 to turn that listener off`), { code: 'EADDRINUSE' })
          : err),
      );
      server.listen(port, this.config.host, () => resolve());
    });
    this.servers.push(server);
    return (server.address() as net.AddressInfo).port;
  }

  /** MQTT over WebSocket: the server routes upgrades of /mqtt here. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!this.accepting) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    // The WebSocket handshake and then the MQTT CONNECT must both be done within the handshake timeout.
    const remote = clientAddress(req, this.config.trustProxy);
    const handshake = this.handshakes.admit(remote, () => socket.destroy());
    socket.once('close', () => handshake.settle());
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => stream.destroy());
      this.handleStream(stream, remote, 'websocket', handshake);
    });
  }

  get connectionCount(): number {
    return this.live.size;
  }

  private handleStream(raw: Duplex, remote: string, transport: Session['transport'], handshake: PendingHandshake): void {
    if (!this.accepting) {
      handshake.settle();
      raw.destroy();
      return;
    }
    const wire = new MqttWire(raw, { maxPacketBytes: this.maxPacketBytes, maxKeepaliveSeconds: Math.ceil(this.config.mqttMaxKeepalive / 1000) });
    const session: Session = {
      wire, remote, transport, device: null, side: 'device', attachment: null, ready: false,
      early: new Map(), sent: new Map(), blobs: null, bucket: new TokenBucket(this.config.rateLimit, this.config.rateBurst),
      revoked: false, closed: false, willTopic: null, filters: new FilterIndex(), firmwareFilters: [], overCap: 0, handshake,
      receiver: {
        get side() {
          return session.side;
        },
        door: 'mqtt',
        deliver: (reading) => this.deliver(session, client, reading),
        revoked: (err) => this.revoke(session, client, err),
        call: (c) => this.deliverCall(session, client, c),
      },
    };
    const client = this.broker.handle(wire);
    if (this.blobs) {
      const outbox = new MqttBlobOutbox({
        closed: () => session.closed,
        ready: () => session.ready,
        qosFor: (topic) => session.filters.qosFor(topic),
        queuedBytes: () => session.wire.queuedBytes,
        publish: (packet, contentType) => {
          session.wire.expectContentType(packet.topic, packet.payload as Buffer, contentType);
          publishToConnection(client, packet);
        },
      }, this.config.maxBlobBytes);
      session.blobs = outbox;
      session.receiver.deliverBlob = (d) => outbox.deliver(d);
    }
    this.sessions.set(client, session);
    this.live.add(session);
    wire.once('close', () => {
      session.closed = true;
      handshake.settle();
      this.live.delete(session);
      session.attachment?.detach();
    });
    wire.on('error', (err) => this.log.debug({ remote, err: err.message }, 'mqtt stream error'));
  }

  // ---- broker hooks ----

  private preConnect(client: Client, packet: { clientId: string; username?: string; will?: { topic: string } }, done: (err: Error | null, ok: boolean) => void): void {
    const session = this.sessions.get(client);
    if (!session || !this.accepting) return done(new Error('not accepting connections'), false);
    session.willTopic = packet.will?.topic ?? null;
    // Client ids live in one broker for every user: prefix them with the device, so two users' sketches
    // that both call themselves "ESP8266Client" cannot take each other's sessions over.
    const who = parseUsername(packet.username);
    if (who && packet.clientId) packet.clientId = `${who.deviceId}:${who.side}/${packet.clientId}`;
    done(null, true);
  }

  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void {
    const session = this.sessions.get(client);
    if (!session) return done(authError(3, 'no session'), null);
    const who = parseUsername(username);
    if (!who || !password || password.length === 0) {
      this.log.info({ remote: session.remote }, 'mqtt refused: username must be the device id (ID or ID:client) and password the key');
      return done(authError(4, 'username = device id, password = device key'), null);
    }
    const secret = password.toString('utf8');
    // A shared account (or the owner) acting through its own API token: always the client side, with its role.
    const viaToken = this.users !== undefined && who.side === 'client' && secret.startsWith(TOKEN_PREFIX);
    const authenticated = viaToken
      ? this.users!(secret, who.deviceId, session.remote).then(({ device, userId, role }) => {
          (session.receiver as { grant?: Receiver['grant'] }).grant = { userId, role };
          return device;
        })
      : this.relay.authenticate(who.deviceId, secret, session.remote);
    authenticated.then(async (device) => {
      if (session.willTopic !== null && sensorFromTopic(session.willTopic, device.id) === null && aliasPublish(session.willTopic) === null) {
        this.log.info({ deviceId: device.id, remote: session.remote, topic: session.willTopic.slice(0, 100) }, 'mqtt refused: will topic outside the device\'s own topics');
        return done(authError(5, 'the will topic must be devices/ID/SENSOR of this device (or a Tasmota/ESPHome default topic)'), null);
      }
      session.device = device;
      session.side = who.side;
      try {
        const attachment = await this.relay.attach(device, session.receiver);
        if (session.closed) attachment.detach();
        else session.attachment = attachment;
        session.handshake.settle();
      } catch (err) {
        const e = toIotcError(err);
        this.log.info({ deviceId: device.id, code: e.code }, 'mqtt refused: could not attach');
        return done(authError(3, e.message), null);
      }
      done(null, true);
    }, (err) => {
      const e = toIotcError(err);
      if (e.code === 'E_AUTH') this.log.info({ deviceId: who.deviceId.slice(0, 20), remote: session.remote }, 'mqtt refused: wrong device id or key');
      else if (e.code === 'E_RATE_LIMITED') this.log.info({ deviceId: who.deviceId.slice(0, 20), remote: session.remote }, `mqtt refused: ${e.message}`);
      else if (e.code === 'E_INTERNAL') this.log.error({ err }, 'mqtt authentication failed');
      done(authError(e.code === 'E_AUTH' ? 4 : 3, e.message), null);
    });
  }

  private ready(client: Client): void {
    const session = this.sessions.get(client);
    if (!session || session.closed) return;
    session.ready = true;
    const early = [...session.early.values()].sort((a, b) => a.seq - b.seq);
    session.early.clear();
    session.blobs?.ready(client.clean);
    // A clean session has no subscription from before: what it missed reaches it as the retained
    // latest values when it subscribes. A persistent session gets it now, through its restored subscriptions.
    if (client.clean) return;
    this.callsSubscribed(client);
    for (const r of early) this.send(session, client, r, false);
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    const session = client ? this.sessions.get(client) : undefined;
    // Taken first, whatever becomes of the publish: the wire lists the content type of every MQTT 5 publish.
    const contentType = session?.wire.takeContentType(packet.topic);
    const device = session?.device;
    if (!session || !device || session.revoked) return done(new Error('not authenticated'));
    const rpc = parseRpcTopic(packet.topic, device.id);
    if (rpc) return this.rpcPublish(session, client!, device, packet, rpc, done);
    // The device's own tree, or a firmware's default layout (Tasmota tele/T/…, ESPHome N/…/state) mapped onto it.
    const alias = sensorFromTopic(packet.topic, device.id) === null ? aliasPublish(packet.topic) : null;
    const sensor = alias === null ? sensorFromTopic(packet.topic, device.id) : alias === 'drop' ? '' : alias.sensor;
    if (sensor === null || (alias !== 'drop' && !sensorName.safeParse(sensor).success)) {
      this.log.info({ deviceId: device.id, side: session.side, remote: session.remote, topic: packet.topic.slice(0, 100) }, 'mqtt publish refused: topic outside devices/ID/SENSOR of this device');
      return this.refusePublish(session, packet, REASON.notAuthorized, 'publish only to devices/ID/SENSOR of your own device', done);
    }
    const role = session.attachment?.role ?? 'owner';
    if (alias !== 'drop' && !roleAllows(role, 'write')) {
      // A shared viewer's write never reaches the device: MQTT 5 gets "not authorized", 3.1.1 loses the connection.
      this.relay.countError('E_FORBIDDEN');
      this.log.info({ deviceId: device.id, side: session.side, remote: session.remote }, 'mqtt publish refused: a viewer may not write');
      return this.refusePublish(session, packet, REASON.notAuthorized, `E_FORBIDDEN: ${forbidden(role, 'write').message}`, done);
    }
    if (!session.bucket.take()) {
      this.log.info({ deviceId: device.id, side: session.side }, 'mqtt publish refused: rate limit');
      return this.refusePublish(session, packet, REASON.quotaExceeded, `at most ${this.config.rateLimit} messages a second`, done);
    }
    if (alias === 'drop') {
      // Discovery announcements: acknowledged so the firmware carries on, and kept nowhere.
      this.consume(packet);
      return done(null);
    }
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    let chunkType: string | null = null;
    try {
      chunkType = this.blobs ? chunkTypeOf(payload, contentType) : null;
    } catch (err) {
      return this.refuseReading(session, packet, toIotcError(err), done);
    }
    if (chunkType !== null) return this.publishBlob(session, packet, device, sensor, chunkType, payload, done);
    if (this.blobs && payload.length > this.config.maxFrameBytes) {
      this.log.info({ deviceId: device.id, side: session.side }, 'mqtt publish refused: text payload over --max-frame');
      return this.refusePublish(session, packet, REASON.packetTooLarge, `text payloads are limited to ${this.config.maxFrameBytes} bytes (--max-frame); binary chunks to ${this.config.maxBlobBytes}`, done);
    }
    let value: unknown;
    try {
      value = payloadValue(payload);
    } catch (err) {
      return this.refuseReading(session, packet, toIotcError(err), done);
    }
    this.relay.put(device.id, session.side, [{ sensor, value }]).then(
      () => {
        this.consume(packet);
        done(null);
      },
      (err) => {
        const e = toIotcError(err);
        if (e.code === 'E_VALIDATION' || e.code === 'E_LIMIT') return this.refuseReading(session, packet, e, done);
        if (e.code === 'E_INTERNAL') this.log.error({ err, deviceId: device.id }, 'mqtt publish failed');
        // No acknowledgement: the connection closes and a QoS 1 client sends the message again after reconnecting.
        done(e);
      },
    );
  }

  /** A reading the hub will not store (a value breaking the value rules, a sensor beyond the limit): refused alone, saying why. */
  private refuseReading(session: Session, packet: PublishPacket, err: IotcError, done: (err?: Error | null) => void): void {
    this.relay.countError(err.code);
    this.log.info({ deviceId: session.device?.id, side: session.side, code: err.code, reason: err.message }, 'mqtt publish refused');
    this.refusePublish(session, packet, err.code === 'E_LIMIT' ? REASON.quotaExceeded : REASON.payloadFormatInvalid, err.message, done);
  }

  /** A binary chunk (see chunkTypeOf): stored (the PUBACK waits for the commit) and relayed byte-exact. */
  private publishBlob(session: Session, packet: PublishPacket, device: Device, sensor: string, type: string, payload: Buffer, done: (err?: Error | null) => void): void {
    if (payload.length > this.config.maxBlobBytes) {
      this.log.info({ deviceId: device.id, side: session.side }, 'mqtt publish refused: binary chunk over --max-blob');
      return this.refusePublish(session, packet, REASON.packetTooLarge, `binary chunks are limited to ${this.config.maxBlobBytes} bytes (--max-blob)`, done);
    }
    this.blobs!.put(device.id, session.side, sensor, type, payload).then(
      () => {
        this.consume(packet);
        done(null);
      },
      (err) => {
        const e = toIotcError(err);
        if (e.code === 'E_INTERNAL') this.log.error({ err, deviceId: device.id }, 'mqtt binary publish failed');
        done(e);
      },
    );
  }

  /** The relay is the only router: a publish it has stored goes nowhere inside the broker, and is never retained there. */
  private consume(packet: PublishPacket): void {
    packet.topic = CONSUMED_TOPIC;
    packet.retain = false;
  }

  /**
   * MQTT 5 answers a refused QoS 1/2 publish with a reason code and keeps the connection; 3.1.1 has no
   * negative acknowledgement, so its connection is closed (MQTT-3.3.5-2) and the device's log shows why.
   */
  private refusePublish(session: Session, packet: PublishPacket, reason: number, text: string, done: (err?: Error | null) => void): void {
    if (session.wire.version === 5) {
      if (packet.qos > 0 && packet.messageId !== undefined) session.wire.refuseAck(packet.messageId, reason, text);
      this.consume(packet);
      return done(null);
    }
    done(new Error(text));
  }

  private authorizeSubscribe(client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void {
    const session = this.sessions.get(client);
    const device = session?.device;
    if (!session || !device) return done(new Error('not authenticated'));
    if (!filterAllowed(sub.topic, device.id) && !aliasFilterAllowed(sub.topic)) {
      this.log.info({ deviceId: device.id, side: session.side, remote: session.remote, topic: sub.topic.slice(0, 100) }, 'mqtt subscribe refused: filter outside devices/ID/ of this device');
      return done(null, null);
    }
    if (!session.filters.has(sub.topic) && session.filters.size >= this.config.mqttMaxSubscriptions) {
      session.overCap++;
      session.wire.refuseSubscription(sub.topic, REASON.quotaExceeded, `at most ${this.config.mqttMaxSubscriptions} subscriptions per connection (--mqtt-max-subscriptions)`);
      return done(null, null);
    }
    // Any QoS is granted; readings are published at QoS 1 (see send), and MQTT delivers at the lower of the two.
    if (!session.filters.has(sub.topic) && aliasFilterAllowed(sub.topic)) session.firmwareFilters.push(sub.topic);
    session.filters.set(sub.topic, sub.qos);
    done(null, sub);
  }

  /** A SUBSCRIBE was answered: log filters refused over the cap (once per packet), then send the retained values. */
  private subscribed(client: Client, subs: { topic: string; qos: number }[]): void {
    const session = this.sessions.get(client);
    if (!session?.device) return;
    if (session.overCap > 0) {
      this.relay.countError('E_LIMIT');
      this.log.info(
        { deviceId: session.device.id, side: session.side, remote: session.remote, refused: session.overCap },
        `mqtt subscription refused: more than ${this.config.mqttMaxSubscriptions} filters on one connection (--mqtt-max-subscriptions / IOTC_MQTT_MAX_SUBSCRIPTIONS)`,
      );
      session.overCap = 0;
    }
    // Each granted filter costs a look-up of retained values: it counts against the message rate like a publish.
    const granted = subs.filter((s) => s.qos !== 128).length;
    if (granted > 0 && !session.bucket.take(granted)) {
      this.log.info({ deviceId: session.device.id, side: session.side, remote: session.remote }, 'closing mqtt connection: subscriptions over the rate limit (--rate-limit / IOTC_RATE_LIMIT)');
      this.relay.countError('E_RATE_LIMITED');
      this.closeSession(session, client, REASON.messageRateTooHigh, `at most ${this.config.rateLimit} messages (or filters subscribed) a second`);
      return;
    }
    void this.sendRetained(session, client, subs);
  }

  private unsubscribed(client: Client, topics: string[]): void {
    const session = this.sessions.get(client);
    if (!session) return;
    for (const topic of topics) session.filters.delete(topic);
    session.firmwareFilters = session.firmwareFilters.filter((f) => session.filters.has(f));
  }

  private authorizeForward(client: Client, packet: { topic: string }): any {
    const device = this.sessions.get(client)?.device;
    return device && (sensorFromTopic(packet.topic, device.id) !== null || aliasFilterAllowed(packet.topic)) ? packet : null;
  }

  // ---- delivery ----

  private deliver(session: Session, client: Client, reading: StoredReading): void {
    if (session.closed) return;
    if (!session.ready) {
      const had = session.early.get(reading.sensor);
      if (!had || had.seq < reading.seq) session.early.set(reading.sensor, reading);
      return;
    }
    this.send(session, client, reading, false);
  }

  /** A new subscription gets the latest value (or chunk) of each matching sensor the other side wrote, as a retained message. */
  private async sendRetained(session: Session, client: Client, subs: { topic: string; qos: number }[]): Promise<void> {
    const device = session.device;
    if (!device || session.closed) return;
    const filters = subs.filter((s) => s.qos !== 128 && session.wire.retainHandling(s.topic) !== 2).map((s) => s.topic);
    if (filters.length === 0) return;
    try {
      const firmware = filters.filter(aliasFilterAllowed);
      const rows = await latestMatching(this.relay, device.id, otherSide(session.side), filters.filter((f) => !aliasFilterAllowed(f)));
      if (firmware.length > 0) {
        // A firmware's command filter names sensors, not devices/ID/ topics: each sensor is tried against the few it holds.
        for (const r of await this.relay.sensors(device.id, otherSide(session.side))) {
          if (firmware.some((f) => aliasDeliveryTopic(f, r.sensor) !== null)) rows.push(r);
        }
      }
      const chunks = session.blobs ? await latestBlobsMatching(this.relay.store, device.id, otherSide(session.side), filters.filter((f) => !aliasFilterAllowed(f))) : [];
      // A topic may hold both a text value and a chunk: the newer (by time) is retained last.
      const out = [...rows.map((r) => ({ time: r.time, go: () => this.send(session, client, r, true) })), ...chunks.map((b) => ({ time: b.time, go: () => session.blobs!.deliver(blobDelivery(b, b.data), true) }))];
      for (const o of out.sort((a, b) => a.time - b.time)) o.go();
    } catch (err) {
      this.log.warn({ err, deviceId: device.id }, 'could not send retained values');
    }
  }

  private send(session: Session, client: Client, r: StoredReading, retain: boolean): void {
    if (session.closed || isRpcSensor(r.sensor)) return;
    const targets = deliveryTargets(session, r.deviceId, r.sensor);
    if (targets.length === 0) return;
    if ((session.sent.get(r.sensor) ?? 0) >= r.seq) return;
    session.sent.set(r.sensor, r.seq);
    if (session.wire.queuedBytes > this.config.sendQueueBytes) {
      this.log.warn({ deviceId: r.deviceId, side: session.side }, 'closing slow mqtt receiver: send queue full');
      this.closeSession(session, client, REASON.quotaExceeded, new IotcError('E_SLOW_CONSUMER').message);
      return;
    }
    for (const t of targets) {
      // QoS 1 at most: a reading is a latest value, so a newer one supersedes a lost duplicate and QoS 2 buys nothing.
      const payload = t.firmware ? aliasPayload(r.value) : valuePayload(r.value);
      const packet = { cmd: 'publish', topic: t.topic, payload, qos: Math.min(t.qos, 1), retain, dup: false } as PublishPacket;
      publishToConnection(client, packet);
    }
  }

  // ---- calls (see rpc.ts) ----

  /** A publish to an rpc topic: an app's call (client side) or a device's answer (device side). */
  private rpcPublish(session: Session, client: Client, device: Device, packet: PublishPacket, rpc: { kind: RpcKind; id: string | null }, done: (err?: Error | null) => void): void {
    const expected = session.side === 'client' ? 'request' : 'response';
    if (rpc.id === null || rpc.kind !== expected) {
      const text = rpc.id === null
        ? 'the last level of an rpc topic is the call id: 1 to 64 characters, no / + #'
        : session.side === 'client' ? 'an app publishes calls to devices/ID/rpc/request/REQID' : 'a device cannot call; it answers on devices/ID/rpc/response/CALLID';
      this.log.info({ deviceId: device.id, side: session.side, topic: packet.topic.slice(0, 100) }, `mqtt rpc publish refused: ${text}`);
      return this.refusePublish(session, packet, REASON.notAuthorized, text, done);
    }
    const role = session.attachment?.role ?? 'owner';
    if (session.side === 'client' && !roleAllows(role, 'call')) {
      this.relay.countError('E_FORBIDDEN');
      this.log.info({ deviceId: device.id, remote: session.remote }, 'mqtt rpc publish refused: a viewer may not call');
      return this.refusePublish(session, packet, REASON.notAuthorized, `E_FORBIDDEN: ${forbidden(role, 'call').message}`, done);
    }
    if (!session.bucket.take()) return this.refusePublish(session, packet, REASON.quotaExceeded, `at most ${this.config.rateLimit} messages a second`, done);
    const { payload } = packet;
    this.consume(packet);
    done(null);
    runRpc(this.relay, this.log, { side: session.side, filters: session.filters, isClosed: () => session.closed }, client, device, rpc.id, payload);
  }

  /** A call for a device-side connection: published on its request topic if it subscribed to it. */
  private deliverCall(session: Session, client: Client, c: DeviceCall): void {
    if (session.closed || !session.ready) return;
    const payload = Buffer.from(JSON.stringify({ method: c.method, params: c.params ?? null }));
    publishTo(session.filters, client, rpcTopic(session.device!.id, 'request', c.call), payload);
  }

  /** A device subscribed to its calls (or came back with such a subscription): its persistent calls that wait are sent. */
  private callsSubscribed(client: Client, filters?: string[]): void {
    const session = this.sessions.get(client);
    if (!session?.device || session.closed || session.side !== 'device' || !session.ready) return;
    const probe = rpcTopic(session.device.id, 'request', 'c_probe');
    if ((filters ? new FilterIndex(filters.map((f) => [f, 0])) : session.filters).qosFor(probe) < 0) return;
    void this.relay.calls.deliverOpen(session.device.id, session.receiver);
  }

  private revoke(session: Session, client: Client, err: IotcError): void {
    session.revoked = true;
    this.log.info({ deviceId: session.device?.id, side: session.side, code: err.code }, 'closing mqtt connection: device key no longer valid');
    this.closeSession(session, client, REASON.notAuthorized, err.message);
  }

  private closeSession(session: Session, client: Client, reason: number, text: string): void {
    if (session.closed) return;
    session.wire.disconnect(reason, text);
    client.close();
  }

  stopAccepting(): void {
    this.accepting = false;
    for (const server of this.servers) server.close();
  }

  /** Closes every MQTT connection (MQTT 5 clients are told the server is shutting down) and the broker. */
  async close(): Promise<void> {
    this.stopAccepting();
    for (const session of this.live) {
      if (session.wire.version === 5) session.wire.disconnect(REASON.serverShuttingDown, 'Server is shutting down');
    }
    await new Promise<void>((resolve) => this.broker.close(() => resolve()));
    for (const session of this.live) session.wire.destroy();
    this.wss.close();
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}
