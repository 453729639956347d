import type { Client, PublishPacket } from 'aedes';
import type { BlobDelivery } from '../../core/blobs.js';
import type { DeviceCall } from '../../core/calls.js';
import type { IotcError } from '../../core/errors.js';
import type { Receiver } from '../../core/receivers.js';
import type { Side, StoredReading } from '../../store/types.js';
import type { BlobOutboxPeer } from './blob-outbox.js';
import { deliver, deliverCall } from './delivery.js';
import { closeSession } from './session.js';
import type { DoorContext, Session } from './session.js';
import { publishChunk } from './session-persistence.js';
import { REASON } from './reason-codes.js';

/**
 * One MQTT connection as the relay sees it (a Receiver) and as its chunk outbox sees it (a BlobOutboxPeer).
 * A class, so its methods are shared by every connection: the object literal with a `side` getter (which V8
 * kept as a dictionary) and the nine closures it replaces cost about a kilobyte per connection.
 */
export class MqttConnection implements Receiver, BlobOutboxPeer {
  readonly door = 'mqtt';
  /** Set at CONNECT when the connection acts for an account through its API token. */
  grant: Receiver['grant'] = undefined;
  /** Only on a hub that takes chunks: without it the relay sends a chunk's JSON notice instead. */
  deliverBlob: ((blob: BlobDelivery) => void) | undefined = undefined;
  /** Given once the broker made it, right after the session. */
  client: Client | null = null;

  readonly session: Session;

  /** `fields`: the session, which becomes this connection's own. */
  constructor(
    private readonly ctx: DoorContext,
    fields: Omit<Session, 'receiver'>,
  ) {
    this.session = Object.assign(fields, { receiver: this });
    if (ctx.blobs) this.deliverBlob = deliverBlobToOutbox;
  }

  get side(): Side {
    return this.session.side;
  }

  deliver(reading: StoredReading, _json: string, valueJson?: string): void {
    deliver(this.ctx, this.session, this.client!, reading, valueJson);
  }

  revoked(err: IotcError): void {
    const session = this.session;
    session.revoked = true;
    this.ctx.log.info({ deviceId: session.device?.id, side: session.side, code: err.code }, 'closing mqtt connection: device key no longer valid');
    closeSession(session, this.client!, REASON.notAuthorized, err.message);
  }

  call(c: DeviceCall): void {
    deliverCall(this.session, this.client!, c);
  }

  closed(): boolean {
    return this.session.closed;
  }

  ready(): boolean {
    return this.session.ready;
  }

  qosFor(topic: string): number {
    return this.session.filters.qosFor(topic);
  }

  queuedBytes(): number {
    return this.session.wire.queuedBytes;
  }

  publish(packet: PublishPacket, contentType: string): void {
    publishChunk(this.client!, this.session.wire, packet, contentType);
  }
}

function deliverBlobToOutbox(this: MqttConnection, d: BlobDelivery): void {
  // The outbox exists whenever deliverBlob does (both need the hub's chunk room).
  this.session.blobs!.deliver(d);
}
