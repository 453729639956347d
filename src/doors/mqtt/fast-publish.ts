/**
 * PUBLISH from an MQTT 3.1/3.1.1 connection taken straight off the wire, when the broker has nothing of this
 * connection's in hand. Through the broker each one went through its parser's buffer list, a packet object, a
 * series of hooks, a PUBACK written in four pieces, a `setImmediate` and a routing call before the next read;
 * it is the same decision (authorizePublish) and the same acknowledgement after the commit, without them.
 *
 * Everything else (CONNECT, SUBSCRIBE, PINGREQ, QoS 2, MQTT 5, a publish the broker would refuse for its form)
 * still goes through the broker, and a publish is only taken here when the broker is idle for the connection,
 * so what a client sent is still handled in the order it was sent.
 */
import type { Client, PublishPacket } from 'aedes';
import { authorizePublish } from './publish.js';
import type { DoorContext, Session } from './session.js';

/** The broker's own fields this path reads: they tell whether it holds any of the connection's packets. */
interface BrokerClientState {
  /** Packets of the last read still being handled (aedes reads no more until they are done). */
  _parsingBatch: number;
  _keepaliveInterval: number;
  _keepaliveTimer: NodeJS.Timeout | null;
  closed: boolean;
  errored?: boolean;
}

/** As the broker is configured (door.ts): a topic deeper than this is refused there. */
const MAX_TOPIC_LEVELS = 32;

/** Publishes of one connection waiting for their commit before its socket is read no further. */
const MAX_IN_FLIGHT = 256;

/**
 * The PUBLISH of `size` bytes at `at`, if it is a QoS 0/1 one whose form the broker would accept; null for
 * anything else (QoS 2, a malformed or refused form), which the broker then handles and answers as it does.
 */
export function parsePublish(buf: Buffer, at: number, size: number): PublishPacket | null {
  const first = buf[at];
  const qos = (first >> 1) & 3;
  if (first >> 4 !== 3 || qos > 1) return null;
  const end = at + size;
  let i = at + 1;
  while (buf[i] & 0x80) i++;
  i++;
  if (i + 2 > end) return null;
  const topicEnd = i + 2 + buf.readUInt16BE(i);
  if (topicEnd > end) return null;
  const topic = buf.toString('utf8', i + 2, topicEnd);
  if (topic.length === 0 || topic.includes('#') || topic.includes('+') || levelsOver(topic, MAX_TOPIC_LEVELS)) return null;
  i = topicEnd;
  let messageId: number | undefined;
  if (qos === 1) {
    if (i + 2 > end) return null;
    messageId = buf.readUInt16BE(i);
    if (messageId === 0) return null;
    i += 2;
  }
  return { cmd: 'publish', topic, payload: buf.subarray(i, end), qos, dup: (first & 8) !== 0, retain: (first & 1) !== 0, messageId } as PublishPacket;
}

function levelsOver(topic: string, max: number): boolean {
  let levels = 1;
  for (let i = topic.indexOf('/'); i !== -1; i = topic.indexOf('/', i + 1)) if (++levels > max) return true;
  return false;
}

/** The wire's hook for one connection (MqttWire.takePublish): true when the publish was taken here. */
export function fastPublisher(ctx: DoorContext, session: Session, client: Client): (buf: Buffer, at: number, size: number) => boolean {
  const state = client as unknown as BrokerClientState;
  const wire = session.wire;
  let inFlight = 0;
  const settled = (packet: PublishPacket, err?: Error | null): void => {
    if (--inFlight === MAX_IN_FLIGHT / 2) wire.hold(false);
    // As the broker does with a refused publish: the connection ends (3.1.1 has no negative acknowledgement).
    if (err) return void client.emit('error', err);
    // authorizePublish consumes every publish it lets through (the relay stored it): the broker has none to route.
    if (packet.qos === 1) wire.puback(packet.messageId!);
  };
  return (buf, at, size) => {
    if (!session.ready || session.closed || state.closed || state.errored || state._parsingBatch !== 0 || wire.readableLength !== 0) return false;
    const packet = parsePublish(buf, at, size);
    if (packet === null) return false;
    if (state._keepaliveInterval > 0) state._keepaliveTimer?.refresh();
    if (++inFlight === MAX_IN_FLIGHT) wire.hold(true);
    authorizePublish(ctx, client, session, packet, (err) => settled(packet, err));
    return true;
  };
}
