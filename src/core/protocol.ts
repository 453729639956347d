import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { errorFrame, IotcError, toIotcError } from './errors.js';
import { CallFailed, callTimeoutMs } from './calls.js';
import { parseRequest, peekRequest } from './messages.js';
import type { Request } from './messages.js';
import { TokenBucket } from './rate-limit.js';
import { forbidden, roleAllows } from './sharing.js';
import { bucketFor, MAX_BUCKETS } from './buckets.js';
import { readingView } from './reading-wire.js';
import { historyPage, sensorsPage } from './replies.js';
import type { Attachment, Relay, SensorWrite } from './relay.js';
import type { Logger } from '../log.js';
import type { StoredReading } from '../store/types.js';
import type { WriteSettler } from './write-batcher.js';

export interface ProtocolLimits {
  rateLimit: number;
  rateBurst: number;
  /** Largest reply of a read (history, sensors), in bytes; a longer one is cut and says where to go on. */
  maxReplyBytes?: number;
}

/** Reads (gets, history, sensors) a connection may have waiting for their turn; more are refused until replies go out. */
export const MAX_WAITING_READS = 1024;

/**
 * The JSON text protocol of one connection, independent of the socket carrying it. A door feeds it
 * frames and gives it a way to reply and to close; all requests of a connection share its device and side.
 */
export class ProtocolSession {
  private readonly bucket: TokenBucket;
  /** Rejected-for-rate messages in a row; a client that keeps flooding is closed. */
  private floodStrikes = 0;
  /** The connection's last write until it settles; reads wait for it (settled either way) so a client reads what it just wrote. */
  private lastWrite: PendingPut | null = null;
  /** Reads run one at a time, in order: one connection never has more than one reply being made. */
  private reads: Promise<void> = Promise.resolve();
  private waitingReads = 0;
  private readonly maxReplyBytes: number;

  constructor(
    private readonly relay: Relay,
    private readonly attachment: Attachment,
    private readonly reply: (text: string) => void,
    private readonly close: (err: IotcError) => void,
    private readonly log: Logger,
    limits: ProtocolLimits,
    /** Resolves once the connection can take a reply of maxReplyBytes (its earlier replies have left): true, or false if it closed meanwhile. */
    private readonly roomForReply: () => Promise<boolean> = () => Promise.resolve(true),
  ) {
    this.bucket = new TokenBucket(limits.rateLimit, limits.rateBurst);
    this.maxReplyBytes = limits.maxReplyBytes ?? 1_048_576;
  }

  /**
   * One frame. A put (most frames) is answered by its PendingPut when the store settles it, with no async function
   * or promise between: each suspended async function holds a copy of its registers, which made the two that every
   * put went through a fifth of the bytes a busy hub allocated per message. The promise settles once the frame is
   * handled, which for a put is once it is on its way to the store.
   */
  handle(text: string): Promise<void> {
    if (!this.bucket.take()) {
      if (++this.floodStrikes > 100) {
        this.close(new IotcError('E_RATE_LIMITED', 'Message flood: connection closed'));
        return DONE;
      }
      this.refuse(new IotcError('E_RATE_LIMITED', `Too many messages: slow down (retry in ${this.bucket.waitSeconds()}s)`), text);
      return DONE;
    }
    this.floodStrikes = 0;
    let req: Request;
    try {
      req = parseRequest(text);
    } catch (err) {
      this.refuse(toIotcError(err), text);
      return DONE;
    }
    if (req.method === 'put') return this.put(req);
    return this.dispatch(req).catch((err) => this.failed(err, req.id, req.id === undefined && 'sensor' in req ? req.sensor : undefined));
  }

  private put(req: PutRequest): Promise<void> {
    // A shared viewer's write is refused here, before the relay: it never reaches the device.
    if (!roleAllows(this.attachment.role, 'write')) {
      this.fail(forbidden(this.attachment.role, 'write'), req.id);
      return DONE;
    }
    const { device, side } = this.attachment;
    const batch = Array.isArray(req.status);
    const writes = batch ? (req.status as SensorWrite[]) : [req.status as SensorWrite];
    const put = new PendingPut(this, req.id, batch ? writes.length : undefined, req.id === undefined ? writes[0].sensor : undefined);
    this.lastWrite = put;
    this.relay.putWith(device, side, writes, put);
    return DONE;
  }

