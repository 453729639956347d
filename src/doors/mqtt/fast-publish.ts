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
import { bodyStart } from './framing.js';
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

/** The deepest topic the broker takes (door.ts configures it so): a deeper one is refused there. */
export const MAX_TOPIC_LEVELS = 32;

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
  let i = bodyStart(buf, at);
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

/** A publish taken here, until it is answered. */
interface Taken {
  packet: PublishPacket;
  done: boolean;
  err: Error | null | undefined;
}

/**
 * One connection's publishes taken off the wire, answered in the order they came, as the broker answered them:
 * a PUBACK waits for those of every earlier publish, and a refusal ends the connection only after them, so a
 * publish stored is acknowledged even when a later one is refused (or the hub is shutting down).
 */
export class FastPublisher {
  private readonly state: BrokerClientState;
  private readonly queue: Taken[] = [];
  private head = 0;
  /** A publish was refused: the connection is ending, and nothing it sent after that is handled. */
  failed = false;

  constructor(
    private readonly ctx: DoorContext,
    private readonly session: Session,
    private readonly client: Client,
  ) {
    this.state = client as unknown as BrokerClientState;
  }

  /** Publishes taken and not yet answered: while there are any, the wire keeps other packets from the broker. */
  get busy(): boolean {
    return this.head < this.queue.length;
  }

  /** Whether every publish read from the connection is answered: none taken here waits, and the broker handles none. */
  get answered(): boolean {
    return !this.busy && (this.state.closed || this.state._parsingBatch === 0);
  }

  /** Offered each PUBLISH the wire cuts out after the CONNECT (MqttWire.fast): true when it was taken here. */
  take(buf: Buffer, at: number, size: number): boolean {
    const { session, state } = this;
    if (!session.ready || session.closed || this.failed || state.closed || state.errored || state._parsingBatch !== 0 || session.wire.readableLength !== 0) return false;
    const packet = parsePublish(buf, at, size);
    if (packet === null) return false;
    if (state._keepaliveInterval > 0) state._keepaliveTimer?.refresh();
    const taken: Taken = { packet, done: false, err: undefined };
    this.queue.push(taken);
    if (this.queue.length - this.head === MAX_IN_FLIGHT) session.wire.hold(true);
    authorizePublish(this.ctx, this.client, session, packet, (err) => {
      taken.done = true;
      taken.err = err;
      // Nothing more is taken from a connection being refused, even while the publishes before are still answered.
      if (err) this.failed = true;
      this.answer();
    });
    return true;
  }

  /** Answers the publishes at the head of the queue that are done, in order. */
  private answer(): void {
    const wire = this.session.wire;
    while (this.head < this.queue.length && this.queue[this.head].done) {
      const { packet, err } = this.queue[this.head++];
      if (this.queue.length - this.head === MAX_IN_FLIGHT / 2) wire.hold(false);
      if (err) {
        // As the broker does with a refused publish: the connection ends (3.1.1 has no negative acknowledgement),
        // once the acknowledgements written before it have left with this turn's write. (take's callback already
        // marked the publisher failed when the refusal came.)
        this.queue.length = this.head = 0;
        setImmediate(() => this.client.emit('error', err));
        return;
      }
      // authorizePublish consumes every publish it lets through (the relay stored it): the broker has none to route.
      if (packet.qos === 1) wire.puback(packet.messageId!);
    }
    if (this.head === this.queue.length) {
      this.queue.length = this.head = 0;
      wire.fastDrained();
    }
  }
}
