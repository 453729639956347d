/**
 * The attacks of issue 9 (findings 1–6), each as one account holder would run them with their own account,
 * device and credentials — at full dose for `npm run attacks` (scale 1) and in small doses for the soak run.
 * Each reports what it managed (notes) and, where the finding is about a missing limit, whether the limit held.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { ATTACKER_ADDRESS, MqttPeer, WsPeer, createDevice, jsonHeaders, request, webSession } from './arena/index.js';
import type { Account, Hub, HubOptions } from './arena/index.js';

export interface AbuseContext {
  hub: Hub;
  attacker: Account;
  victim: Account;
  /** How long the attack goes on once set up. */
  seconds: number;
  /** 1 = the dose of `npm run attacks`; the soak run uses small fractions. */
  scale: number;
  log(line: string): void;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface AbuseResult {
  notes: string[];
  checks: Check[];
}

export interface Abuse {
  id: string;
  /** The finding of issue 9 it re-runs; 0 for an attack of its own. */
  finding: number;
  title: string;
  /** How this run differs from the issue's figures, and why. */
  scaled: string;
  hub?: HubOptions;
  /** The victim reopens its connection this often (ms), where the attack is on connecting. */
  victimReconnectMs?: number;
  run(ctx: AbuseContext): Promise<AbuseResult>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const n = (base: number, scale: number) => Math.max(1, Math.round(base * scale));
const tally = (counts: Record<string, number>, key: string) => (counts[key] = (counts[key] ?? 0) + 1);
const show = (counts: Record<string, number>) => Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
const codeOf = (reply: any) => (reply?.ok ? 'ok' : String(reply?.code ?? 'error'));

/** Calls `fn` every `ms` until `seconds` have passed, without waiting for the calls (an attacker does not). */
async function every(ms: number, seconds: number, fn: (i: number) => void | Promise<unknown>): Promise<void> {
  const end = Date.now() + seconds * 1000;
  const pending: Promise<unknown>[] = [];
  for (let i = 0; Date.now() < end; i++) {
    pending.push(Promise.resolve(fn(i)).catch(() => {}));
    await sleep(ms);
  }
  await Promise.race([Promise.all(pending), sleep(15_000)]);
}

/** Runs `count` tasks, `concurrency` at a time, starting none after `deadline` (ms since epoch); resolves to how many started. */
async function pool(count: number, concurrency: number, fn: (i: number) => Promise<void>, deadline = Infinity): Promise<number> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count && Date.now() < deadline) await fn(next++).catch(() => {});
  }));
  return next;
}

/** Writes `readings` on the attacker's own device side, `perPut` to a put, up to 16 puts in flight. */
async function writeOwn(ctx: AbuseContext, readings: (i: number) => { sensor: string; value: unknown }, total: number, perPut: number): Promise<Record<string, number>> {
  const ws = await WsPeer.connect(ctx.hub.wsUrl, ctx.attacker.device, 'device', ATTACKER_ADDRESS);
  const outcome: Record<string, number> = {};
  await pool(Math.ceil(total / perPut), 16, async (p) => {
    const status = Array.from({ length: Math.min(perPut, total - p * perPut) }, (_, j) => readings(p * perPut + j));
    tally(outcome, codeOf(await ws.request({ method: 'put', status }, 60_000)));
  });
  ws.close();
  return outcome;
}

export const mqttSubscriptions: Abuse = {
  id: '1a', finding: 1, title: 'MQTT: tens of thousands of filters on one connection, fed batches by its own client side',
  scaled: '30 000 filters (the issue: 10k–100k), 1 500 per SUBSCRIBE; 50-reading batches at 100/s as in the issue',
  async run(ctx) {
    const own = ctx.attacker.device;
    const sub = await MqttPeer.connect(ctx.hub.mqttPort, { username: own.id, password: own.key, localAddress: ATTACKER_ADDRESS });
    const filters = n(30_000, ctx.scale);
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < filters; i += 1500) acks.push(sub.subscribe(Array.from({ length: Math.min(1500, filters - i) }, (_, j) => `devices/${own.id}/f${i + j}`), 20_000));
    const subacks = (await Promise.all(acks)).filter(Boolean).length;
    const feeder = await WsPeer.connect(ctx.hub.wsUrl, own, 'client', ATTACKER_ADDRESS);
    const outcome: Record<string, number> = {};
    const status = Array.from({ length: 50 }, (_, i) => ({ sensor: `f${i}`, value: i }));
    await every(10 / Math.min(1, ctx.scale), ctx.seconds, async () => tally(outcome, codeOf(await feeder.request({ method: 'put', status }, 30_000))));
    const notes = [`${filters} filters in ${acks.length} SUBSCRIBEs (${subacks} SUBACKs; connection ${sub.closed ? 'closed by the hub' : 'open'})`, `batches: ${show(outcome)}`, `deliveries to the subscriber: ${sub.publishes}`];
    sub.close();
    feeder.close();
    return { notes, checks: [] };
  },
};

