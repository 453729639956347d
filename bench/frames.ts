/**
 * Camera frames through the hub, compared with Mosquitto relaying the same payloads in the same run:
 * DEVICES cameras each send a FRAME_BYTES frame FPS times a second to VIEWERS viewers each.
 * Reported: server CPU seconds per MB delivered to viewers and server RSS; then the same load with one viewer per
 * camera that stops reading (a slow viewer), and how much the server's RSS grew meanwhile.
 *
 *   npm run bench -- --frames            (or: node --import tsx bench/frames.ts [--quick] [--duration S])
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { WebSocket } from 'ws';
import { encodeBlobFrame } from '../src/core/blobs.js';
import { makeFixture } from './fixture.js';
import type { DeviceCreds } from './fixture.js';
import { cpuMicros, rssBytes } from './proc.js';
import { ensureBuilt, iotc, mosquitto } from './targets.js';
import type { RunningTarget } from './targets.js';

const DEVICES = 10;
const VIEWERS = 10;
const FPS = 10;
const FRAME_BYTES = 50_000;

interface Load {
  send(device: number, frame: Buffer): void;
  /** Bytes delivered to viewers so far. */
  received(): number;
  /** Pauses one viewer per device (its socket stops reading). */
  stall(): void;
  close(): Promise<void>;
}

async function iotcLoad(url: string, devices: DeviceCreds[]): Promise<Load> {
  let got = 0;
  const open = (d: DeviceCreds, side: string, extra = '') =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`${url}/ws?device=${d.id}&key=${d.key}&side=${side}${extra}`);
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  const viewers: WebSocket[][] = [];
  for (const d of devices) {
    const row: WebSocket[] = [];
    for (let v = 0; v < VIEWERS; v++) {
      const ws = await open(d, 'client', '&binary=1');
      ws.on('message', (data: Buffer, binary) => binary && (got += data.length));
      row.push(ws);
    }
    viewers.push(row);
  }
  const cams = await Promise.all(devices.map((d) => open(d, 'device')));
  const head = (sensor: string) => encodeBlobFrame({ sensor, type: 'image/jpeg' }, Buffer.alloc(0));
  const h = head('cam');
  return {
    send: (i, frame) => cams[i].send(Buffer.concat([h, frame])),
    received: () => got,
    stall: () => viewers.forEach((row) => (row[0] as unknown as { _socket: net.Socket })._socket.pause()),
    close: async () => [...cams, ...viewers.flat()].forEach((ws) => ws.terminate()),
  };
}

async function mosquittoLoad(port: number): Promise<Load> {
  let got = 0;
  const conn = () => mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, protocolVersion: 4 });
  const viewers: MqttClient[][] = [];
  for (let i = 0; i < DEVICES; i++) {
    const row: MqttClient[] = [];
    for (let v = 0; v < VIEWERS; v++) {
      const c = await conn();
      c.on('message', (_t, p) => (got += p.length));
      await c.subscribeAsync(`devices/D${i}/cam`, { qos: 0 });
      row.push(c);
    }
    viewers.push(row);
  }
  const cams = await Promise.all(Array.from({ length: DEVICES }, conn));
  return {
    send: (i, frame) => void cams[i].publish(`devices/D${i}/cam`, frame, { qos: 0 }),
    received: () => got,
    stall: () => viewers.forEach((row) => (row[0].stream as net.Socket).pause()),
    close: async () => [...cams, ...viewers.flat()].forEach((c) => c.end(true)),
  };
}

interface Figures {
  mbDelivered: number;
  cpuSeconds: number;
  cpuPerMb: number;
  rssMb: number;
  slowRssGrowthMb: number;
}

async function drive(load: Load, pid: number, seconds: number): Promise<Figures> {
  const frames = Array.from({ length: 8 }, () => crypto.randomBytes(FRAME_BYTES));
  let n = 0;
  const tick = () => {
    for (let d = 0; d < DEVICES; d++) load.send(d, frames[n++ % frames.length]);
  };
  const run = async (ms: number) => {
    const timer = setInterval(tick, 1000 / FPS);
    await new Promise((r) => setTimeout(r, ms));
    clearInterval(timer);
  };
  await run(1000); // warm-up
  const cpu0 = cpuMicros(pid);
  const got0 = load.received();
  await run(seconds * 1000);
  const cpuSeconds = (cpuMicros(pid) - cpu0) / 1e6;
  const mbDelivered = (load.received() - got0) / 1e6;
  const rss = rssBytes(pid);
  load.stall();
  await run(Math.max(2000, (seconds * 1000) / 2));
  const rssSlow0 = rssBytes(pid);
  await run(seconds * 1000);
  const slowRssGrowthMb = (rssBytes(pid) - rssSlow0) / 1e6;
  return { mbDelivered, cpuSeconds, cpuPerMb: cpuSeconds / Math.max(mbDelivered, 1e-9), rssMb: rss / 1e6, slowRssGrowthMb };
}

export async function runFrames(opts: { quick?: boolean; duration?: number; log?: (s: string) => void } = {}): Promise<string> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const seconds = opts.duration ?? (opts.quick ? 3 : 10);
  ensureBuilt(log);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'iotc-frames-'));
  const rows: [string, Figures][] = [];
  try {
    const fixture = await makeFixture(work, DEVICES, () => {});
    for (const target of [iotc, mosquitto]) {
      if (target.unavailable()) {
        log(`${target.label}: skipped (${target.unavailable()})`);
        continue;
      }
      const dir = path.join(work, target.name);
      fs.mkdirSync(dir);
      const running: RunningTarget = await target.start({ workDir: dir, template: fixture.file, maxConnectionsPerDevice: 32 });
      try {
        const ep = running.endpoint;
        const load = target === iotc ? await iotcLoad(`ws://${ep.host}:${ep.port}`, fixture.devices) : await mosquittoLoad(ep.port);
        log(`${target.label}: ${DEVICES} cameras × ${FPS} frames/s × ${FRAME_BYTES / 1000} KB → ${VIEWERS} viewers each, ${seconds} s`);
        rows.push([target.label, await drive(load, running.pids[0], seconds)]);
        await load.close();
      } finally {
        await running.stop();
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const table = [
    '| Server | MB delivered | CPU s | CPU ms per MB | RSS MB | RSS growth with a slow viewer per camera, MB |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(([name, f]) => `| ${name} | ${f.mbDelivered.toFixed(0)} | ${f.cpuSeconds.toFixed(2)} | ${(f.cpuPerMb * 1000).toFixed(2)} | ${f.rssMb.toFixed(0)} | ${f.slowRssGrowthMb.toFixed(1)} |`),
  ].join('\n');
  log(table);
  if (rows.length === 2) log(`CPU per MB relayed, IOTcommunicate / Mosquitto: ${(rows[0][1].cpuPerMb / rows[1][1].cpuPerMb).toFixed(1)}×`);
  return table;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, duration: { type: 'string' } } });
  await runFrames({ quick: values.quick, duration: values.duration ? Number(values.duration) : undefined });
}
