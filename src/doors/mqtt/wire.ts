import { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';

/**
 * The byte stream between one MQTT client and the embedded broker.
 *
 * - It frames packets itself, so a packet larger than the limit is refused before it is buffered
 *   (the broker's parser would otherwise collect up to 256 MB for one packet).
 * - MQTT 3.1 and 3.1.1 pass through untouched. The broker library speaks only those, so an MQTT 5
 *   client is translated packet by packet: its CONNECT, PUBLISH, SUBSCRIBE … become their 3.1.1 forms
 *   on the way in, and the broker's answers get MQTT 5 reason codes on the way out. A publish's content
 *   type is kept beside the broker (takeContentType, expectContentType): it types binary chunks. Other
 *   properties that have no meaning for readings (user properties, message expiry …) are dropped.
 */

type Pkt = Record<string, any>;

/** MQTT 5 reason codes this door uses. */
export const REASON = {
  success: 0x00,
  unspecified: 0x80,
  malformed: 0x81,
  protocolError: 0x82,
  unsupportedVersion: 0x84,
  clientIdNotValid: 0x85,
  badCredentials: 0x86,
  notAuthorized: 0x87,
  serverUnavailable: 0x88,
  serverShuttingDown: 0x8b,
  badAuthMethod: 0x8c,
  topicNameInvalid: 0x90,
  packetTooLarge: 0x95,
  messageRateTooHigh: 0x96,
  quotaExceeded: 0x97,
  topicAliasInvalid: 0x94,
  payloadFormatInvalid: 0x99,
} as const;

/**
 * Content types waiting for their publish: more than are ever in flight at once, a bound only against a broker
 * that would drop publishes unseen. Inbound ones are small (the broker's input buffer holds many small publishes);
 * outbound ones, per topic, hold a chunk's bytes.
 */
const MAX_PENDING_INBOUND = 4096;
const MAX_PENDING_OUTBOUND = 64;

/** 3.1.1 CONNACK return codes → MQTT 5 reason codes. */
const CONNACK_REASON = [REASON.success, REASON.unsupportedVersion, REASON.clientIdNotValid, REASON.serverUnavailable, REASON.badCredentials, REASON.notAuthorized];

export class WireError extends Error {
  override name = 'WireError';
}

export class MqttWire extends Duplex {
  /** 3, 4 or 5 once the CONNECT arrived; 0 before. */
  version = 0;
  private pending: Buffer = Buffer.alloc(0);
  private readonly maxPacketBytes: number;
  private readonly maxKeepaliveSeconds: number;
  // MQTT 5 only:
  private inParser: ReturnType<typeof mqttPacket.parser> | null = null;
  private outParser: ReturnType<typeof mqttPacket.parser> | null = null;
  private readonly topicAliases = new Map<number, string>();
  private readonly unsubscribeCounts = new Map<number, number>();
  private readonly refusedAcks = new Map<number, { reason: number; text?: string }>();
  /** The content type of each publish handed to the broker, in order: the broker authorizes them in that order. */
  private readonly inboundContentTypes: { topic: string; contentType: string | undefined }[] = [];
  /** Chunks on their way out through the broker, by topic: the content type their MQTT 5 publish carries. */
  private readonly outboundContentTypes = new Map<string, { payload: Buffer; contentType: string }[]>();
  private readonly retainHandlingByTopic = new Map<string, number>();
  /** Per SUBSCRIBE (by message id), its filters in the order the broker answers them. */
  private readonly subscribeTopics = new Map<number, string[]>();
  /** Filters the door refused for a reason more precise than "not authorized", with the reason's text. */
  private readonly refusedSubscriptions = new Map<string, { reason: number; text: string }>();
  private topicAliasMax = 0;
  /** The keep-alive granted when it differs from the one asked for, told to MQTT 5 clients in the CONNACK. */
  private serverKeepAlive: number | undefined;

  /** maxKeepaliveSeconds: a CONNECT asking for no keep-alive (0) or a longer one gets this one instead. */
  constructor(readonly raw: Duplex, opts: { maxPacketBytes: number; maxKeepaliveSeconds?: number }) {
    super({ allowHalfOpen: false });
    this.maxPacketBytes = opts.maxPacketBytes;
    this.maxKeepaliveSeconds = Math.min(opts.maxKeepaliveSeconds ?? 0xffff, 0xffff);
    raw.on('data', (chunk: Buffer) => this.fromClient(chunk));
    raw.on('end', () => this.push(null));
    raw.on('error', (err) => this.destroy(err));
    raw.on('close', () => this.destroy());
    raw.on('drain', () => this.emit('rawDrain'));
  }

  /** Bytes waiting to reach the client, here and in the socket. */
  get queuedBytes(): number {
    return this.writableLength + this.raw.writableLength;
  }

  /** MQTT 5: what the client asked for retained messages on this subscription (0 send, 1 only if new, 2 never). */
  retainHandling(topic: string): number {
    return this.retainHandlingByTopic.get(topic) ?? 0;
  }

  /** MQTT 5: the SUBACK refusing this filter carries `reason` (e.g. quota exceeded) instead of "not authorized". */
  refuseSubscription(topic: string, reason: number, text: string): void {
    if (this.version === 5) this.refusedSubscriptions.set(topic, { reason, text });
  }

  /** The keep-alive to hold a client to: the one it asked for, unless that is none or longer than allowed. */
  private grantedKeepalive(asked: number): number {
    return asked === 0 || asked > this.maxKeepaliveSeconds ? this.maxKeepaliveSeconds : asked;
  }

  /** MQTT 5: the broker's next PUBACK/PUBREC for this message id carries `reason` (and `text`) instead of success. */
  refuseAck(messageId: number, reason: number, text?: string): void {
    this.refusedAcks.set(messageId, { reason, text });
  }

  /**
   * MQTT 5: the Content Type of the publish to `topic` the broker is authorizing (undefined for 3.1.1).
   * The broker hands publishes over in the order they came; entries of any it dropped before (it then
   * closes the connection) are skipped by their topic.
   */
  takeContentType(topic: string): string | undefined {
    for (let next = this.inboundContentTypes.shift(); next; next = this.inboundContentTypes.shift()) {
      if (next.topic === topic) return next.contentType;
    }
    return undefined;
  }

  /** MQTT 5: the broker's publish of these bytes on `topic` goes out with this Content Type (payload format 0). */
  expectContentType(topic: string, payload: Buffer, contentType: string): void {
    if (this.version !== 5) return;
    const list = this.outboundContentTypes.get(topic) ?? [];
    // A publish the broker never wrote (the connection closing) must not hold its bytes for good.
    if (list.length >= MAX_PENDING_OUTBOUND) list.shift();
    list.push({ payload, contentType });
    this.outboundContentTypes.set(topic, list);
  }

  /** The content type expected for an outbound publish of these bytes, matched by topic and bytes. */
  private outboundContentType(topic: string, payload: Buffer): string | undefined {
    const list = this.outboundContentTypes.get(topic);
    if (!list) return undefined;
    const i = list.findIndex((e) => e.payload.length === payload.length && e.payload.equals(payload));
    if (i < 0) return undefined;
    const { contentType } = list[i];
    list.splice(i, 1);
    if (list.length === 0) this.outboundContentTypes.delete(topic);
    return contentType;
  }

  /** Tells an MQTT 5 client why it is being disconnected (3.1.1 has no way to), then closes. */
  disconnect(reason: number, text?: string): void {
    if (this.version === 5 && this.raw.writable) {
      const properties = text ? { reasonString: text.slice(0, 200) } : undefined;
      this.raw.write(mqttPacket.generate({ cmd: 'disconnect', reasonCode: reason, properties } as any, { protocolVersion: 5 }));
    }
    this.raw.end();
    setTimeout(() => this.raw.destroy(), 1000).unref();
  }

  // ---- client → broker ----

  private fromClient(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    try {
      for (;;) {
        const frame = this.nextFrame();
        if (!frame) break;
        this.onFrame(frame);
        if (this.destroyed) return;
      }
    } catch (err) {
      this.fail(err as Error);
    }
  }

  /** One whole packet off the front of `pending`, or null if it has not all arrived. */
  private nextFrame(): Buffer | null {
    const buf = this.pending;
    if (buf.length < 2) return null;
    let remaining = 0;
    let i = 1;
    for (let mul = 1; ; mul *= 128, i++) {
      if (i > 4) throw new WireError('malformed remaining length');
      if (i >= buf.length) return null;
      remaining += (buf[i] & 0x7f) * mul;
      if ((buf[i] & 0x80) === 0) break;
    }
    if (remaining > this.maxPacketBytes) {
      const err = new WireError(`packet of ${remaining} bytes is larger than the limit of ${this.maxPacketBytes}`);
      (err as Error & { reason?: number }).reason = REASON.packetTooLarge;
      throw err;
    }
    const total = i + 1 + remaining;
    if (buf.length < total) return null;
    this.pending = buf.subarray(total);
    return buf.subarray(0, total);
  }

  /**
   * A 3.1/3.1.1 CONNECT with its keep-alive (2 bytes at `at`) held to the limit: without one, a connection
   * that goes silent would be kept forever (the broker times out only those that asked for a keep-alive).
   */
  private withKeepalive(frame: Buffer, at: number): Buffer {
    if (at + 2 > frame.length) throw new WireError('CONNECT too short');
    const asked = frame.readUInt16BE(at);
    const granted = this.grantedKeepalive(asked);
    if (granted === asked) return frame;
    const copy = Buffer.from(frame);
    copy.writeUInt16BE(granted, at);
    return copy;
  }

  private onFrame(frame: Buffer): void {
    if (this.version === 0) {
      if (frame[0] >> 4 !== 1) throw new WireError('the first packet must be CONNECT');
      const at = connectLevelAt(frame);
      this.version = frame[at] & 0x7f;
      if (this.version === 5) this.startTranslating();
      else frame = this.withKeepalive(frame, at + 2);
    }
    if (this.version !== 5) {
      this.toBroker(frame);
      return;
    }
    this.inParser!.parse(frame);
  }

  private toBroker(bytes: Buffer): void {
    if (!this.push(bytes)) this.raw.pause();
  }

  override _read(): void {
    if (this.raw.isPaused()) this.raw.resume();
  }

  private startTranslating(): void {
    this.inParser = mqttPacket.parser({ protocolVersion: 5 });
    this.inParser.on('packet', (p: Pkt) => {
      const v4 = this.down(p);
      if (v4) this.toBroker(mqttPacket.generate(v4 as any, { protocolVersion: 4 }));
    });
    this.inParser.on('error', (err: Error) => this.fail(err));
    this.outParser = mqttPacket.parser({ protocolVersion: 4 });
    this.outParser.on('packet', (p: Pkt) => {
      const v5 = this.up(p);
      if (v5) this.raw.write(mqttPacket.generate(v5 as any, { protocolVersion: 5 }));
    });
    this.outParser.on('error', (err: Error) => this.destroy(err));
  }

  /** An MQTT 5 packet from the client as the broker's 3.1.1 packet; null drops it. */
  private down(p: Pkt): Pkt | null {
    switch (p.cmd) {
      case 'connect': {
        if (p.properties?.authenticationMethod) {
          this.raw.end(mqttPacket.generate({ cmd: 'connack', reasonCode: REASON.badAuthMethod, sessionPresent: false } as any, { protocolVersion: 5 }));
          return null;
        }
        // 3.1.1's "clean session off" is MQTT 5's session kept after the connection ends: a session
        // expiry interval above zero keeps it, zero (the default) ends it with the connection.
        const expiry = p.properties?.sessionExpiryInterval ?? 0;
        const keepalive = this.grantedKeepalive(p.keepalive ?? 0);
        if (keepalive !== p.keepalive) this.serverKeepAlive = keepalive;
        return {
          cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: expiry === 0, clientId: p.clientId, keepalive,
          username: p.username, password: p.password,
          will: p.will ? { topic: p.will.topic, payload: p.will.payload, qos: p.will.qos, retain: p.will.retain } : undefined,
        };
      }
      case 'publish': {
        let topic: string = p.topic;
        const alias: number | undefined = p.properties?.topicAlias;
        if (alias !== undefined) {
          if (alias < 1 || alias > this.topicAliasMax) return this.protocolError(REASON.topicAliasInvalid, 'topic alias out of range');
          if (topic) this.topicAliases.set(alias, topic);
          else topic = this.topicAliases.get(alias) ?? '';
          if (!topic) return this.protocolError(REASON.topicAliasInvalid, 'unknown topic alias');
        }
        if (this.inboundContentTypes.length >= MAX_PENDING_INBOUND) this.inboundContentTypes.shift();
        this.inboundContentTypes.push({ topic, contentType: p.properties?.contentType });
        return { cmd: 'publish', topic, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup, messageId: p.messageId };
      }
      case 'subscribe':
        for (const s of p.subscriptions) {
          if (s.rh) this.retainHandlingByTopic.set(s.topic, s.rh);
          else this.retainHandlingByTopic.delete(s.topic);
        }
        // The broker answers each distinct filter once, in the order it first appears.
        this.subscribeTopics.set(p.messageId, [...new Set<string>(p.subscriptions.map((s: Pkt) => s.topic))]);
        return { cmd: 'subscribe', messageId: p.messageId, subscriptions: p.subscriptions.map((s: Pkt) => ({ topic: s.topic, qos: s.qos })) };
      case 'unsubscribe':
        this.unsubscribeCounts.set(p.messageId, p.unsubscriptions.length);
        return { cmd: 'unsubscribe', messageId: p.messageId, unsubscriptions: p.unsubscriptions };
      case 'puback':
      case 'pubrec':
      case 'pubrel':
      case 'pubcomp':
        return { cmd: p.cmd, messageId: p.messageId };
      case 'pingreq':
        return { cmd: 'pingreq' };
      case 'disconnect':
        // Reason 0x04 asks for the will to be sent: end the connection without a clean DISCONNECT.
        if (p.reasonCode === 0x04) {
          this.raw.destroy();
          return null;
        }
        return { cmd: 'disconnect' };
      case 'auth':
        return this.protocolError(REASON.badAuthMethod, 'enhanced authentication is not supported');
      default:
        return this.protocolError(REASON.protocolError, `unexpected ${p.cmd} packet`);
    }
  }

  /** A 3.1.1 packet from the broker as the MQTT 5 packet for the client. */
  private up(p: Pkt): Pkt | null {
    switch (p.cmd) {
      case 'connack':
        return p.returnCode === 0
          ? {
              cmd: 'connack', sessionPresent: p.sessionPresent, reasonCode: 0,
              properties: { subscriptionIdentifiersAvailable: false, sharedSubscriptionAvailable: false, topicAliasMaximum: this.announceTopicAliases(), ...(this.serverKeepAlive === undefined ? {} : { serverKeepAlive: this.serverKeepAlive }) },
            }
          : { cmd: 'connack', sessionPresent: false, reasonCode: CONNACK_REASON[p.returnCode] ?? REASON.unspecified };
      case 'suback': {
        const topics = this.subscribeTopics.get(p.messageId) ?? [];
        this.subscribeTopics.delete(p.messageId);
        let text: string | undefined;
        const granted = p.granted.map((g: number, i: number) => {
          if (g !== 128) return g;
          const refused = this.refusedSubscriptions.get(topics[i]);
          text ??= refused?.text;
          return refused?.reason ?? REASON.notAuthorized;
        });
        for (const topic of topics) this.refusedSubscriptions.delete(topic);
        return { cmd: 'suback', messageId: p.messageId, granted, ...(text ? { properties: { reasonString: text.slice(0, 200) } } : {}) };
      }
      case 'unsuback': {
        const n = this.unsubscribeCounts.get(p.messageId) ?? 1;
        this.unsubscribeCounts.delete(p.messageId);
        return { cmd: 'unsuback', messageId: p.messageId, granted: new Array(n).fill(0) };
      }
      case 'publish': {
        const contentType = this.outboundContentTypes.size > 0 ? this.outboundContentType(p.topic, p.payload) : undefined;
        const properties = contentType === undefined ? {} : { properties: { contentType, payloadFormatIndicator: false } };
        return { cmd: 'publish', topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup, messageId: p.messageId, ...properties };
      }
      case 'puback':
      case 'pubrec': {
        const refused = this.refusedAcks.get(p.messageId);
        this.refusedAcks.delete(p.messageId);
        if (refused === undefined) return { cmd: p.cmd, messageId: p.messageId };
        return { cmd: p.cmd, messageId: p.messageId, reasonCode: refused.reason, ...(refused.text ? { properties: { reasonString: refused.text.slice(0, 200) } } : {}) };
      }
      default:
        return { ...p };
    }
  }

  private announceTopicAliases(): number {
    this.topicAliasMax = 16;
    return this.topicAliasMax;
  }

  private protocolError(reason: number, text: string): null {
    this.disconnect(reason, text);
    return null;
  }

  private fail(err: Error): void {
    const reason = (err as Error & { reason?: number }).reason ?? REASON.malformed;
    if (this.version === 5) this.disconnect(reason, err.message);
    this.destroy(err);
  }

  // ---- broker → client ----

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.toClient(chunk, done);
  }

  override _writev(chunks: { chunk: Buffer }[], done: (err?: Error | null) => void): void {
    this.toClient(chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk)), done);
  }

  private toClient(bytes: Buffer, done: (err?: Error | null) => void): void {
    if (this.version === 5) this.outParser!.parse(bytes);
    else this.raw.write(bytes);
    // Hold the broker's writes while the socket is full, so its drain timeout catches clients that stop reading.
    if (this.raw.writableNeedDrain) this.once('rawDrain', () => done());
    else done();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.raw.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // A socket already ending carries a DISCONNECT with the reason: let it go out (disconnect() destroys it later).
    if (!this.raw.destroyed && !this.raw.writableEnded) this.raw.destroy();
    done(err);
  }
}

/** Where a CONNECT frame holds its protocol level (3 = 3.1, 4 = 3.1.1, 5 = 5.0; the bridge bit aside); the keep-alive is 2 bytes on. */
function connectLevelAt(frame: Buffer): number {
  let i = 1;
  while (i < frame.length && frame[i] & 0x80) i++;
  i++;
  if (i + 2 > frame.length) throw new WireError('CONNECT too short');
  const nameLength = frame.readUInt16BE(i);
  const at = i + 2 + nameLength;
  if (at >= frame.length) throw new WireError('CONNECT too short');
  return at;
}