export const retainedMatching: Abuse = {
  id: '1b', finding: 1, title: 'MQTT: one SUBSCRIBE of 1 000 non-matching filters on a device with many sensors, repeated',
  scaled: '5 000 sensors (the issue gives no count; its freeze was 78 s), then SUBSCRIBEs of 1 000 filters on fresh connections',
  async run(ctx) {
    const own = ctx.attacker.device;
    const written = await writeOwn(ctx, (i) => ({ sensor: `r${i}`, value: i }), n(5_000, ctx.scale), 500);
    const times: number[] = [];
    let refused = 0;
    await every(500, ctx.seconds, async () => {
      const started = performance.now();
      const peer = await MqttPeer.connect(ctx.hub.mqttPort, { username: `${own.id}:client`, password: own.key, localAddress: ATTACKER_ADDRESS });
      const ack = await peer.subscribe(Array.from({ length: n(1_000, ctx.scale) }, (_, j) => `devices/${own.id}/nomatch/${j}`), 60_000);
      if (!ack) refused++;
      times.push(performance.now() - started);
      peer.close();
    });
    return { notes: [`sensor writes: ${show(written)}`, `${times.length} SUBSCRIBEs, slowest ${Math.max(0, ...times).toFixed(0)} ms, ${refused} without SUBACK`], checks: [] };
  },
};

const DEEP = '['.repeat(6000) + ']'.repeat(6000);

