import { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import { WireError, connectLevelAt, frameLength, publishFrame, withKeepalive } from './framing.js';
import { Mqtt5Translation } from './mqtt5-translation.js';
import type { Pkt } from './mqtt5-translation.js';
import { REASON } from './reason-codes.js';
import type { FastPublisher } from './fast-publish.js';

const EMPTY = Buffer.alloc(0);

function endTurn(wire: MqttWire): void {
  wire.endTurn();
}

/**
 * The byte stream between one MQTT client and the embedded broker.
 *
 * - It frames packets itself (framing.ts), so a packet larger than the limit is refused before it is buffered.
 * - MQTT 3.1 and 3.1.1 pass through untouched, but for a keep-alive held to the limit. The broker library speaks
 *   only those, so an MQTT 5 client is translated packet by packet (mqtt5-translation.ts); a publish's content
 *   type is kept beside the broker (takeContentType, expectContentType): it types binary chunks.
 */
export class MqttWire extends Duplex {
  /** 3, 4 or 5 once the CONNECT arrived; 0 before. */
  version = 0;
  private pending: Buffer = EMPTY;
  private readonly maxPacketBytes: number;
  private readonly maxKeepaliveSeconds: number;
  // MQTT 5 only:
  private v5: Mqtt5Translation | null = null;
  private inParser: ReturnType<typeof mqttPacket.parser> | null = null;
  private outParser: ReturnType<typeof mqttPacket.parser> | null = null;
  /** Corked by writeInTurn until the turn ends. */
  private publishing = false;
  /** Reading held by the door (too many publishes waiting for their commit) or by the broker (its buffer full). */
  private held = false;
  private brokerFull = false;
  /** Reading held while the connection's account has a commit's worth of readings waiting (Relay.holdWhileBusy). */
  accountHeld = false;
  /** Reading stopped for good: the hub is shutting down. */
  private stopped = false;
  /**
   * The door's own publishes (fast-publish.ts): it is offered each PUBLISH after the CONNECT and takes those it
   * can, which then never reach the broker. Only 3.1/3.1.1 packets pass through untouched, so only they are offered.
   */
  fast: FastPublisher | null = null;
  /** Packets for the broker that came after publishes the door still holds: they wait for those to be answered. */
  private deferred: Buffer[] | null = null;

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

  /**
   * A QoS 0 PUBLISH of the door's own (see publishToConnection), written where the broker writes, so it keeps its
   * place among the broker's packets and an MQTT 5 client gets it translated like them. The wire stays corked
   * until the turn ends: what a turn publishes to this connection leaves in one write.
   */
  publish0(topic: string, payload: Buffer | string, retain: boolean): void {
    this.writeInTurn(publishFrame(topic, payload, retain));
  }

  /** The PUBACK of a publish the door took itself (see `fast`), written like publish0. */
  puback(messageId: number): void {
    this.writeInTurn(Buffer.from([0x40, 2, messageId >> 8, messageId & 0xff]));
  }

  private writeInTurn(packet: Buffer): void {
    if (!this.writable) return;
    if (!this.publishing) {
      this.publishing = true;
      this.cork();
      process.nextTick(endTurn, this);
    }
    this.write(packet);
  }

  /** Stops (or starts again) reading the client while the door holds too many of its publishes. */
  hold(on: boolean): void {
    this.held = on;
    if (on) this.raw.pause();
    else this.resumeIfFree();
  }

  /** Stops reading the client until its account's backlog falls (resumeReading). */
  holdForAccount(): void {
    this.accountHeld = true;
    this.raw.pause();
  }

  /** The account's backlog fell: go on in a later turn, not inside the store's flush that said so. */
  resumeReading(): void {
    setImmediate(() => {
      this.accountHeld = false;
      this.resumeIfFree();
    });
  }

  /**
   * Reads nothing more from the client: the hub is shutting down and would refuse what it sent, and a 3.1.1 client
   * loses its connection over a refusal, acknowledgements still queued for it included. What it sent before is
   * still answered.
   */
  stopReading(): void {
    this.stopped = true;
    this.raw.pause();
  }

  /** The door has answered every publish it took: what came after them goes on to the broker. */
  fastDrained(): void {
    if (this.deferred === null) return;
    const bytes = this.deferred.length === 1 ? this.deferred[0] : Buffer.concat(this.deferred);
    this.deferred = null;
    // Once reading stopped, what waited is left unanswered (a client sends it again): the broker would have a
    // publish refused, and the connection closed with the acknowledgements still on their way.
    if (!this.destroyed && !this.stopped) this.toBroker(bytes);
    this.resumeIfFree();
  }

  private resumeIfFree(): void {
    if (!this.stopped && !this.held && !this.accountHeld && !this.brokerFull && this.deferred === null && this.raw.isPaused()) this.raw.resume();
  }

  /** Ends writeInTurn's cork for this turn. */
  endTurn(): void {
    this.publishing = false;
    this.uncork();
  }

  /** MQTT 5: what the client asked for retained messages on this subscription (0 send, 1 only if new, 2 never). */
  retainHandling(topic: string): number {
    return this.v5?.retainHandling(topic) ?? 0;
  }

  /** MQTT 5: the SUBACK refusing this filter carries `reason` (e.g. quota exceeded) instead of "not authorized". */
  refuseSubscription(topic: string, reason: number, text: string): void {
    this.v5?.refuseSubscription(topic, reason, text);
  }

  /** MQTT 5: the broker's next PUBACK/PUBREC for this message id carries `reason` (and `text`) instead of success. */
  refuseAck(messageId: number, reason: number, text?: string): void {
    this.v5?.refuseAck(messageId, reason, text);
  }

  /** MQTT 5: the Content Type of the publish to `topic` the broker is authorizing (undefined for 3.1.1). */
  takeContentType(topic: string): string | undefined {
    return this.v5?.contentTypes.take(topic);
  }

  /** MQTT 5: the broker's publish of these bytes on `topic` goes out with this Content Type (payload format 0). */
  expectContentType(topic: string, payload: Buffer, contentType: string): void {
    this.v5?.contentTypes.expect(topic, payload, contentType);
  }

  /** The keep-alive to hold a client to: the one it asked for, unless that is none or longer than allowed. */
  private grantedKeepalive(asked: number): number {
    return asked === 0 || asked > this.maxKeepaliveSeconds ? this.maxKeepaliveSeconds : asked;
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

  /**
   * Cuts the client's bytes into packets, each checked against the limit as soon as its length is known. After
   * the CONNECT, 3.1/3.1.1 packets pass through untouched, so those a read brought whole go on to the broker in
   * one piece, but for the publishes the door takes first (`fast`); MQTT 5 ones are translated one by one.
   */
  private fromClient(chunk: Buffer): void {
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let at = 0;
    let passed = 0;
    try {
      for (let size = frameLength(buf, 0, this.maxPacketBytes); size > 0; size = frameLength(buf, at, this.maxPacketBytes)) {
        if (this.fast?.failed) return;
        if (this.version === 0 || this.version === 5) {
          this.onFrame(buf.subarray(at, at + size));
          if (this.destroyed) return;
          passed = at + size;
        } else if (at === passed && this.deferred === null && this.fast !== null && this.fast.take(buf, at, size)) {
          // Only while nothing of this read went to the broker before it: what follows a packet it has stays in order.
          if (this.destroyed) return;
          passed = at + size;
        }
        at += size;
      }
    } catch (err) {
      // What came whole before the bad packet still reaches the broker first, as it would have in a read of its own.
      if (at > passed) this.toBroker(buf.subarray(passed, at));
      this.fail(err as Error);
      return;
    }
    if (at > passed) this.toBroker(passed === 0 && at === buf.length ? buf : buf.subarray(passed, at));
    this.pending = at === buf.length ? EMPTY : buf.subarray(at);
  }

  /** The CONNECT (which decides the version), or an MQTT 5 packet. */
  private onFrame(frame: Buffer): void {
    if (this.version === 0) {
      if (frame[0] >> 4 !== 1) throw new WireError('the first packet must be CONNECT');
      const at = connectLevelAt(frame);
      this.version = frame[at] & 0x7f;
      if (this.version === 5) {
        this.startTranslating();
      } else {
        this.toBroker(withKeepalive(frame, at + 2, (asked) => this.grantedKeepalive(asked)));
        return;
      }
    }
    this.inParser!.parse(frame);
  }

  private toBroker(bytes: Buffer): void {
    if (this.deferred !== null || this.fast?.busy) {
      // Handled by the broker now, it could answer (or close the connection) before publishes sent earlier are.
      (this.deferred ??= []).push(bytes);
      this.raw.pause();
      return;
    }
    if (!this.push(bytes)) {
      this.brokerFull = true;
      this.raw.pause();
    }
  }

  override _read(): void {
    this.brokerFull = false;
    this.resumeIfFree();
  }

  private startTranslating(): void {
    const v5 = new Mqtt5Translation({ raw: this.raw, grantKeepalive: (asked) => this.grantedKeepalive(asked), disconnect: (reason, text) => this.disconnect(reason, text) });
    this.v5 = v5;
    this.inParser = mqttPacket.parser({ protocolVersion: 5 });
    this.inParser.on('packet', (p: Pkt) => {
      const v4 = v5.down(p);
      if (v4) this.toBroker(mqttPacket.generate(v4 as any, { protocolVersion: 4 }));
    });
    this.inParser.on('error', (err: Error) => this.fail(err));
    this.outParser = mqttPacket.parser({ protocolVersion: 4 });
    this.outParser.on('packet', (p: Pkt) => {
      const packet = v5.up(p);
      if (packet) this.raw.write(mqttPacket.generate(packet as any, { protocolVersion: 5 }));
    });
    this.outParser.on('error', (err: Error) => this.destroy(err));
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
