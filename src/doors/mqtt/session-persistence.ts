/**
 * Where the door bends aedes' persistent sessions (clean session off, or an MQTT 5 session expiry): what a
 * session stores of a SUBSCRIBE, which publishes it queues, and what a re-sent publish carries.
 */
import { Transform, pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import type { Aedes, Client, PublishPacket } from 'aedes';
import type { FilterIndex } from './subscriptions.js';
import type { MqttWire } from './wire.js';

/** aedes' session store (its `persistence`), as far as the door adjusts it. */
interface Persistence {
  addSubscriptions(client: Client, subs: { topic: string }[]): Promise<unknown>;
  outgoingStream(client: Client): Readable;
}

function persistenceOf(broker: Aedes): Persistence {
  return (broker as unknown as { persistence: Persistence }).persistence;
}

/**
 * A persistent session stores the SUBSCRIBE packet's whole list once any of its filters is granted, refused
 * ones too. Only granted filters (those in the connection's index) may be kept, or refused ones would pile up
 * in memory for the session and come back at every reconnection.
 */
export function persistOnlyGranted(broker: Aedes, grantedOf: (client: Client) => FilterIndex | undefined): void {
  const persistence = persistenceOf(broker);
  const add = persistence.addSubscriptions.bind(persistence);
  persistence.addSubscriptions = (client, subs) => {
    const filters = grantedOf(client);
    const granted = filters ? subs.filter((s) => filters.has(s.topic)) : subs;
    return granted.length > 0 ? add(client, granted) : Promise.resolve(client);
  };
}

/** The aedes delivery a retained copy takes: its own retained messages on SUBSCRIBE go this way. */
type DeliveringClient = Client & { deliverQoS(packet: object, done: () => void): void };

/**
 * Publishes a packet to one connection.
 * - QoS 0 goes onto the connection's wire as one generated packet (MqttWire.publish0). Through aedes each one
 *   waited for a turn of its own and left in a write of its own; on the wire, what a turn publishes to a
 *   connection leaves in one write, in publish order. Retained copies and live values of a QoS 0 subscription
 *   take the same way, so a retained older value never overtakes a live newer one.
 * - QoS 1 goes through aedes, which numbers it, holds it until its PUBACK and sends it again after a reconnection.
 *   A retained copy goes out like aedes' own retained messages (deliverQoS), not through client.publish: for a
 *   persistent session client.publish queues a QoS 1 packet in the session, and aedes clears a queued packet at
 *   its PUBACK only if it was not retained, so every retained copy came back at each reconnection, ahead of the
 *   newer value or chunk the hub sends then.
 */
export function publishToConnection(client: Client, wire: MqttWire, topic: string, payload: Buffer | string, qos: number, retain: boolean, properties?: PublishPacket['properties']): void {
  if (qos === 0) return wire.publish0(topic, payload, retain);
  // What aedes keeps of a session until the PUBACK holds bytes, as the packets it reads from the wire do. QoS 1 at
  // most: what the hub sends is a latest value (or chunk), which a newer one supersedes, so QoS 2 buys nothing.
  const held = { cmd: 'publish', topic, payload: typeof payload === 'string' ? Buffer.from(payload) : payload, qos: 1, retain, dup: false, properties } as PublishPacket;
  if (retain) (client as DeliveringClient).deliverQoS({ ...held, brokerId: null }, () => {});
  else client.publish(held, () => {});
}

/**
 * Publishes a binary chunk with its MQTT 5 Content Type. The broker writes 3.1.1 bytes, so the wire is told the
 * type to add; the packet carries it too, as `properties`, which aedes keeps with the packet it queues in a
 * persistent session until the PUBACK (see resendWithContentTypes).
 */
export function publishChunk(client: Client, wire: MqttWire, packet: PublishPacket, contentType: string): void {
  wire.expectContentType(packet.topic, packet.payload as Buffer, contentType);
  publishToConnection(client, wire, packet.topic, packet.payload, packet.qos, packet.retain, { contentType });
}

/**
 * At reconnection aedes sends a persistent session's unacknowledged publishes again, straight from its store,
 * to a new connection whose wire never saw them: each stored chunk's content type is told to that wire as
 * aedes reads the packet out to send it, or the re-sent PUBLISH would go out without it.
 */
export function resendWithContentTypes(broker: Aedes, wireOf: (client: Client) => MqttWire | undefined): void {
  const persistence = persistenceOf(broker);
  const stream = persistence.outgoingStream.bind(persistence);
  persistence.outgoingStream = (client) => {
    // A clean session's queue is only cleared, never sent.
    const wire = client.clean ? undefined : wireOf(client);
    if (!wire) return stream(client);
    const tell = new Transform({
      objectMode: true,
      transform(packet: PublishPacket, _enc, next) {
        const contentType = packet.properties?.contentType;
        if (contentType !== undefined && Buffer.isBuffer(packet.payload)) wire.expectContentType(packet.topic, packet.payload, contentType);
        next(null, packet);
      },
    });
    // An error of the store's stream reaches aedes through the stream it reads.
    return pipeline(stream(client), tell, () => {});
  };
}