export const deepValue: Abuse = {
  id: '2', finding: 2, title: 'A value nested 6 000 levels deep, on WS, HTTP and MQTT',
  scaled: 'as in the issue: [[[…]]] 6 000 levels (12 KB); 50/s in turn on WS, HTTP and MQTT (the issue gives no rate)',
  async run(ctx) {
    const own = ctx.attacker.device;
    const ws = await WsPeer.connect(ctx.hub.wsUrl, own, 'device', ATTACKER_ADDRESS);
    const mqttLogin = { username: own.id, password: own.key, localAddress: ATTACKER_ADDRESS };
    let mq = await MqttPeer.connect(ctx.hub.mqttPort, mqttLogin);
    const byDoor: Record<string, Record<string, number>> = { ws: {}, http: {}, mqtt: {} };
    const body = `{"sensor":"deep","value":${DEEP}}`;
    await every(20 / Math.min(1, ctx.scale), ctx.seconds, async (i) => {
      const door = ['ws', 'http', 'mqtt'][i % 3];
      if (door === 'ws') {
        const reply = await new Promise<any>((resolve) => {
          const id = `deep${i}`;
          const onMessage = (data: Buffer) => {
            const m = JSON.parse(data.toString());
            if (m.id === id) (ws.ws.off('message', onMessage), resolve(m));
          };
          ws.ws.on('message', onMessage);
          ws.send(`{"method":"put","id":"${id}","status":${body}}`);
          setTimeout(() => resolve({ code: 'timeout' }), 10_000);
        });
        tally(byDoor.ws, codeOf(reply));
      } else if (door === 'http') {
        const res = await request(`${ctx.hub.url}/api/v1/devices/${own.id}/readings`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-device-key': own.key }, body, localAddress: ATTACKER_ADDRESS });
        tally(byDoor.http, res.status < 300 ? 'ok' : `${res.status} ${/"error":"(\w+)"/.exec(res.text())?.[1] ?? ''}`.trim());
      } else {
        if (mq.closed) {
          tally(byDoor.mqtt, 'connection closed by the hub');
          mq = await MqttPeer.connect(ctx.hub.mqttPort, mqttLogin);
        } else tally(byDoor.mqtt, (await mq.publish(`devices/${own.id}/deep`, DEEP, 1, 10_000)) ? 'puback' : 'no puback');
      }
    });
    ws.close();
    mq.close();
    const unavailable = (byDoor.ws.E_UNAVAILABLE ?? 0) + (byDoor.http['503 E_UNAVAILABLE'] ?? 0);
    return {
      notes: Object.entries(byDoor).map(([door, c]) => `${door}: ${show(c)}`),
      checks: [{ name: 'the deep value is refused at the door, not in the shared batch', ok: unavailable === 0, detail: `${unavailable} answers E_UNAVAILABLE` }],
    };
  },
};

export const historySlowReader: Abuse = {
  id: '3', finding: 3, title: 'A client that stops reading and asks for history of 6 KB values',
  scaled: '2 000 stored readings of 6 KB and 20 requests of limit 10 000 (the issue: ~10 000 readings, 12–40 requests, 1.2–2.3 GB)',
  async run(ctx) {
    const value = 'x'.repeat(6000);
    const written = await writeOwn(ctx, () => ({ sensor: 'h', value }), n(2_000, ctx.scale), 10);
    const reader = await WsPeer.connect(ctx.hub.wsUrl, ctx.attacker.device, 'client', ATTACKER_ADDRESS);
    reader.pause();
    const requests = n(20, ctx.scale);
    for (let i = 0; i < requests; i++) reader.send(`{"method":"history","id":${i},"sensor":"h","limit":10000}`);
    await sleep(ctx.seconds * 1000);
    const notes = [`6 KB writes: ${show(written)}`, `${requests} history requests from a reader that never reads; connection ${reader.open ? 'still open' : `closed (${reader.closeCode})`} at the end`];
    reader.close();
    return { notes, checks: [] };
  },
};

export const manySensors: Abuse = {
  id: '4', finding: 4, title: 'Tens of thousands of sensors on one device, then its pages, lists and retained messages',
  scaled: '20 000 sensors (the issue: 100 000), the device list, device page and sensor list polled every second, `#` subscribed',
  async run(ctx) {
    const own = ctx.attacker.device;
    const requested = n(20_000, ctx.scale);
    const written = await writeOwn(ctx, (i) => ({ sensor: `s${i}`, value: i }), requested, 500);
    const session = await webSession(ctx.hub.url, ctx.attacker.email, ctx.attacker.password, ATTACKER_ADDRESS);
    const pages: Record<string, { n: number; maxMs: number; maxBytes: number }> = {};
    const get = async (name: string, url: string, headers: Record<string, string>) => {
      const res = await request(url, { headers, localAddress: ATTACKER_ADDRESS, timeoutMs: 30_000 });
      const p = (pages[name] ??= { n: 0, maxMs: 0, maxBytes: 0 });
      p.n++;
      p.maxMs = Math.max(p.maxMs, res.ms);
      p.maxBytes = Math.max(p.maxBytes, res.body.length);
    };
    let retained = 0;
    await every(1000, ctx.seconds, async (i) => {
      if (i === 2) {
        const mq = await MqttPeer.connect(ctx.hub.mqttPort, { username: `${own.id}:client`, password: own.key, localAddress: ATTACKER_ADDRESS });
        await mq.subscribe([`devices/${own.id}/#`], 30_000);
        await sleep(3000);
        retained = mq.publishes;
        mq.close();
      }
      await Promise.all([
        get('/devices.json', `${ctx.hub.url}/devices.json`, { cookie: session }),
        get('device page', `${ctx.hub.url}/devices/${own.id}`, { cookie: session, accept: 'text/html' }),
        get('API sensors', `${ctx.hub.url}/api/v1/devices/${own.id}/sensors`, { authorization: `Bearer ${ctx.attacker.token}` }),
      ]);
    });
    const stored = await request(`${ctx.hub.url}/api/v1/devices/${own.id}/sensors`, { headers: { authorization: `Bearer ${ctx.attacker.token}` }, localAddress: ATTACKER_ADDRESS, timeoutMs: 60_000 });
    const sensors = stored.status === 200 ? (stored.json().sensors as unknown[]).length : NaN;
    const notes = [
      `sensor writes (batches of 500): ${show(written)}; sensors stored: ${sensors}`,
      ...Object.entries(pages).map(([k, p]) => `${k}: ${p.n} loads, largest ${(p.maxBytes / 1e6).toFixed(1)} MB, slowest ${p.maxMs.toFixed(0)} ms`),
      `retained messages on subscribing to #: ${retained}`,
    ];
    const checks = requested >= 10_000 ? [{ name: 'sensors per device are bounded (E_LIMIT)', ok: (written.E_LIMIT ?? 0) > 0 && sensors < requested, detail: `${sensors} of ${requested} sensors stored` }] : [];
    return { notes, checks };
  },
};

export const guessing: Abuse = {
  id: '5', finding: 5, title: 'Password guessing through a rotating X-Forwarded-For, wrong keys, tokens and devices without end',
  scaled: 'as in the issue, at once for 20 s: 600 log-in guesses and 600 wrong-key attempts (HTTP, WS, MQTT) spread evenly, up to 2 000 tokens and 2 000 devices; IOTC_TRUST_PROXY=true',
  hub: { env: { IOTC_TRUST_PROXY: 'true' } },
  victimReconnectMs: 2000,
  async run(ctx) {
    const s = ctx.scale;
    const xff = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const logins: Record<string, number> = {};
    const keys: Record<string, number> = {};
    const guesses = n(600, s);
    const wrongKeys = n(600, s);
    const victimDevice = ctx.victim.device.id;
    const started = Date.now();
    // Every part runs at once, paced evenly over the attack's time, and stops starting new attempts when it is up.
    const deadline = started + ctx.seconds * 1000;
    const paced = (count: number, i: number) => sleep(Math.max(0, started + (i * ctx.seconds * 1000) / count - Date.now()));
    const guessing = pool(guesses, 4, async (i) => {
      await paced(guesses, i);
      const res = await request(`${ctx.hub.url}/api/v1/auth/login`, { method: 'POST', headers: { ...jsonHeaders(), 'x-forwarded-for': xff(i) }, body: JSON.stringify({ email: ctx.victim.email, password: `guess ${i}` }), localAddress: ATTACKER_ADDRESS });
      tally(logins, String(res.status));
    }, deadline + 2000);
    const keying = pool(wrongKeys, 4, async (i) => {
      await paced(wrongKeys, i);
      if (i % 3 === 0) {
        const res = await request(`${ctx.hub.url}/api/v1/devices/${victimDevice}/latest`, { headers: { 'x-device-key': `K${String(i).padStart(14, '0')}`, 'x-forwarded-for': xff(i) }, localAddress: ATTACKER_ADDRESS });
        tally(keys, `http ${res.status}`);
      } else if (i % 3 === 1) {
        // The door completes the handshake to close with a code a browser can read (4401): wait for it.
        const code = await WsPeer.connect(ctx.hub.wsUrl, { id: victimDevice, key: `K${String(i).padStart(14, '0')}` }, 'client', ATTACKER_ADDRESS).then(
          async (p) => {
            const closed = await Promise.race([p.closed, sleep(3000).then(() => null)]);
            p.close();
            return closed === null ? 'still open' : String(closed);
          },
          (e: Error) => /closed (\d+)/.exec(e.message)?.[1] ?? 'error',
        );
        tally(keys, `ws ${code}`);
      } else {
        const peer = await MqttPeer.connect(ctx.hub.mqttPort, { username: `${victimDevice}:client`, password: `K${String(i).padStart(14, '0')}`, localAddress: ATTACKER_ADDRESS });
        tally(keys, `mqtt ${peer.connack ? `rc ${peer.connack.returnCode}` : 'closed'}`);
        peer.close();
      }
    }, deadline + 2000);
    // Tokens: each has its own request budget, so many tokens make many devices quickly.
    const tokens: string[] = [ctx.attacker.token];
    const tokenOutcome: Record<string, number> = {};
    const minting = pool(n(2000, s), 3, async () => {
      const res = await request(`${ctx.hub.url}/api/v1/tokens`, { method: 'POST', headers: jsonHeaders(tokens[tokens.length - 1]), body: '{"name":"t"}', localAddress: ATTACKER_ADDRESS });
      tally(tokenOutcome, res.status === 201 ? 'created' : `${res.status} ${/"error":"(\w+)"/.exec(res.text())?.[1] ?? ''}`.trim());
      if (res.status === 201) tokens.push(res.json().token);
    }, deadline);
    const deviceOutcome: Record<string, number> = {};
    const registering = pool(n(2000, s), 3, async (i) => {
      const created = await createDevice(ctx.hub.url, tokens[i % tokens.length], `d${i}`, ATTACKER_ADDRESS).then(() => 'created', (e: Error) => /failed: (\d+ \S*)/.exec(e.message)?.[1]?.replace(/\{"error":"(\w+)".*/, '$1') ?? 'error');
      tally(deviceOutcome, created);
    }, deadline);
    const [guessed, keyed] = await Promise.all([guessing, keying, minting, registering]);
    const victimLogin = await request(`${ctx.hub.url}/api/v1/auth/login`, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify({ email: ctx.victim.email, password: ctx.victim.password }), localAddress: '127.0.0.1' });
    const evaluated = logins['401'] ?? 0;
    const keyEvaluated = (keys['http 401'] ?? 0) + (keys['ws 4401'] ?? 0) + (keys['mqtt rc 4'] ?? 0) + (keys['mqtt rc 5'] ?? 0);
    const notes = [
      `${guessed} of ${guesses} log-in guesses and ${keyed} of ${wrongKeys} wrong keys started in time; log-in guesses in ${((Date.now() - started) / 1000).toFixed(0)} s, each from another X-Forwarded-For: ${show(logins)}`,
      `wrong-key attempts on the victim's device: ${show(keys)}`,
      `tokens: ${show(tokenOutcome)}; devices (round-robin over the tokens): ${show(deviceOutcome)}`,
      `the victim's own log-in right after: ${victimLogin.status}`,
    ];
    const full = s >= 0.5;
    const checks: Check[] = full
      ? [
          { name: 'log-in guesses at one account are limited, whatever the address', ok: guessed >= 100 && evaluated < 60, detail: `${evaluated} of ${Object.values(logins).reduce((a, b) => a + b, 0)} guesses checked against the password` },
          { name: 'failed key attempts are limited', ok: keyed >= 100 && keyEvaluated < keyed / 2, detail: `${keyEvaluated} of ${Object.values(keys).reduce((a, b) => a + b, 0)} wrong keys checked` },
          { name: 'tokens per user are capped (E_LIMIT)', ok: Object.keys(tokenOutcome).some((k) => k.includes('E_LIMIT')), detail: show(tokenOutcome) },
          { name: 'devices per user are capped (E_LIMIT)', ok: Object.keys(deviceOutcome).some((k) => k.includes('E_LIMIT')), detail: show(deviceOutcome) },
        ]
      : [];
    return { notes, checks };
  },
};

export const idleSockets: Abuse = {
  id: '6', finding: 6, title: 'Idle unauthenticated sockets on HTTP and MQTT until descriptors run out',
  scaled: 'the hub under `ulimit -n 1024` and 1 200 idle sockets (the issue: 20 000 descriptors), held for the whole attack (--seconds, 20 by default; the issue: HTTP kept ~88 s)',
  hub: { openFiles: 1024 },
  victimReconnectMs: 2000,
  async run(ctx) {
    const count = n(1200, ctx.scale);
    const sockets: { end(): void; closedAt: number | null }[] = [];
    const kinds: Record<string, number> = {};
    let failed = 0;
    const started = Date.now();
    await pool(count, 20, async (i) => {
      const kind = ['http-silent', 'http-partial', 'mqtt-silent', 'mqtt-partial'][i % 4];
      const port = kind.startsWith('http') ? ctx.hub.port : ctx.hub.mqttPort;
      const peer = await MqttPeer.open(port, ATTACKER_ADDRESS).catch(() => null);
      if (!peer) return void failed++;
      tally(kinds, kind);
      const entry = { closedAt: null as number | null, end: () => peer.close() };
      peer.socket.on('close', () => (entry.closedAt = Date.now()));
      if (kind === 'http-partial') peer.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
      // The first bytes of a CONNECT, then nothing: keepalive never starts.
      if (kind === 'mqtt-partial') peer.socket.write(Buffer.from([0x10, 0x20, 0x00, 0x04]));
      sockets.push(entry);
    });
    const openedIn = Date.now() - started;
    await sleep(Math.max(0, ctx.seconds * 1000 - openedIn));
    const dropped = sockets.filter((s) => s.closedAt !== null);
    const notes = [`${sockets.length} idle sockets opened in ${(openedIn / 1000).toFixed(1)} s (${show(kinds)}), ${failed} refused`, `${dropped.length} dropped by the hub within ${ctx.seconds} s, ${sockets.length - dropped.length} still open at the end`];
    for (const s of sockets) s.end();
    return { notes, checks: [] };
  },
};

/** What the store holds, free pages left out: SQLite keeps the file at its largest, and reuses freed pages. */
function liveBytes(dbFile: string): number {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const pages = (db.pragma('page_count', { simple: true }) as number) - (db.pragma('freelist_count', { simple: true }) as number);
    return pages * (db.pragma('page_size', { simple: true }) as number);
  } finally {
    db.close();
  }
}

