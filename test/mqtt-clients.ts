/** MQTT clients this project did not write, for tests: Mosquitto's command-line tools and the mqtt npm client. */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import mqtt from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { runProcess } from './helpers.js';
import type { ProcessResult } from './helpers.js';

/** Whether Mosquitto's clients are installed; absent, tests skip with a notice (or fail under IOTC_REQUIRE_SERVICES=1). */
export function mosquittoAvailable(): boolean {
  try {
    execFileSync('mosquitto_pub', ['--help'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // mosquitto_pub --help exits 1 after printing its usage; only a missing binary is "absent".
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return true;
    if (process.env.IOTC_REQUIRE_SERVICES === '1') throw new Error('mosquitto_pub is required (IOTC_REQUIRE_SERVICES=1); install mosquitto-clients');
    console.log('# notice: mosquitto-clients not installed; skipping tests that need mosquitto_pub / mosquitto_sub');
    return false;
  }
}

/** Runs mosquitto_pub to completion (with QoS 1 it exits only after the PUBACK). */
export function mosquittoPub(args: string[], timeoutMs = 10_000): Promise<ProcessResult> {
  return runProcess('mosquitto_pub', args, { timeoutMs });
}

/** A running mosquitto_sub printing "RETAIN TOPIC PAYLOAD" per message; lines are awaited in order. */
export class MosquittoSub {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: string[] = [];
  stderr = '';
  private buffer = '';
  private waiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn('mosquitto_sub', [...args, '-F', '%r %t %p']);
    this.child.stdout.on('data', (d) => {
      this.buffer += d;
      let i: number;
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, i));
        this.buffer = this.buffer.slice(i + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    this.child.stderr.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  /** Waits for the `n`th line (1-based). */
  async line(n: number, timeoutMs = 5000): Promise<string> {
    const until = Date.now() + timeoutMs;
    while (this.lines.length < n) {
      if (Date.now() > until) throw new Error(`mosquitto_sub: no line ${n} within ${timeoutMs} ms; got ${JSON.stringify(this.lines)}; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
    return this.lines[n - 1];
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}

/** A connected mqtt.js client that never reconnects by itself (tests decide when to reconnect). */
export async function mqttConnect(url: string, opts: IClientOptions): Promise<MqttClient> {
  return mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
}

/** Messages as they arrive on an mqtt.js client, awaited in order. */
export class Inbox {
  readonly messages: { topic: string; payload: string; retain: boolean; qos: number }[] = [];
  private taken = 0;

  constructor(client: MqttClient) {
    client.on('message', (topic, payload, packet) => this.messages.push({ topic, payload: payload.toString(), retain: packet.retain, qos: packet.qos }));
  }

  async next(timeoutMs = 5000): Promise<{ topic: string; payload: string; retain: boolean; qos: number }> {
    const until = Date.now() + timeoutMs;
    while (this.messages.length <= this.taken) {
      if (Date.now() > until) throw new Error(`no MQTT message within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.messages[this.taken++];
  }

  get unread(): number {
    return this.messages.length - this.taken;
  }
}

/** Resolves when the client's connection is gone, with the DISCONNECT reason code an MQTT 5 server sent, if any. */
export function closedWith(client: MqttClient, timeoutMs = 5000): Promise<{ reasonCode?: number }> {
  return new Promise((resolve, reject) => {
    let reasonCode: number | undefined;
    const timer = setTimeout(() => reject(new Error('connection not closed in time')), timeoutMs);
    client.on('disconnect', (packet) => (reasonCode = packet.reasonCode));
    client.once('close', () => {
      clearTimeout(timer);
      resolve({ reasonCode });
    });
  });
}