  /**
   * A put's commit or refusal (PendingPut.settle). As in the original protocol, a put without an id is
   * fire-and-forget: only a failure is answered. Give an id to get the durable ack (sent after commit).
   */
  putSettled(put: PendingPut, err: unknown, stored: readonly StoredReading[] | null, from: number): void {
    put.settled = true;
    if (this.lastWrite === put) this.lastWrite = null;
    if (stored === null) this.failed(err, put.id, put.sensor);
    else if (put.id !== undefined) this.reply(putAck(put.id, stored[from].time, put.count));
    const waiters = put.waiters;
    if (waiters !== null) for (const wake of waiters) wake();
  }

  /** Settles once the connection's last write so far has (either way). */
  private writesDone(): Promise<void> {
    const put = this.lastWrite;
    if (put === null || put.settled) return DONE;
    return new Promise((resolve) => (put.waiters ??= []).push(resolve));
  }

  private failed(err: unknown, id: string | number | undefined, sensor?: string): void {
    const e = toIotcError(err);
    if (e.code === 'E_INTERNAL') this.log.error({ err, deviceId: this.attachment.device.id }, 'request failed');
    this.fail(e, id, sensor === undefined ? undefined : { sensor });
  }

  /** A frame refused before it was understood: the reply echoes what can be read of it. */
  private refuse(err: IotcError, text: string): void {
    const { id, sensor } = peekRequest(text);
    this.fail(err, id, id === undefined ? { sensor } : undefined);
  }

  private async dispatch(req: Exclude<Request, PutRequest>): Promise<void> {
    const { device, side } = this.attachment;
    switch (req.method) {
      case 'ping':
        await this.writesDone();
        this.ok(req.id, { time: Date.now() });
        return;
      case 'call': {
        if (side !== 'client') throw new IotcError('E_FORBIDDEN', 'Only the client side (an app) can call a device\'s methods; this connection is the device side');
        if (!roleAllows(this.attachment.role, 'call')) throw forbidden(this.attachment.role, 'call');
        const persistent = req.persistent ?? false;
        const answer = await this.relay.calls.call(device, {
          method: req.device_method, params: req.params ?? null, timeoutMs: callTimeoutMs(req.timeout, persistent), persistent,
        });
        this.ok(req.id, answer.state === 'answered' ? { call: answer.call, result: answer.result } : answer);
        return;
      }
      case 'call_status': {
        if (side !== 'client') throw new IotcError('E_FORBIDDEN', 'Only the client side (an app) can read calls; this connection is the device side');
        if (!roleAllows(this.attachment.role, 'call')) throw forbidden(this.attachment.role, 'call');
        const { call, method: _method, params: _params, ...rest } = await this.relay.calls.status(device, req.call);
        this.ok(req.id, { call, ...rest });
        return;
      }
      case 'reply': {
        if (side !== 'device') throw new IotcError('E_FORBIDDEN', 'Only the device side answers calls; this connection is the client side');
        await this.relay.calls.reply(device.id, req.call, req.error !== undefined ? { error: req.error } : { result: req.result ?? null });
        if (req.id !== undefined) this.ok(req.id, {});
        return;
      }
      default:
        return this.queueRead(req);
    }
  }

  /**
   * A read waits for the writes sent before it, for the reads before it, and for the connection's earlier
   * replies to leave: a client that asks and never reads holds one reply in memory, not one per request.
   */
  private async queueRead(req: ReadRequest): Promise<void> {
    if (this.waitingReads >= MAX_WAITING_READS) {
      throw new IotcError('E_RATE_LIMITED', `At most ${MAX_WAITING_READS} gets, history and sensors requests may wait on one connection: read their replies first`);
    }
    this.waitingReads++;
    const written = this.writesDone();
    const turn = this.reads.then(async () => {
      await written;
      // A read may hold the event loop for a store query (SQLite answers synchronously): between two reads of one
      // connection the loop serves everyone else, or a burst of history requests would stall the whole hub.
      await yieldToLoop();
      // A connection gone while its reads waited gets none of them made.
      if (await this.roomForReply()) await this.read(req);
    });
    this.reads = turn.then(settled, settled);
    try {
      await turn;
    } finally {
      this.waitingReads--;
    }
  }

