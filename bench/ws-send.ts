/**
 * The WebSocket door's send path alone: CPU per text frame written to real loopback sockets, `ws`'s own send
 * (a header buffer and the string, each socket corked for the turn) against the door's (src/doors/ws-frames.ts:
 * a turn's frames to one socket framed into one buffer, one write), interleaved in one process so the machine's
 * drift falls on both alike. Each turn sends FRAMES frames to each socket, as the door does with a turn's acks and
 * deliveries; the clients read between turns, outside the timed part.
 *   node --import tsx bench/ws-send.ts [--sockets 100] [--frames 1] [--trials 40]
 */
import { parseArgs } from 'node:util';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { textFrames } from '../src/doors/ws-frames.js';

const { values } = parseArgs({ options: { sockets: { type: 'string', default: '100' }, frames: { type: 'string', default: '1' }, trials: { type: 'string', default: '40' } } });
const count = (name: keyof typeof values) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number above 0, got "${values[name]}"`);
  return n;
};
const [sockets, frames, trials] = [count('sockets'), count('frames'), count('trials')];
const TURNS = 100;
const WARMUP_TRIALS = Math.min(5, trials - 1);

const wss = new WebSocketServer({ port: 0, perMessageDeflate: false });
const peers: { ws: WebSocket; socket: Duplex }[] = [];
wss.on('connection', (ws) => peers.push({ ws, socket: (ws as unknown as { _socket: Duplex })._socket }));
await new Promise((resolve) => wss.once('listening', resolve));
const { port } = wss.address() as { port: number };
const clients: WebSocket[] = [];
for (let i = 0; i < sockets; i++) {
  const c = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  await new Promise((resolve, reject) => c.once('open', resolve).once('error', reject));
  clients.push(c);
}
while (peers.length < sockets) await new Promise((resolve) => setTimeout(resolve, 10));

// An acknowledgement-sized frame, as most of the door's frames are.
const text = JSON.stringify({ sensor: 'temperature', value: 21.5, time: Date.now(), seq: 123456, id: 42, side: 'device' });
const turn = new Array<string>(frames).fill(text);
const ways = {
  'ws.send': () => {
    for (const p of peers) p.socket.cork();
    for (const p of peers) for (let f = 0; f < frames; f++) p.ws.send(text);
    for (const p of peers) p.socket.uncork();
  },
  textFrames: () => {
    for (const p of peers) p.socket.write(textFrames(turn.slice()));
  },
};
type Way = keyof typeof ways;
const cpu: Record<Way, number> = { 'ws.send': 0, textFrames: 0 };

for (let trial = 0; trial < trials; trial++) {
  for (const way of (trial % 2 ? ['ws.send', 'textFrames'] : ['textFrames', 'ws.send']) as Way[]) {
    for (let t = 0; t < TURNS; t++) {
      const before = process.cpuUsage();
      ways[way]();
      const used = process.cpuUsage(before);
      if (trial >= WARMUP_TRIALS) cpu[way] += used.user + used.system;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}
const sent = (trials - WARMUP_TRIALS) * TURNS * sockets * frames;
const per = (way: Way) => (cpu[way] / sent).toFixed(3);
console.log(`${sockets} sockets, ${frames} frame(s) each a turn: ws.send ${per('ws.send')} µs/frame, textFrames ${per('textFrames')} µs/frame, ratio ${(cpu.textFrames / cpu['ws.send']).toFixed(3)}`);
for (const c of clients) c.terminate();
wss.close();
