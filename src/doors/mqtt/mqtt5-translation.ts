/**
 * MQTT 5 spoken to a broker that knows only 3.1/3.1.1, packet by packet: the client's CONNECT, PUBLISH,
 * SUBSCRIBE … become their 3.1.1 forms on the way in, and the broker's answers get MQTT 5 reason codes on the
 * way out. A publish's content type is kept beside the broker (see PendingContentTypes): it types binary chunks.
 * Other properties that have no meaning for readings (user properties, message expiry …) are dropped.
 */
import type { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import { PendingContentTypes } from './content-type.js';
import { CONNACK_REASON, REASON } from './reason-codes.js';

export type Pkt = Record<string, any>;

/** What the translation needs of its connection. */
export interface TranslatedConnection {
  /** The client's socket, for the few answers that end it at once. */
  raw: Duplex;
  /** The keep-alive to hold a client to, given the one it asked for. */
  grantKeepalive(asked: number): number;
  /** Tells the client why it is disconnected, then closes. */
  disconnect(reason: number, text: string): void;
}

export class Mqtt5Translation {
  readonly contentTypes = new PendingContentTypes();
  private readonly topicAliases = new Map<number, string>();
  private readonly unsubscribeCounts = new Map<number, number>();
  private readonly refusedAcks = new Map<number, { reason: number; text?: string }>();
  private readonly retainHandlingByTopic = new Map<string, number>();
  /** Per SUBSCRIBE (by message id), its filters in the order the broker answers them. */
  private readonly subscribeTopics = new Map<number, string[]>();
  /** Filters the door refused for a reason more precise than "not authorized", with the reason's text. */
  private readonly refusedSubscriptions = new Map<string, { reason: number; text: string }>();
  private topicAliasMax = 0;
  /** The keep-alive granted when it differs from the one asked for, told to the client in the CONNACK. */
  private serverKeepAlive: number | undefined;

  constructor(private readonly conn: TranslatedConnection) {}

  /** What the client asked for retained messages on this subscription (0 send, 1 only if new, 2 never). */
  retainHandling(topic: string): number {
    return this.retainHandlingByTopic.get(topic) ?? 0;
  }

  /** The SUBACK refusing this filter carries `reason` (e.g. quota exceeded) instead of "not authorized". */
  refuseSubscription(topic: string, reason: number, text: string): void {
    this.refusedSubscriptions.set(topic, { reason, text });
  }

  /** The broker's next PUBACK/PUBREC for this message id carries `reason` (and `text`) instead of success. */
  refuseAck(messageId: number, reason: number, text?: string): void {
    this.refusedAcks.set(messageId, { reason, text });
  }

  /** An MQTT 5 packet from the client as the broker's 3.1.1 packet; null drops it. */
  down(p: Pkt): Pkt | null {
    switch (p.cmd) {
      case 'connect': {
        if (p.properties?.authenticationMethod) {
          this.conn.raw.end(mqttPacket.generate({ cmd: 'connack', reasonCode: REASON.badAuthMethod, sessionPresent: false } as any, { protocolVersion: 5 }));
          return null;
        }
        // 3.1.1's "clean session off" is MQTT 5's session kept after the connection ends: a session
        // expiry interval above zero keeps it, zero (the default) ends it with the connection.
        const expiry = p.properties?.sessionExpiryInterval ?? 0;
        const keepalive = this.conn.grantKeepalive(p.keepalive ?? 0);
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
        this.contentTypes.received(topic, p.properties?.contentType);
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
          this.conn.raw.destroy();
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
  up(p: Pkt): Pkt | null {
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
        const contentType = this.contentTypes.sending(p.topic, p.payload);
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
    this.conn.disconnect(reason, text);
    return null;
  }
}
