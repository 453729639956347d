/**
 * A load-generator process. The bench runs a few of these beside the servers, so what the generator costs
 * shows up in its own /proc entry, not in the server's. It takes one job at a time over IPC:
 * setup (open connections) → start → marks (counter snapshots) → stop (drain) → teardown.
 */
import { Histogram } from './histogram.js';
import { nowUs } from './jobs.js';
import type { ConnectJob, Counters, FromWorker, Job, StreamJob, ToWorker } from './jobs.js';
import { openLink } from './links.js';
import type { Link } from './links.js';
import { openIdle } from './raw-connect.js';
import type { IdleConnection } from './raw-connect.js';

const send = (m: FromWorker) => process.send!(m);

const latency = new Histogram();
const ackLatency = new Histogram();
const connectLatency = new Histogram();
let counters = freshCounters();

function freshCounters(): Counters {
  return {
    sent: 0, delivered: 0, acked: 0, failed: 0, errors: {}, opened: 0, firstConnectAt: 0, lastOpenAt: 0, lagging: 0,
    latency: latency.toJSON(), ackLatency: ackLatency.toJSON(), connectLatency: connectLatency.toJSON(),
  };
}

function countError(code: string): void {
  counters.errors[code] = (counters.errors[code] ?? 0) + 1;
}

/** Ring of send times per device so an ack (which carries the request id) can be timed. */
const RING = 4096;

interface Device {
  index: number;
  link: Link | null;
  sent: number;
  received: number;
  acked: number;
  failed: number;
  clients: number;
  sendTimes: Float64Array;
  ackedSeqs: number[] | null;
  groupId: string;
}

let links: (Link | IdleConnection)[] = [];
let devices: Device[] = [];
let job: Job | null = null;
let sending = false;
let timer: NodeJS.Timeout | null = null;
/** Whether the current stream job's puts carry ids (acknowledged) or are fire-and-forget. */
let withIds = true;
/** Unique MQTT client ids across connect steps (a reused id makes a broker drop the older session). */
let connectSerial = 0;

function inFlight(d: Device, flow: StreamJob['flow']): number {
  return flow === 'acked' ? d.sent - d.acked - d.failed : d.sent - Math.floor(d.received / d.clients);
}

function putOne(d: Device): void {
  const n = ++d.sent;
  const t = nowUs();
  d.sendTimes[n % RING] = t;
  counters.sent++;
  d.link!.put(`{"d":${d.index},"n":${n},"t":${t}}`, withIds ? n : null);
}

function pump(d: Device, j: StreamJob): void {
  while (sending && d.link && inFlight(d, j.flow) < j.window) putOne(d);
}

async function setupStream(j: StreamJob): Promise<number> {
  withIds = j.ids;
  const opening: Promise<Link>[] = [];
  let addr = 0;
  const local = () => j.localAddresses[addr++ % j.localAddresses.length];
  for (const g of j.groups) {
    const groupDevices: Device[] = [];
    for (let i = 0; i < g.devices; i++) {
      const d: Device = {
        index: devices.length, link: null, sent: 0, received: 0, acked: 0, failed: 0, clients: Math.max(1, g.clients),
        sendTimes: new Float64Array(RING), ackedSeqs: j.recordAcks ? [] : null, groupId: g.creds.id,
      };
      devices.push(d);
      groupDevices.push(d);
    }
    // Clients first, so nothing a device sends finds nobody listening.
    for (let i = 0; i < g.clients; i++) {
      opening.push(
        openLink(j.endpoint, 'client', g.creds, local(), {
          reading(value) {
            const v = value as { d: number; t: number };
            const d = devices[v?.d];
            // A frame still buffered from a connection of the previous job, or one not from the load (sync): not counted.
            if (!d) return;
            d.received++;
            counters.delivered++;
            latency.record(nowUs() - v.t);
            if (j.window > 0 && j.flow === 'delivered') pump(d, j);
          },
          reply(ok, _id, code) {
            if (!ok) countError(code ?? 'error');
          },
          closed(code, expected) {
            if (!expected) countError(`client ${code}`);
          },
        }),
      );
    }
    await Promise.all(opening.splice(0));
    for (const d of groupDevices) {
      opening.push(
        openLink(j.endpoint, 'device', g.creds, local(), {
          reading() {},
          reply(ok, id, code) {
            if (ok) {
              d.acked++;
              counters.acked++;
              ackLatency.record(nowUs() - d.sendTimes[id % RING]);
              d.ackedSeqs?.push(id);
            } else {
              d.failed++;
              counters.failed++;
              countError(code ?? 'error');
            }
            if (j.window > 0 && j.flow === 'acked') pump(d, j);
          },
          closed(code, expected) {
            if (!expected) countError(`device ${code}`);
            d.link = null;
          },
        }).then((link) => (d.link = link)),
      );
    }
    links.push(...(await Promise.all(opening.splice(0))));
  }
  return links.length;
}

