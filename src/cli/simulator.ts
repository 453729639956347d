import readline from 'node:readline';
import { WebSocket } from 'ws';
import type { CliIo } from './io.js';

export interface SimulatorOptions {
  url: string;
  deviceId: string;
  key: string;
  side: 'device' | 'client';
}

/** "21.5" → 21.5, "true" → true, '{"a":1}' → object; anything that is not JSON stays a string. */
export function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function formatIncoming(raw: string): string {
  try {
    const m = JSON.parse(raw);
    if (m && typeof m === 'object' && 'sensor' in m && !('ok' in m)) {
      const when = typeof m.time === 'number' ? new Date(m.time).toISOString() : '';
      return `<- ${m.sensor} = ${JSON.stringify(m.value)}  (from ${m.write}${m.sync ? ', while you were away' : ''}, ${when})`;
    }
    if (m && m.ok === false) return `!! ${m.error}${m.code ? ` [${m.code}]` : ''}`;
    if (m && m.ok === true && 'readings' in m) {
      return m.readings.map((r: { time: number; value: unknown }) => `   ${new Date(r.time).toISOString()}  ${JSON.stringify(r.value)}`).join('\n') || '   (no readings)';
    }
    if (m && m.ok === true && 'sensors' in m) {
      return m.sensors.map((r: { sensor: string; value: unknown; write: string }) => `   ${r.sensor} = ${JSON.stringify(r.value)} (${r.write})`).join('\n') || '   (no sensors)';
    }
    if (m && m.ok === true && 'sensor' in m) return `   ${m.sensor} = ${JSON.stringify(m.value)} (${m.write}, ${new Date(m.time).toISOString()})`;
    if (m && m.ok === true) return `ok${m.id !== undefined ? ` #${m.id}` : ''}`;
  } catch {
    /* not JSON: print as it came */
  }
  return raw;
}

export const SIMULATOR_HELP = `Type a line and press Enter:
  SENSOR VALUE        send a value, e.g.  temp 21.5   led true   note "hello"
  gets SENSOR         latest value of a sensor
  history SENSOR [N]  last N values (default 10)
  sensors             latest value of every sensor
  quit                leave (Ctrl-D too)`;

/**
 * The interactive device or client: reads commands from stdin, prints what arrives.
 * With piped input it sends every line, waits for the answers, then exits.
 */
export function runSimulator(opts: SimulatorOptions, io: CliIo): Promise<number> {
  const wsUrl = new URL(opts.url.replace(/^http/, 'ws'));
  wsUrl.pathname = wsUrl.pathname.replace(/\/$/, '') + '/ws';
  wsUrl.search = new URLSearchParams({ device: opts.deviceId, key: opts.key, side: opts.side }).toString();
  const print = (line: string) => io.stdout.write(line + '\n');

  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl);
    let nextId = 1;
    const waiting = new Set<number>();
    let inputDone = false;
    let exitCode = 0;
    let rl: readline.Interface | null = null;

    const maybeFinish = () => {
      if (inputDone && waiting.size === 0) ws.close(1000);
    };
    const send = (msg: Record<string, unknown>) => {
      const id = nextId++;
      waiting.add(id);
      ws.send(JSON.stringify({ ...msg, id }));
    };

    ws.on('open', () => {
      print(`connected to ${wsUrl.origin} as the ${opts.side} side of ${opts.deviceId}`);
      print(SIMULATOR_HELP);
      rl = readline.createInterface({ input: io.stdin, terminal: false });
      rl.on('line', (line) => {
        const text = line.trim();
        if (!text) return;
        const [word, ...rest] = text.split(/\s+/);
        if (word === 'quit' || word === 'exit') return rl!.close();
        if (word === 'sensors') return send({ method: 'sensors' });
        if (word === 'gets' && rest.length === 1) return send({ method: 'gets', sensor: rest[0] });
        if (word === 'history' && rest.length >= 1) return send({ method: 'history', sensor: rest[0], limit: Number(rest[1] ?? 10) });
        if (rest.length === 0) return print('!! give a sensor and a value, e.g.  temp 21.5');
        send({ method: 'put', status: { sensor: word, value: parseValue(text.slice(word.length).trim()) } });
      });
      rl.on('close', () => {
        inputDone = true;
        maybeFinish();
      });
    });
    ws.on('message', (data) => {
      const raw = data.toString();
      print(formatIncoming(raw));
      try {
        const m = JSON.parse(raw);
        if (typeof m?.id === 'number' && 'ok' in m) {
          waiting.delete(m.id);
          if (m.ok === false) exitCode = 1;
          maybeFinish();
        }
      } catch {
        /* printed above */
      }
    });
    ws.on('close', (code, reason) => {
      rl?.close();
      // A connection that never opened was already explained by the error handler.
      if (rl && code !== 1000 && code !== 1005) {
        io.stderr.write(`connection closed: ${code} ${reason.toString()}\n`);
        exitCode = 1;
      }
      resolve(exitCode);
    });
    ws.on('error', (err) => {
      io.stderr.write(`cannot connect to ${wsUrl.origin}: ${err.message}\n`);
      exitCode = 1;
    });
  });
}
