import { connect } from '@nats-io/transport-node';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import fs from 'node:fs';
import { z } from 'zod';
import { credsAuthenticator } from '@nats-io/transport-node';
import { IotcError } from '../core/errors.js';
import { SENSOR_MAX } from '../core/messages.js';
import { hideUrlPasswords } from '../log.js';
import type { Logger } from '../log.js';
import type { Bus, BusEvent } from './types.js';

export interface NatsBusOptions {
  /** One or more `nats://[user:pass@]host:port` URLs, comma-separated. */
  url: string;
  nodeId: string;
  log?: Logger;
  /** Subject prefix; each device gets `<prefix>.<deviceId>`. */
  prefix?: string;
  /** Bytes of events held while NATS is unreachable; beyond it, publishing fails (the readings are stored anyway). */
  maxBufferedBytes?: number;
  /** A NATS credentials file (JWT and NKey seed), as `nsc` makes them. */
  credsFile?: string;
  /** TLS: the CA that signed the server's certificate, and this node's own certificate and key (mutual TLS). */
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}


const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The most readings one bus message may carry: a relay batch is far smaller; more is not one of ours. */
const MAX_READINGS = 10_000;
const busReading = z.object({
  deviceId: z.string(),
  sensor: z.string().min(1).max(SENSOR_MAX),
  value: z.unknown().refine((v) => v !== undefined, 'value is required'),
  side: z.enum(['device', 'client']),
  seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  time: z.number().int().nonnegative().max(8.64e15),
});
const callId = z.string().regex(/^c_[a-z2-7]{16}$/, 'not a call id');
const busEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('readings'), deviceId: z.string().regex(DEVICE_ID), readings: z.array(busReading).min(1).max(MAX_READINGS) }),
  z.object({ type: z.literal('device'), deviceId: z.string().regex(DEVICE_ID), kind: z.enum(['rotated', 'deleted', 'access']) }),
  z.object({
    type: z.literal('call'),
    deviceId: z.string().regex(DEVICE_ID),
    call: z.object({ call: callId, method: z.string().min(1).max(SENSOR_MAX), params: z.unknown().optional(), time: z.number(), expires: z.number(), persistent: z.boolean() }),
  }),
  z.object({ type: z.literal('reply'), deviceId: z.string().regex(DEVICE_ID), call: callId, result: z.unknown().optional(), error: z.string().optional(), delivered: z.boolean().optional() }),
  z.object({ type: z.literal('state'), deviceId: z.string().regex(DEVICE_ID), call: callId, state: z.enum(['queued', 'sent', 'answered', 'expired']), result: z.unknown().optional(), error: z.string().optional() }),
  z.object({ type: z.literal('blob'), deviceId: z.string().regex(DEVICE_ID), sensor: z.string().min(1).max(64), seq: z.number().int().positive() }),
]);

/**
 * Events come from the network: anything that is not one of ours, or that speaks of another device than its
 * subject's, is dropped rather than handed to the relay. Null when it is fine, else what is wrong with it.
 */
