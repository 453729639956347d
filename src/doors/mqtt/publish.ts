/**
 * PUBLISH on the MQTT door: a reading, a binary chunk or a call, stored through the relay before the broker
 * acknowledges it (the PUBACK waits for the commit), and never routed by the broker itself.
 */
import type { Aedes, Client, PublishPacket } from 'aedes';
import { IotcError, toIotcError } from '../../core/errors.js';
import { isSensorName } from '../../core/messages.js';
import { forbidden, roleAllows } from '../../core/sharing.js';
import type { Device, StoredReading } from '../../store/types.js';
import type { WriteSettler } from '../../core/write-batcher.js';
import { chunkTypeOf } from './content-type.js';
import { parseRpcTopic, runRpc } from './rpc.js';
import type { RpcKind } from './rpc.js';
import type { DoorContext, Session } from './session.js';
import { aliasPublish, payloadValue, sensorFromTopic } from './topics.js';
import { REASON } from './reason-codes.js';

type Done = (err?: Error | null) => void;

/** Where a publish goes once the relay has stored it: a topic nobody may subscribe to, so the broker routes it nowhere. */
const CONSUMED_TOPIC = '$IOTC/consumed';

export function authorizePublish(ctx: DoorContext, client: Client | null, session: Session | undefined, packet: PublishPacket, done: Done): void {
  // Taken first, whatever becomes of the publish: the wire lists the content type of every MQTT 5 publish.
  const contentType = session?.wire.takeContentType(packet.topic);
  const device = session?.device;
  if (!session || !device || session.revoked) return done(new Error('not authenticated'));
  const rpc = parseRpcTopic(packet.topic, device.id);
  if (rpc) return rpcPublish(ctx, session, client!, device, packet, rpc, done);
  // The device's own tree, or a firmware's default layout (Tasmota tele/T/…, ESPHome N/…/state) mapped onto it.
  const own = sensorFromTopic(packet.topic, device.id);
  const alias = own === null ? aliasPublish(packet.topic) : null;
  const sensor = own ?? (alias === null ? null : alias === 'drop' ? '' : alias.sensor);
  if (sensor === null || (alias !== 'drop' && !isSensorName(sensor))) {
    ctx.log.info({ deviceId: device.id, side: session.side, remote: session.remote, topic: packet.topic.slice(0, 100) }, 'mqtt publish refused: topic outside devices/ID/SENSOR of this device');
    return refusePublish(session, packet, REASON.notAuthorized, 'publish only to devices/ID/SENSOR of your own device', done);
  }
  const role = session.attachment?.role ?? 'owner';
  if (alias !== 'drop' && !roleAllows(role, 'write')) {
    // A shared viewer's write never reaches the device: MQTT 5 gets "not authorized", 3.1.1 loses the connection.
    ctx.relay.countError('E_FORBIDDEN');
    ctx.log.info({ deviceId: device.id, side: session.side, remote: session.remote }, 'mqtt publish refused: a viewer may not write');
    return refusePublish(session, packet, REASON.notAuthorized, `E_FORBIDDEN: ${forbidden(role, 'write').message}`, done);
  }
  if (!session.bucket.take()) {
    ctx.log.info({ deviceId: device.id, side: session.side }, 'mqtt publish refused: rate limit');
    return refusePublish(session, packet, REASON.quotaExceeded, `at most ${ctx.config.rateLimit} messages a second`, done);
  }
  if (alias === 'drop') {
    // Discovery announcements: acknowledged so the firmware carries on, and kept nowhere.
    consume(packet);
    return done(null);
  }
  const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
  let chunkType: string | null = null;
  try {
    chunkType = ctx.blobs ? chunkTypeOf(payload, contentType) : null;
  } catch (err) {
    return refuseReading(ctx, session, packet, toIotcError(err), done);
  }
  if (chunkType !== null) return publishBlob(ctx, session, packet, device, sensor, chunkType, payload, done);
  if (ctx.blobs && payload.length > ctx.config.maxFrameBytes) {
    ctx.log.info({ deviceId: device.id, side: session.side }, 'mqtt publish refused: text payload over --max-frame');
    return refusePublish(session, packet, REASON.packetTooLarge, `text payloads are limited to ${ctx.config.maxFrameBytes} bytes (--max-frame); binary chunks to ${ctx.config.maxBlobBytes}`, done);
  }
  let value: unknown;
  try {
    value = payloadValue(payload);
  } catch (err) {
    return refuseReading(ctx, session, packet, toIotcError(err), done);
  }
  ctx.relay.putWith(device, session.side, [{ sensor, value }], new PublishedReading(ctx, session, packet, done));
  // As a WebSocket's: an account with a commit's worth of readings waiting is read no further until they leave.
  if (!session.wire.accountHeld && ctx.relay.holdWhileBusy(device.userId, session.wire)) session.wire.holdForAccount();
}

/** One publish on its way to the store: answered (PUBACK, refusal or a closed connection) once the store settles it. */
class PublishedReading implements WriteSettler<StoredReading> {
  constructor(
    private readonly ctx: DoorContext,
    private readonly session: Session,
    private readonly packet: PublishPacket,
    private readonly done: Done,
  ) {}