export const diskFill: Abuse = {
  id: '4b', finding: 4, title: 'Large values as fast as one device may take them, to fill the disk',
  scaled: '8 connections on one device writing 60 KB values, half to one sensor and half each to a new sensor, at the default limits but a readings budget of 16 MiB (IOTC_RETENTION_BYTES), so that the attack\'s time passes it several times over (the issue: "a disk that can be filled")',
  hub: { env: { IOTC_RETENTION_BYTES: String(16 * 2 ** 20) } },
  async run(ctx) {
    const peers = await Promise.all(Array.from({ length: n(8, ctx.scale) }, () => WsPeer.connect(ctx.hub.wsUrl, ctx.attacker.device, 'device', ATTACKER_ADDRESS)));
    const big = 'q'.repeat(60_000);
    const outcome: Record<string, number> = {};
    let acked = 0;
    const end = Date.now() + ctx.seconds * 1000;
    await Promise.all(peers.map(async (ws, k) => {
      for (let i = 0; Date.now() < end; i++) {
        const value = `${k} ${i} ${big}`;
        const reply = await ws.request({ method: 'put', status: { sensor: i % 2 ? `s${k}_${i}` : 'photo', value } }, 60_000);
        tally(outcome, codeOf(reply));
        if (reply?.ok) acked += value.length;
      }
    }));
    for (const ws of peers) ws.close();
    // Readings up to an eighth over their budget; the latest values (IOTC_MAX_LATEST_BYTES, 16 MiB by default)
    // kept twice, as readings and in the latest-values table; and room for everything else of the hub.
    const budget = 16 * 2 ** 20;
    const bound = 1.125 * budget + 2 * 16 * 2 ** 20 + 16 * 2 ** 20;
    const live = liveBytes(ctx.hub.dbFile);
    const MB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    const notes = [`puts: ${show(outcome)}; ${MB(acked)} of values acknowledged; the store holds ${MB(live)}`];
    const checks = ctx.scale >= 1
      ? [{ name: 'what a device keeps is bounded by its byte budget', ok: live < bound && acked > 2 * bound, detail: `${MB(live)} held of ${MB(acked)} acknowledged (bound ${MB(bound)}; the check needs twice that written)` }]
      : [];
    return { notes, checks };
  },
};


