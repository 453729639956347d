/**
 * The soak run's ordinary load on every door, kept gentle (the machine is shared): WebSocket devices writing
 * puts with ids and their client sides reading, HTTP one-line updates and history reads, MQTT publishers
 * (QoS 1) and subscribers, reconnect storms and readers that stop reading.
 */
import { MqttPeer, Victim, WsPeer, request } from './arena/index.js';
import type { Account, Hub } from './arena/index.js';

export interface LoadCounters {
  /** What failed, by door and reason. */
  failures: Record<string, number>;
  httpOk: number;
  mqttAcked: number;
  wsDelivered: number;
  mqttDelivered: number;
  stormConnections: number;
  slowReadersClosed: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SoakLoad {
  readonly writers: Victim[] = [];
  private readonly readers: WsPeer[] = [];
  private readonly subscribers: MqttPeer[] = [];
  private readonly publishers: MqttPeer[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly loops: Promise<void>[] = [];
  private running = true;
  readonly counters: LoadCounters = { failures: {}, httpOk: 0, mqttAcked: 0, wsDelivered: 0, mqttDelivered: 0, stormConnections: 0, slowReadersClosed: 0 };

  constructor(
    private readonly hub: Hub,
    private readonly account: Account,
    private readonly devices: { id: string; key: string }[],
    private readonly localAddress: string,
  ) {}

  private fail(what: string): void {
    this.counters.failures[what] = (this.counters.failures[what] ?? 0) + 1;
  }

  async start(): Promise<void> {
    const [d0, d1, d2, d3] = this.devices;
    // WebSocket: four devices writing puts with ids (5/s each) and a reading client side on each.
    for (const d of [d0, d1, d2, d3]) {
      this.writers.push(await new Victim({ wsUrl: this.hub.wsUrl, httpUrl: this.hub.url, device: d, rate: 5, sensor: 'w', localAddress: this.localAddress }).start());
      this.readers.push(await WsPeer.connect(this.hub.wsUrl, d, 'client', this.localAddress));
    }
    // MQTT: two devices publishing QoS 1 (5/s each), their client sides subscribed to everything of theirs.
    for (const d of [d0, d1]) {
      this.subscribers.push(await MqttPeer.connect(this.hub.mqttPort, { username: `${d.id}:client`, password: d.key, localAddress: this.localAddress }));
      await this.subscribers[this.subscribers.length - 1].subscribe([`devices/${d.id}/#`]);
      this.publishers.push(await MqttPeer.connect(this.hub.mqttPort, { username: d.id, password: d.key, localAddress: this.localAddress }));
    }
    let seq = 0;
    this.timers.push(setInterval(() => {
      for (const [i, p] of this.publishers.entries()) {
        if (p.closed) {
          this.fail('mqtt: publisher connection lost');
          const d = this.devices[i];
          void MqttPeer.connect(this.hub.mqttPort, { username: d.id, password: d.key, localAddress: this.localAddress }).then((np) => (this.publishers[i] = np), () => this.fail('mqtt: reconnect failed'));
          continue;
        }
        void p.publish(`devices/${this.devices[i].id}/mq`, String(++seq), 1, 10_000).then((ack) => (ack?.cmd === 'puback' ? this.counters.mqttAcked++ : this.fail('mqtt: no PUBACK')));
      }
    }, 200));
    // HTTP: one-line updates (2/s) and history reads with the account's token (1/s).
    this.timers.push(setInterval(() => {
      const d = d2;
      void request(`${this.hub.url}/api/v1/update?device=${d.id}&key=${d.key}&temp=${(20 + Math.random()).toFixed(2)}`, { localAddress: this.localAddress }).then(
        (r) => (r.status === 200 ? this.counters.httpOk++ : this.fail(`http update: ${r.status}`)),
        () => this.fail('http update: no answer'),
      );
    }, 500));
    this.timers.push(setInterval(() => {
      void request(`${this.hub.url}/api/v1/devices/${d0.id}/sensors/w/history?limit=200`, { headers: { authorization: `Bearer ${this.account.token}` }, localAddress: this.localAddress }).then(
        (r) => (r.status === 200 ? this.counters.httpOk++ : this.fail(`http history: ${r.status}`)),
        () => this.fail('http history: no answer'),
      );
    }, 1000));
    this.loops.push(this.storms(), this.slowReaders());
  }

  /** Every 30 s, 40 connections on the client side of the load devices opened at once and closed at once. */
  private async storms(): Promise<void> {
    while (this.running) {
      await sleep(30_000);
      if (!this.running) break;
      const peers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          WsPeer.connect(this.hub.wsUrl, this.devices[i % 4], 'client', this.localAddress).then(
            (p) => (this.counters.stormConnections++, p),
            () => (this.fail('storm: connect failed'), null),
          ),
        ),
      );
      for (const p of peers) p?.close();
    }
  }

  /** Every 45 s, a client that stops reading while its device keeps writing, for 20 s. */
  private async slowReaders(): Promise<void> {
    while (this.running) {
      await sleep(45_000);
      if (!this.running) break;
      const peer = await WsPeer.connect(this.hub.wsUrl, this.devices[3], 'client', this.localAddress).catch(() => null);
      if (!peer) {
        this.fail('slow reader: connect failed');
        continue;
      }
      peer.pause();
      await sleep(20_000);
      if (!peer.open) this.counters.slowReadersClosed++;
      peer.close();
    }
  }

  /** Counters read from the connections. */
  snapshot(): LoadCounters {
    this.counters.wsDelivered = this.readers.reduce((a, r) => a + r.delivered, 0);
    this.counters.mqttDelivered = this.subscribers.reduce((a, s) => a + s.publishes, 0);
    return { ...this.counters, failures: { ...this.counters.failures } };
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const t of this.timers) clearInterval(t);
    await Promise.all(this.writers.map((w) => w.stop()));
    for (const c of [...this.readers, ...this.subscribers, ...this.publishers]) c.close();
  }
}
