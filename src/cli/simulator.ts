import readline from 'node:readline';
import { connect, IotcError, socketUrl } from '../client/node.js';
import type { Client, Reading } from '../client/node.js';
import type { CliIo } from './io.js';
import { UsageError } from './io.js';

export interface SimulatorOptions {
  /** As `iotc device add` prints it (`ws://HOST:8888/ws?device=ID&key=KEY`), with or without /ws, or just the server. */
  url: string;
  deviceId?: string;
  key?: string;
  side: 'device' | 'client';
  /** Reconnect waits, for tests (default: the client's). */
  reconnect?: { initialDelay?: number; maxDelay?: number };
}

/** "21.5" → 21.5, "true" → true, '{"a":1}' → object; anything that is not JSON stays a string. */
export function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
const show = (v: unknown) => JSON.stringify(v);

function describeReading(r: Reading): string {
  return `<- ${r.sensor} = ${show(r.value)}  (from ${r.write}${r.sync ? ', while you were away' : ''}, ${iso(r.time)})`;
}

export const SIMULATOR_HELP = `Type a line and press Enter:
  SENSOR VALUE        send a value, e.g.  temp 21.5   led true   note "hello"
  gets SENSOR         latest value of a sensor
  history SENSOR [N]  last N values (default 10)
  sensors             latest value of every sensor
  call METHOD [JSON]  (client side) send a command to the device and wait for its answer
  reply [JSON]        (device side) answer the oldest command waiting; fail MESSAGE refuses it
  quit                leave (Ctrl-D too)`;

/**
 * The interactive device or client, on the JavaScript client: reads commands from stdin, prints what arrives,
 * and reconnects when the server restarts. With piped input it sends every line, waits for the answers, then exits.
 */