export const accountFlood: Abuse = {
  id: '7', finding: 0, title: 'One account writes as fast as the hub takes it: batch puts on many connections of its devices',
  scaled: '4 devices × 8 connections, each with 8 batch puts of 500 small readings in flight, at the default limits (a batch counts as one message), from a process of its own, for at least 75 s at full dose so that the minute\'s retention run falls inside it (one account\'s abuse must never slow or break another\'s)',
  async run(ctx) {
    // The retention run comes every minute (IOTC_PRUNE_INTERVAL) and deletes what the flood wrote past the count.
    const seconds = ctx.scale >= 1 ? Math.max(ctx.seconds, 75) : ctx.seconds;
    const extra = await Promise.all(Array.from({ length: 3 }, (_, i) => createDevice(ctx.hub.url, ctx.attacker.token, `flood ${i}`, ATTACKER_ADDRESS)));
    const devices = [ctx.attacker.device, ...extra].map((d) => ({ ...d, connections: n(8, ctx.scale) }));
    const child = fork(path.join(path.dirname(fileURLToPath(import.meta.url)), 'arena/flood.ts'), [ctx.hub.wsUrl, String(seconds), '8', JSON.stringify(devices)], {
      execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`the flood's process exited with ${code}`);
    const { outcome, readings } = JSON.parse(out) as { outcome: Record<string, number>; readings: number };
    const refused = Object.entries(outcome).filter(([k]) => k !== 'ok').reduce((sum, [, v]) => sum + v, 0);
    return {
      notes: [`puts: ${show(outcome)}; ${readings} readings acknowledged in ${seconds} s, ${Math.round(readings / seconds)}/s`],
      checks: ctx.scale >= 1 ? [{ name: 'the flooding account is slowed by flow control, not refused', ok: readings > 0 && refused === 0, detail: `${refused} of its puts refused` }] : [],
    };
  },
};

export const ALL_ABUSES: readonly Abuse[] = [mqttSubscriptions, retainedMatching, deepValue, historySlowReader, manySensors, guessing, idleSockets, diskFill, accountFlood];