function startStream(j: StreamJob): void {
  sending = true;
  if (j.window > 0) {
    for (const d of devices) pump(d, j);
    return;
  }
  // Open loop: a 1 ms tick sends whatever is due by now, round-robin over the devices.
  const start = performance.now();
  let offered = 0;
  let next = 0;
  timer = setInterval(() => {
    const due = Math.floor(((performance.now() - start) * j.rate) / 1000) - offered;
    const now = Math.min(due, 5000);
    counters.lagging += due - now;
    for (let i = 0; i < now; i++) {
      const d = devices[next++ % devices.length];
      if (d.link) putOne(d);
    }
    offered += due;
  }, 1);
}

function setupConnect(): number {
  return 0;
}

/** Opens the job's connections at a steady rate (each tick opens what is due), never more than maxPending at once. */
function startConnect(j: ConnectJob): void {
  const start = performance.now();
  let started = 0;
  let pending = 0;
  counters.firstConnectAt = nowUs();
  const openOne = (i: number) => {
    pending++;
    const t0 = nowUs();
    openIdle(j.endpoint, j.creds[i], `i${process.pid}-${++connectSerial}`, j.localAddresses[i % j.localAddresses.length], (why) => countError(why)).then(
      (link) => {
        pending--;
        links.push(link);
        counters.opened++;
        const t = nowUs();
        counters.lastOpenAt = t;
        connectLatency.record(t - t0);
      },
      (err: Error) => {
        pending--;
        counters.failed++;
        countError(`connect: ${String(err.message).slice(0, 60)}`);
      },
    );
  };
  timer = setInterval(() => {
    const due = Math.min(j.creds.length, Math.floor(((performance.now() - start) * j.rate) / 1000));
    while (started < due && pending < j.maxPending) openOne(started++);
    if (started >= j.creds.length && timer) {
      clearInterval(timer);
      timer = null;
    }
  }, 1);
}

function snapshot(): Counters {
  return { ...counters, latency: latency.toJSON(), ackLatency: ackLatency.toJSON(), connectLatency: connectLatency.toJSON() };
}

async function stop(drainMs: number): Promise<void> {
  sending = false;
  if (timer) clearInterval(timer);
  timer = null;
  const j = job;
  if (j?.kind === 'stream') {
    const until = Date.now() + drainMs;
    const settled = () =>
      devices.every((d) => !d.link || (j.flow === 'acked' || d.clients === 0 ? d.sent - d.acked - d.failed : inFlight(d, 'delivered')) <= 0);
    while (!settled() && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  }
  const acked: Record<string, number[]> = {};
  for (const d of devices) if (d.ackedSeqs) acked[d.groupId] = (acked[d.groupId] ?? []).concat(d.ackedSeqs);
  send({ type: 'stopped', counters: snapshot(), acked: j?.kind === 'stream' && j.recordAcks ? acked : undefined });
}

function teardown(): void {
  sending = false;
  if (timer) clearInterval(timer);
  timer = null;
  for (const l of links) l.close();
  for (const d of devices) d.link?.close();
  links = [];
  devices = [];
  job = null;
  latency.reset();
  ackLatency.reset();
  connectLatency.reset();
  counters = freshCounters();
}

process.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'setup':
      if (!(msg.job.kind === 'connect' && msg.job.keep)) teardown();
      job = msg.job;
      (job.kind === 'stream' ? setupStream(job) : Promise.resolve(setupConnect())).then(
        (connections) => send({ type: 'ready', connections }),
        (err: Error) => send({ type: 'error', message: err.message }),
      );
      return;
    case 'start':
      if (job?.kind === 'stream') startStream(job);
      else if (job?.kind === 'connect') startConnect(job);
      return;
    case 'mark':
      if (msg.reset) {
        latency.reset();
        ackLatency.reset();
      }
      send({ type: 'mark', id: msg.id, counters: snapshot() });
      return;
    case 'stop':
      void stop(msg.drainMs);
      return;
    case 'teardown':
      teardown();
      send({ type: 'torndown' });
      return;
    case 'exit':
      teardown();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