export function busEventProblem(e: unknown, deviceId: string): string | null {
  const parsed = busEvent.safeParse(e);
  if (!parsed.success) return parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || 'event'}: ${i.message}`).join('; ');
  const ev = parsed.data;
  if (ev.deviceId !== deviceId) return 'device id is not the subject\'s';
  if (ev.type === 'readings' && ev.readings.some((r) => r.deviceId !== deviceId)) return 'a reading of another device';
  return null;
}

const timeout = (ms: number, what: string) =>
  new Promise<never>((_, reject) => setTimeout(() => reject(new IotcError('E_UNAVAILABLE', `${what} did not answer within ${ms} ms`)), ms).unref());

/**
 * The bus between nodes over core NATS. Interest-based: a node subscribes to a device's subject only while
 * the device has connections on it, so the NATS server forwards a reading only to nodes that need it.
 * One subject per device and one connection per node keep each device's events in publication order.
 * `noEcho` keeps a node's own publications from coming back to it.
 */
export class NatsBus implements Bus {
  readonly kind = 'nats';
  private readonly subs = new Map<string, Subscription>();
  private handler: (event: BusEvent) => void = () => {};
  private readonly reconnectHandlers: ((downSince: number) => void)[] = [];
  /** When the link last dropped. */
  private downSince = 0;
  private connected = true;
  private closed = false;
  /** Bytes published since the connection dropped; the client holds them and sends them on reconnect. */
  private bufferedBytes = 0;
  private readonly prefix: string;
  private readonly maxBufferedBytes: number;
  /** Messages dropped as not ours since start; logged at most every 10 s, so a flood cannot flood the log. */
  droppedEvents = 0;
  private lastDropLog = 0;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly opts: NatsBusOptions,
  ) {
    this.prefix = opts.prefix ?? 'iotc.dev';
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 8 * 1024 * 1024;
    void this.watchStatus();
  }

  /** Connects (failing fast with a clear message if NATS is unreachable now); afterwards it reconnects forever. */
  static async connect(opts: NatsBusOptions): Promise<NatsBus> {
    const servers: string[] = [];
    let user: string | undefined;
    let pass: string | undefined;
    for (const raw of opts.url.split(',').map((s) => s.trim()).filter(Boolean)) {
      const u = new URL(raw);
      if (u.username) {
        user = decodeURIComponent(u.username);
        pass = decodeURIComponent(u.password);
      }
      servers.push(`${u.hostname}:${u.port || 4222}`);
    }
    const readable = (file: string, what: string) => {
      try {
        fs.accessSync(file, fs.constants.R_OK);
      } catch {
        throw new Error(`Cannot read the NATS ${what} file ${file}: check the path and its permissions`);
      }
      return file;
    };
    const auth = opts.credsFile ? { authenticator: credsAuthenticator(fs.readFileSync(readable(opts.credsFile, 'credentials'))) } : {};
    const wantsTls = Boolean(opts.tlsCa || opts.tlsCert || opts.tlsKey) || /^tls:\/\//.test(opts.url);
    if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) throw new Error('NATS TLS: give both the certificate (IOTC_NATS_TLS_CERT) and its key (IOTC_NATS_TLS_KEY), or neither');
    const tls = wantsTls
      ? {
          tls: {
            ...(opts.tlsCa ? { caFile: readable(opts.tlsCa, 'TLS CA') } : {}),
            ...(opts.tlsCert ? { certFile: readable(opts.tlsCert, 'TLS certificate'), keyFile: readable(opts.tlsKey!, 'TLS key') } : {}),
          },
        }
      : {};
    let nc: NatsConnection;
    try {
      nc = await connect({
        ...auth,
        ...tls,
        servers,
        name: `iotcommunicate-${opts.nodeId}`,
        noEcho: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
        timeout: 5000,
        pingInterval: 10_000,
        maxPingOut: 3,
        ...(user !== undefined ? (pass ? { user, pass } : { token: user }) : {}),
      });
    } catch (err) {
      throw new Error(`Cannot reach NATS at ${hideUrlPasswords(opts.url)}: ${(err as Error).message}`, { cause: err });
    }
    return new NatsBus(nc, opts);
  }

  private async watchStatus(): Promise<void> {
    const log = this.opts.log;
    for await (const s of this.nc.status()) {
      switch (s.type) {
        case 'disconnect':
          if (this.closed) break;
          if (this.connected) this.downSince = Date.now();
          this.connected = false;
          this.bufferedBytes = 0;
          log?.warn({ server: s.server }, 'NATS connection lost: reconnecting; readings are still stored, and other nodes catch up when it returns');
          break;
        case 'reconnect':
          this.connected = true;
          this.bufferedBytes = 0;
          log?.info({ server: s.server }, 'NATS connection restored');
          for (const h of this.reconnectHandlers) h(this.downSince);
          break;
        case 'error':
          log?.error({ err: s.error.message }, 'NATS error');
          break;
        case 'slowConsumer':
          log?.warn({ pending: s.pending }, 'NATS: this node is reading events too slowly');
          break;
        default:
          break;
      }
    }
  }

  private dropped(subject: string, problem: string): void {
    this.droppedEvents++;
    const now = Date.now();
    if (now - this.lastDropLog < 10_000) return;
    this.lastDropLog = now;
    this.opts.log?.warn({ subject: subject.slice(0, 100), problem: problem.slice(0, 300), droppedTotal: this.droppedEvents }, 'dropped a bus message that is not a valid event (is something else publishing on this NATS?)');
  }

  private subject(deviceId: string): string {
    if (!DEVICE_ID.test(deviceId)) throw new IotcError('E_VALIDATION', 'A device id for the bus must be letters, digits, _ or -');
    return `${this.prefix}.${deviceId}`;
  }

  async publish(event: BusEvent): Promise<void> {
    if (this.closed) throw new IotcError('E_UNAVAILABLE', 'The bus is closed');
    const subject = this.subject(event.deviceId);
    const max = Math.max(1024, (this.nc.info?.max_payload ?? 1_048_576) - 512);
    const parts = [event];
    while (parts.length > 0) {
      const part = parts.shift()!;
      const payload = Buffer.from(JSON.stringify(part));
      if (payload.length > max) {
        // A large run of readings goes in several messages, in order.
        if (part.type !== 'readings' || part.readings.length < 2) throw new IotcError('E_TOO_LARGE', `A bus event of ${payload.length} bytes exceeds the NATS limit of ${max}`);
        const half = Math.ceil(part.readings.length / 2);
        parts.unshift({ ...part, readings: part.readings.slice(0, half) }, { ...part, readings: part.readings.slice(half) });
        continue;
      }
      if (!this.connected) {
        if (this.bufferedBytes + payload.length > this.maxBufferedBytes) {
          throw new IotcError('E_UNAVAILABLE', 'NATS is unreachable and the reconnect buffer is full: other nodes will read these readings from the store');
        }
        this.bufferedBytes += payload.length;
      }
      this.nc.publish(subject, payload);
    }
  }

  subscribe(deviceId: string): void {
    if (this.closed || this.subs.has(deviceId)) return;
    const sub = this.nc.subscribe(this.subject(deviceId), {
      callback: (err, msg) => {
        if (err) {
          this.opts.log?.warn({ err: err.message, deviceId }, 'NATS subscription error');
          return;
        }
        let event: unknown;
        try {
          event = msg.json();
        } catch {
          event = null;
        }
        const problem = busEventProblem(event, deviceId);
        if (problem !== null) {
          this.dropped(msg.subject, problem);
          return;
        }
        this.handler(event as BusEvent);
      },
    });
    this.subs.set(deviceId, sub);
  }

  unsubscribe(deviceId: string): void {
    const sub = this.subs.get(deviceId);
    if (!sub) return;
    this.subs.delete(deviceId);
    sub.unsubscribe();
  }

  onEvent(handler: (event: BusEvent) => void): void {
    this.handler = handler;
  }

  onReconnect(handler: (downSince: number) => void): void {
    this.reconnectHandlers.push(handler);
  }

  /** A round trip to the server: also guarantees that earlier subscribe/unsubscribe calls have reached it. */
  async ping(): Promise<void> {
    if (this.closed) throw new IotcError('E_UNAVAILABLE', 'The bus is closed');
    if (!this.connected) throw new IotcError('E_UNAVAILABLE', 'NATS is unreachable; reconnecting');
    await Promise.race([this.nc.flush(), timeout(2000, 'NATS')]);
  }

  /** Sends what is queued, then disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subs.clear();
    if (this.connected) await Promise.race([this.nc.drain(), timeout(2000, 'NATS drain')]).catch(() => {});
    if (!this.nc.isClosed()) await this.nc.close().catch(() => {});
  }
}