  private async read(req: ReadRequest): Promise<void> {
    const { device } = this.attachment;
    switch (req.method) {
      case 'get':
      case 'gets': {
        const r = await this.relay.gets(device.id, req.sensor, req.write);
        if (!r) {
          // An original client reads "sensor" and "value" from every frame it receives, this refusal included
          // (iotcommute's get_state on a first boot, before anything was written).
          this.fail(new IotcError('E_NOT_FOUND', `No value stored for sensor "${req.sensor}"`), req.id, { sensor: req.sensor, value: null });
          return;
        }
        this.ok(req.id, readingView(r));
        return;
      }
      case 'history': {
        if (req.bucket !== undefined) {
          const to = req.to ?? Date.now();
          const from = req.from ?? to - 86_400_000;
          const bucketMs = bucketFor(req.bucket, from, to);
          const buckets = await this.relay.store.historyBuckets(device.id, req.sensor, { from, to, bucketMs, side: req.write, limit: MAX_BUCKETS });
          this.ok(req.id, { sensor: req.sensor, from, to, bucket: bucketMs, buckets });
          return;
        }
        const limit = req.limit ?? 100;
        const rows = await this.relay.history(device.id, req.sensor, { limit, from: req.from, to: req.to, side: req.write, maxBytes: this.maxReplyBytes });
        const page = historyPage(rows, { limit, from: req.from }, this.maxReplyBytes);
        this.reply(`{"ok":true${idField(req.id)},"sensor":${JSON.stringify(req.sensor)},"readings":[${page.json.join(',')}]${page.next ? `,"more":true,"next":${JSON.stringify(page.next)}` : ''}}`);
        return;
      }
      case 'sensors': {
        const rows = await this.relay.sensors(device.id, req.write, { after: req.after, maxBytes: this.maxReplyBytes });
        const page = sensorsPage(rows, req.after, this.maxReplyBytes);
        this.reply(`{"ok":true${idField(req.id)},"sensors":[${page.json.join(',')}]${page.next ? `,"more":true,"next":${JSON.stringify(page.next)}` : ''}}`);
        return;
      }
    }
  }

  private ok(id: string | number | undefined, body: object): void {
    this.reply(JSON.stringify(id === undefined ? { ok: true, ...body } : { ok: true, id, ...body }));
  }

  private fail(err: IotcError, id: string | number | undefined, extra?: { sensor?: string | null; value?: null }): void {
    this.relay.countError(err.code);
    this.reply(errorFrame(err, id, err instanceof CallFailed ? { ...extra, call: err.call } : extra));
  }
}

const settled = () => undefined;
const DONE: Promise<void> = Promise.resolve();

/**
 * One put on its way to the store: one small object per message, where a promise and its reactions cost about ten
 * times its bytes. Its session answers it and wakes the reads that waited for it.
 */
class PendingPut implements WriteSettler<StoredReading> {
  settled = false;
  waiters: (() => void)[] | null = null;

  constructor(
    private readonly session: ProtocolSession,
    readonly id: string | number | undefined,
    /** How many readings a batch put wrote (its ack says so); undefined for a single reading. */
    readonly count: number | undefined,
    /** Without an id, the (first) reading's sensor, which a refusal names for the original clients. */
    readonly sensor: string | undefined,
  ) {}

  settle(err: unknown, stored: readonly StoredReading[] | null, from: number): void {
    this.session.putSettled(this, err, stored, from);
  }
}

type PutRequest = Extract<Request, { method: 'put' }>;

/** Requests answered from the store, one at a time per connection (calls wait on the device, not in this line). */
type ReadRequest = Extract<Request, { method: 'get' | 'gets' | 'history' | 'sensors' }>;

const idField = (id: string | number | undefined) => (id === undefined ? '' : `,"id":${JSON.stringify(id)}`);

/** `{"ok":true,"id":…,"count":…,"time":…}`: what ok() would send for a put, written out directly as every put gets one. */
function putAck(id: string | number | undefined, time: number, count: number | undefined): string {
  return `{"ok":true${idField(id)}${count === undefined ? '' : `,"count":${count}`},"time":${time}}`;
}