export async function runSimulator(opts: SimulatorOptions, io: CliIo): Promise<number> {
  let url: string;
  try {
    url = socketUrl({ url: opts.url, device: opts.deviceId, key: opts.key, side: opts.side });
  } catch (err) {
    const missing = /^Give the device id and key/.test((err as Error).message);
    throw new UsageError(missing ? 'give --device and --key (or a --url with ?device=ID&key=KEY)' : (err as Error).message);
  }
  const shown = new URL(url);
  const where = `${shown.protocol}//${shown.host}`;
  const deviceId = shown.searchParams.get('device')!;
  const tty = (io.stdin as { isTTY?: boolean }).isTTY === true;
  let rl: readline.Interface | null = null;
  const prompt = `${opts.side}> `;

  /** Prints a line; at a terminal, above the prompt and whatever is being typed. */
  const print = (line: string, stream: 'stdout' | 'stderr' = 'stdout') => {
    const out = io[stream];
    if (rl && tty) {
      readline.clearLine(io.stdout, 0);
      readline.cursorTo(io.stdout, 0);
      out.write(line + '\n');
      rl.prompt(true);
    } else out.write(line + '\n');
  };

  const client: Client = connect(url, { reconnect: opts.reconnect });
  let exitCode = 0;
  const inFlight = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  const fail = (err: unknown) => {
    exitCode = 1;
    const e = err as IotcError;
    print(`!! ${e.message}${e.code ? ` [${e.code}]` : ''}`);
  };
  /** Calls from the app waiting for the user to answer them (device side). */
  const waitingCalls: { method: string; answer: (v: unknown) => void; refuse: (e: Error) => void }[] = [];

  client.on('reading', (r) => print(describeReading(r)));
  client.on('error', (e) => client.connected && fail(e));
  client.onCall('*', (params, call) => {
    print(`<- command ${call.method} ${show(params)}  (call ${call.id}: answer with  reply [JSON]  or  fail MESSAGE)`);
    return new Promise((answer, refuse) => waitingCalls.push({ method: call.method, answer, refuse }));
  });

  const refusal = await new Promise<string | null>((resolve) => {
    const offConnected = client.once('connected', () => (offLost(), resolve(null)));
    const offLost = client.on('disconnected', (e) => {
      offConnected();
      offLost();
      // Failing before the first connection: a wrong address or key is likelier than a restart, so say why and stop.
      resolve(e.error ? `refused by ${where}: ${e.error.message} [${e.error.code}]` : `cannot connect to ${where}: ${e.reason}`);
    });
  });
  // Nothing is printed to stdout before the hub accepts the key: a refusal is one line on stderr.
  if (refusal) {
    client.close();
    io.stderr.write(refusal + '\n');
    return 1;
  }

  await new Promise<void>((resolve) => {
    let lostOnce = false;
    client.on('disconnected', (e) => {
      if (e.retryIn === null) {
        if (e.error) io.stderr.write(`connection closed: ${e.error.message} [${e.error.code}]\n`);
        if (e.error) exitCode = 1;
        rl?.close();
        return resolve();
      }
      if (!lostOnce) print(`-- connection lost${e.reason ? ` (${e.reason})` : ''}: reconnecting; what you type meanwhile is sent then`);
      lostOnce = true;
    });
    client.on('connected', () => {
      if (lostOnce) print(`-- reconnected to ${where}`);
      lostOnce = false;
    });
    print(`connected to ${where} as the ${opts.side} side of ${deviceId}`);
    if (tty) print(SIMULATOR_HELP);
    rl = readline.createInterface({ input: io.stdin, output: tty ? io.stdout : undefined, terminal: tty, prompt });
    if (tty) rl.prompt();
    rl.on('line', (line) => {
      handleLine(line.trim());
      if (tty) rl?.prompt();
    });
    rl.on('close', () => {
      rl = null;
      // Standard input ended: wait for every answer still due, then leave.
      void (async () => {
        while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
        resolve();
      })();
    });
  });
  client.close();
  return exitCode;

  function handleLine(text: string): void {
    if (!text) return;
    const [word, ...rest] = text.split(/\s+/);
    const argText = text.slice(word.length).trim();
    if (word === 'quit' || word === 'exit') return void rl?.close();
    if (word === 'help') return print(SIMULATOR_HELP);
    if (word === 'sensors') {
      return track(client.sensors().then((list) => print(list.map((r) => `   ${r.sensor} = ${show(r.value)} (${r.write})`).join('\n') || '   (no sensors)'), fail));
    }
    if (word === 'gets' && rest.length === 1) {
      return track(client.request({ method: 'gets', sensor: rest[0] }).then((r) => print(`   ${r.sensor} = ${show(r.value)} (${r.write}, ${iso(r.time)})`), fail));
    }
    if (word === 'history' && rest.length >= 1) {
      return track(client.history(rest[0], { limit: Number(rest[1] ?? 10) }).then((list) => print(list.map((r) => `   ${iso(r.time)}  ${show(r.value)}`).join('\n') || '   (no readings)'), fail));
    }
    if (word === 'call' && rest.length >= 1 && opts.side === 'client') {
      const params = rest.length > 1 ? parseValue(argText.slice(rest[0].length).trim()) : null;
      print(`-> command ${rest[0]} ${show(params)} sent; waiting for the device's answer`);
      return track(client.call(rest[0], params).then((result) => print(`<- ${rest[0]} answered: ${show(result)}`), fail));
    }
    if ((word === 'reply' || word === 'fail') && opts.side === 'device') {
      const call = waitingCalls.shift();
      if (!call) return print('!! no command is waiting for an answer');
      if (word === 'reply') call.answer(argText ? parseValue(argText) : null);
      else call.refuse(new Error(argText || 'refused'));
      return print(`-> answered ${call.method}`);
    }
    if (rest.length === 0) {
      exitCode = 1;
      return print('!! give a sensor and a value, e.g.  temp 21.5');
    }
    const value = parseValue(argText);
    if (!client.connected) print(`-- not connected: ${word} = ${show(value)} waits and is sent on reconnecting`);
    track(client.put(word, value).then((ack) => print(`stored ${word} = ${show(value)} at ${iso(ack.time)}`), fail));
  }
}
