/**
 * Connections for load and abuse: a WebSocket peer that can await replies by id, and a raw MQTT peer
 * (mqtt-packet over TCP, so any packet — thousands of filters, keepalive 0 — can be sent as is).
 */
import net from 'node:net';
import mqtt from 'mqtt-packet';
import { WebSocket } from 'ws';

export class WsPeer {
  private nextId = 1;
  private readonly waiting = new Map<string | number, (m: any) => void>();
  /** Readings and unasked messages received. */
  delivered = 0;
  closeCode: number | null = null;
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      let m: any;
      try {
        m = JSON.parse(data.toString());
      } catch {
        return;
      }
      const w = m && m.id !== undefined ? this.waiting.get(m.id) : undefined;
      if (w) {
        this.waiting.delete(m.id);
        w(m);
      } else this.delivered++;
    });
    ws.on('error', () => {});
    this.closed = new Promise((resolve) =>
      ws.on('close', (code) => {
        this.closeCode = code;
        for (const w of this.waiting.values()) w({ ok: false, code: `closed ${code}` });
        this.waiting.clear();
        resolve(code);
      }),
    );
  }

  static connect(wsUrl: string, device: { id: string; key: string }, side: 'device' | 'client', localAddress?: string): Promise<WsPeer> {
    const q = new URLSearchParams({ device: device.id, key: device.key, side });
    const ws = new WebSocket(`${wsUrl}/ws?${q}`, { localAddress, handshakeTimeout: 10_000 });
    const peer = new WsPeer(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(peer));
      ws.once('error', reject);
      ws.once('close', (code) => reject(new Error(`closed ${code} during the handshake`)));
    });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Sends a request with a fresh id; resolves with its reply (or a stand-in when the connection closes or time runs out). */
  request(body: object, timeoutMs = 30_000): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      if (!this.open) return resolve({ ok: false, code: 'not open' });
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve({ ok: false, code: 'timeout' });
      }, timeoutMs);
      this.waiting.set(id, (m) => (clearTimeout(timer), resolve(m)));
      this.ws.send(JSON.stringify({ ...body, id }));
    });
  }

  /** Sends raw text without waiting for anything. */
  send(text: string): void {
    if (this.open) this.ws.send(text);
  }

  /** Stops reading from the socket, as a peer that hangs would. */
  pause(): void {
    (this.ws as unknown as { _socket: net.Socket })._socket?.pause();
  }

  close(): void {
    this.ws.terminate();
  }
}

export interface MqttConnectOptions {
  username?: string;
  password?: string;
  keepalive?: number;
  clientId?: string;
  localAddress?: string;
}

export class MqttPeer {
  private readonly parser = mqtt.parser({ protocolVersion: 4 });
  private nextId = 1;
  private readonly acks = new Map<number, (p: mqtt.Packet) => void>();
  publishes = 0;
  connack: mqtt.IConnackPacket | null = null;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    this.parser.on('packet', (p) => {
      if (p.cmd === 'publish') {
        this.publishes++;
        if (p.qos === 1 && p.messageId) this.raw({ cmd: 'puback', messageId: p.messageId });
      } else if (p.cmd === 'connack') this.connack = p;
      const id = (p as { messageId?: number }).messageId;
      if (p.cmd !== 'publish' && id !== undefined && this.acks.has(id)) {
        this.acks.get(id)!(p);
        this.acks.delete(id);
      }
    });
    this.parser.on('error', () => socket.destroy());
    socket.on('data', (d) => this.parser.parse(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      for (const a of this.acks.values()) a({ cmd: 'disconnect' } as mqtt.Packet);
      this.acks.clear();
    });
  }

  /** Opens the TCP connection only (no CONNECT): for idle-socket abuse, or `connect` to follow. */
  static open(port: number, localAddress?: string): Promise<MqttPeer> {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    const peer = new MqttPeer(socket);
    return new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(peer));
      socket.once('error', reject);
    });
  }

  /** Opens and sends CONNECT; resolves once CONNACK (or the close) arrives. */
  static async connect(port: number, opts: MqttConnectOptions, timeoutMs = 10_000): Promise<MqttPeer> {
    const peer = await MqttPeer.open(port, opts.localAddress);
    peer.raw({
      cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true,
      clientId: opts.clientId ?? `arena-${Math.random().toString(36).slice(2)}`, keepalive: opts.keepalive ?? 60,
      username: opts.username, password: opts.password === undefined ? undefined : Buffer.from(opts.password),
    });
    const until = Date.now() + timeoutMs;
    while (!peer.connack && !peer.closed && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    return peer;
  }

  get accepted(): boolean {
    return !!this.connack && this.connack.returnCode === 0 && !this.closed;
  }

  raw(packet: object): void {
    if (!this.closed && this.socket.writable) this.socket.write(mqtt.generate(packet as mqtt.Packet));
  }

  private awaitAck(id: number, timeoutMs: number): Promise<mqtt.Packet | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => (this.acks.delete(id), resolve(null)), timeoutMs);
      this.acks.set(id, (p) => (clearTimeout(timer), resolve(p)));
    });
  }

  /** SUBSCRIBE; resolves with the SUBACK (null on timeout or close). */
  subscribe(filters: string[], timeoutMs = 60_000): Promise<mqtt.Packet | null> {
    const messageId = this.nextId++;
    const ack = this.awaitAck(messageId, timeoutMs);
    this.raw({ cmd: 'subscribe', messageId, subscriptions: filters.map((topic) => ({ topic, qos: 0 })) });
    return ack;
  }

  /** PUBLISH QoS 0 (resolves at once) or 1 (resolves with the PUBACK, null on timeout or close). */
  publish(topic: string, payload: string | Buffer, qos: 0 | 1 = 0, timeoutMs = 30_000): Promise<mqtt.Packet | null> {
    if (qos === 0) {
      this.raw({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false });
      return Promise.resolve(null);
    }
    const messageId = this.nextId++;
    const ack = this.awaitAck(messageId, timeoutMs);
    this.raw({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false, messageId });
    return ack;
  }

  pause(): void {
    this.socket.pause();
  }

  close(): void {
    this.socket.destroy();
  }
}
