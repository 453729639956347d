import { IotcError, toIotcError } from './errors.js';
import { CallFailed, callTimeoutMs } from './calls.js';
import { parseRequest, peekId } from './messages.js';
import type { Request } from './messages.js';
import { TokenBucket } from './rate-limit.js';
import { readingView } from './relay.js';
import type { Attachment, Relay, SensorWrite } from './relay.js';
import type { Logger } from '../log.js';

export interface ProtocolLimits {
  rateLimit: number;
  rateBurst: number;
}

/**
 * The JSON text protocol of one connection, independent of the socket carrying it. A door feeds it
 * frames and gives it a way to reply and to close; all requests of a connection share its device and side.
 */
export class ProtocolSession {
  private readonly bucket: TokenBucket;
  /** Rejected-for-rate messages in a row; a client that keeps flooding is closed. */
  private floodStrikes = 0;
  /** The connection's last write; reads wait for it (settled either way) so a client reads what it just wrote. */
  private lastWrite: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly relay: Relay,
    private readonly attachment: Attachment,
    private readonly reply: (text: string) => void,
    private readonly close: (err: IotcError) => void,
    private readonly log: Logger,
    limits: ProtocolLimits,
  ) {
    this.bucket = new TokenBucket(limits.rateLimit, limits.rateBurst);
  }

  async handle(text: string): Promise<void> {
    if (!this.bucket.take()) {
      if (++this.floodStrikes > 100) {
        this.close(new IotcError('E_RATE_LIMITED', 'Message flood: connection closed'));
        return;
      }
      this.fail(new IotcError('E_RATE_LIMITED', `Too many messages: slow down (retry in ${this.bucket.waitSeconds()}s)`), peekId(text));
      return;
    }
    this.floodStrikes = 0;
    let req: Request;
    try {
      req = parseRequest(text);
    } catch (err) {
      this.fail(toIotcError(err), peekId(text));
      return;
    }
    try {
      await this.dispatch(req);
    } catch (err) {
      const e = toIotcError(err);
      if (e.code === 'E_INTERNAL') this.log.error({ err, deviceId: this.attachment.device.id }, 'request failed');
      this.fail(e, req.id);
    }
  }

  private async dispatch(req: Request): Promise<void> {
    const { device, side } = this.attachment;
    if (req.method !== 'put') await this.lastWrite.then(settled, settled);
    switch (req.method) {
      case 'put': {
        const batch = Array.isArray(req.status);
        const written = this.relay.put(device.id, side, batch ? (req.status as SensorWrite[]) : [req.status as SensorWrite]);
        // Awaited just below, so a failed write is never an unhandled rejection.
        this.lastWrite = written;
        const stored = await written;
        // As in the original protocol, a put without an id is fire-and-forget: only a failure is answered.
        // Give an id to get the durable ack (sent after commit).
        if (req.id !== undefined) this.reply(putAck(req.id, stored[0].time, batch ? stored.length : undefined));
        return;
      }
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
        const rows = await this.relay.history(device.id, req.sensor, {
          limit: req.limit ?? 100, from: req.from, to: req.to, side: req.write,
        });
        this.ok(req.id, { sensor: req.sensor, readings: rows.map(readingView) });
        return;
      }
      case 'sensors': {
        const rows = await this.relay.sensors(device.id, req.write);
        this.ok(req.id, { sensors: rows.map(readingView) });
        return;
      }
      case 'ping':
        this.ok(req.id, { time: Date.now() });
        return;
      case 'call': {
        if (side !== 'client') throw new IotcError('E_FORBIDDEN', 'Only the client side (an app) can call a device\'s methods; this connection is the device side');
        const persistent = req.persistent ?? false;
        const answer = await this.relay.calls.call(device, {
          method: req.device_method, params: req.params ?? null, timeoutMs: callTimeoutMs(req.timeout, persistent), persistent,
        });
        this.ok(req.id, answer.state === 'answered' ? { call: answer.call, result: answer.result } : answer);
        return;
      }
      case 'call_status': {
        if (side !== 'client') throw new IotcError('E_FORBIDDEN', 'Only the client side (an app) can read calls; this connection is the device side');
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
    }
  }

  private ok(id: string | number | undefined, body: object): void {
    this.reply(JSON.stringify(id === undefined ? { ok: true, ...body } : { ok: true, id, ...body }));
  }

  private fail(err: IotcError, id: string | number | undefined, extra?: Record<string, unknown>): void {
    this.relay.countError(err.code);
    const body: Record<string, unknown> = { ok: false, error: err.message, code: err.code, ...extra };
    if (id !== undefined) body.id = id;
    if (err instanceof CallFailed) body.call = err.call;
    this.reply(JSON.stringify(body));
  }
}

const settled = () => undefined;

/** `{"ok":true,"id":…,"count":…,"time":…}`: what ok() would send for a put, written out directly as every put gets one. */
function putAck(id: string | number | undefined, time: number, count: number | undefined): string {
  return `{"ok":true${id === undefined ? '' : `,"id":${JSON.stringify(id)}`}${count === undefined ? '' : `,"count":${count}`},"time":${time}}`;
}