  settle(err: unknown, stored: readonly StoredReading[] | null): void {
    if (stored !== null) {
      consume(this.packet);
      return this.done(null);
    }
    const e = toIotcError(err);
    if (e.code === 'E_VALIDATION' || e.code === 'E_LIMIT') return refuseReading(this.ctx, this.session, this.packet, e, this.done);
    if (e.code === 'E_INTERNAL') this.ctx.log.error({ err, deviceId: this.session.device?.id }, 'mqtt publish failed');
    // No acknowledgement: the connection closes and a QoS 1 client sends the message again after reconnecting.
    this.done(e);
  }
}

/** A reading the hub will not store (a value breaking the value rules, a sensor beyond the limit): refused alone, saying why. */
function refuseReading(ctx: DoorContext, session: Session, packet: PublishPacket, err: IotcError, done: Done): void {
  ctx.relay.countError(err.code);
  ctx.log.info({ deviceId: session.device?.id, side: session.side, code: err.code, reason: err.message }, 'mqtt publish refused');
  refusePublish(session, packet, err.code === 'E_LIMIT' ? REASON.quotaExceeded : REASON.payloadFormatInvalid, err.message, done);
}

/** A binary chunk (see chunkTypeOf): stored (the PUBACK waits for the commit) and relayed byte-exact. */
function publishBlob(ctx: DoorContext, session: Session, packet: PublishPacket, device: Device, sensor: string, type: string, payload: Buffer, done: Done): void {
  if (payload.length > ctx.config.maxBlobBytes) {
    ctx.log.info({ deviceId: device.id, side: session.side }, 'mqtt publish refused: binary chunk over --max-blob');
    return refusePublish(session, packet, REASON.packetTooLarge, `binary chunks are limited to ${ctx.config.maxBlobBytes} bytes (--max-blob)`, done);
  }
  ctx.blobs!.put(device.id, session.side, sensor, type, payload).then(
    () => {
      consume(packet);
      done(null);
    },
    (err) => {
      const e = toIotcError(err);
      if (e.code === 'E_INTERNAL') ctx.log.error({ err, deviceId: device.id }, 'mqtt binary publish failed');
      done(e);
    },
  );
}

/** The relay is the only router: a publish it has stored goes nowhere inside the broker, and is never retained there. */
function consume(packet: PublishPacket): void {
  packet.topic = CONSUMED_TOPIC;
  packet.retain = false;
}

type PublishCallback = (error?: Error) => void;

/**
 * A consumed publish skips the broker's routing altogether. It found no subscriber, but on the way it copied the
 * packet, asked the session store for offline subscribers of its topic and matched the topic in the emitter, for
 * every message. Any other publish (the broker's own) still takes the usual way.
 */
export function skipConsumedRouting(broker: Aedes): void {
  const route = broker.publish.bind(broker) as (packet: PublishPacket, client: unknown, done?: PublishCallback) => void;
  (broker as unknown as { publish: typeof route }).publish = (packet, client, done) => {
    if (packet.topic !== CONSUMED_TOPIC) return route(packet, client, done);
    // Called as publish(packet, done) or publish(packet, client, done); answered after this turn, as routing did.
    const callback = typeof client === 'function' ? (client as PublishCallback) : done;
    if (callback) process.nextTick(callback);
  };
}

/**
 * MQTT 5 answers a refused QoS 1/2 publish with a reason code and keeps the connection; 3.1.1 has no
 * negative acknowledgement, so its connection is closed (MQTT-3.3.5-2) and the device's log shows why.
 */
function refusePublish(session: Session, packet: PublishPacket, reason: number, text: string, done: Done): void {
  if (session.wire.version === 5) {
    if (packet.qos > 0 && packet.messageId !== undefined) session.wire.refuseAck(packet.messageId, reason, text);
    consume(packet);
    return done(null);
  }
  done(new Error(text));
}

/** A publish to an rpc topic (see rpc.ts): an app's call (client side) or a device's answer (device side). */
function rpcPublish(ctx: DoorContext, session: Session, client: Client, device: Device, packet: PublishPacket, rpc: { kind: RpcKind; id: string | null }, done: Done): void {
  const expected = session.side === 'client' ? 'request' : 'response';
  if (rpc.id === null || rpc.kind !== expected) {
    const text = rpc.id === null
      ? 'the last level of an rpc topic is the call id: 1 to 64 characters, no / + #'
      : session.side === 'client' ? 'an app publishes calls to devices/ID/rpc/request/REQID' : 'a device cannot call; it answers on devices/ID/rpc/response/CALLID';
    ctx.log.info({ deviceId: device.id, side: session.side, topic: packet.topic.slice(0, 100) }, `mqtt rpc publish refused: ${text}`);
    return refusePublish(session, packet, REASON.notAuthorized, text, done);
  }
  const role = session.attachment?.role ?? 'owner';
  if (session.side === 'client' && !roleAllows(role, 'call')) {
    ctx.relay.countError('E_FORBIDDEN');
    ctx.log.info({ deviceId: device.id, remote: session.remote }, 'mqtt rpc publish refused: a viewer may not call');
    return refusePublish(session, packet, REASON.notAuthorized, `E_FORBIDDEN: ${forbidden(role, 'call').message}`, done);
  }
  if (!session.bucket.take()) return refusePublish(session, packet, REASON.quotaExceeded, `at most ${ctx.config.rateLimit} messages a second`, done);
  const { payload } = packet;
  consume(packet);
  done(null);
  runRpc(ctx.relay, ctx.log, { side: session.side, filters: session.filters, isClosed: () => session.closed }, client, device, rpc.id, payload);
}
