/**
 * Chunks stored one transaction each (as before) against chunks batched per turn (as the hub stores them now):
 * one camera or ten send 50 KB frames, each as soon as its previous one is acknowledged (stored and committed) or with
 * 8 in flight (a sender that does not wait), with the
 * 8 MiB budget full so every commit also prunes. Frames per second, and CPU per frame of this process and of the
 * PostgreSQL backends serving it, in interleaved rounds on SQLite and PostgreSQL; medians.
 * Run: node --import tsx bench/blob-batches.ts [seconds per round] [rounds]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { blobBatcher } from '../src/core/blobs.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { NewBlob, Store } from '../src/store/types.js';
import { cpuMicros } from './proc.js';

const SECONDS = Number(process.argv[2] ?? 4);
const ROUNDS = Number(process.argv[3] ?? 3);
/** Cameras, and frames each keeps in flight. */
const SCENARIOS: [number, number][] = [[1, 1], [1, 8], [10, 1]];
const SIZE = 50_000;
const BUDGET = 8 * 1024 * 1024;
const APP = 'iotc-blob-batches-bench';
const frames = Array.from({ length: 16 }, () => crypto.randomBytes(SIZE));

type Mode = 'one transaction per chunk' | 'batched per turn';
interface Round { fps: number; cpuMsPerFrame: number; dbCpuMsPerFrame: number | null }

async function cameras(store: Store, n: number): Promise<string[]> {
  const user = await store.createUser({ email: `bench-${crypto.randomUUID()}@example.com`, name: 'b', passwordHash: 'x' });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `CAM${crypto.randomBytes(9).toString('hex')}`.slice(0, 20).toUpperCase();
    await store.createDevice({ id, userId: user.id, name: `cam ${i}`, keyHash: 'h' });
    ids.push(id);
  }
  return ids;
}

/** Each camera sends its next frame once the last one is stored: what an acknowledging sender does. */
async function run(store: Store, ids: string[], inFlight: number, mode: Mode, seconds: number, dbCpu: () => Promise<number | null>): Promise<Round> {
  const batcher = blobBatcher(store, { maxBlobBytes: 262_144, blobBudgetBytes: BUDGET });
  const append = mode === 'batched per turn' ? (b: NewBlob) => batcher.write([b]) : (b: NewBlob) => store.appendBlobs([b], BUDGET);
  let stored = 0;
  const until = Date.now() + seconds * 1000;
  const cpu0 = process.cpuUsage();
  const db0 = await dbCpu();
  const t0 = performance.now();
  // `inFlight` senders per camera: 1 waits for each ack; more is a camera sending without waiting (fire-and-forget).
  await Promise.all(ids.flatMap((deviceId, c) => Array.from({ length: inFlight }, async () => {
    for (let i = c; Date.now() < until; i++) {
      await append({ deviceId, sensor: 'cam', side: 'device', type: 'image/jpeg', data: frames[i % 16], time: Date.now() });
      stored++;
    }
  })));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const db1 = await dbCpu();
  return {
    fps: stored / elapsed,
    cpuMsPerFrame: (cpu.user + cpu.system) / 1000 / stored,
    dbCpuMsPerFrame: db0 === null || db1 === null ? null : (db1 - db0) / 1000 / stored,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(name: string, store: Store, dbCpu: () => Promise<number | null>): Promise<void> {
  for (const [count, inFlight] of SCENARIOS) await measureScenario(name, store, count, inFlight, dbCpu);
}

async function measureScenario(name: string, store: Store, count: number, inFlight: number, dbCpu: () => Promise<number | null>): Promise<void> {
  const ids = await cameras(store, count);
  // Fill every camera's budget first, so each commit of the rounds also prunes.
  const fill = async (deviceId: string) => {
    for (let i = 0; i * SIZE < BUDGET; i += 20) await store.appendBlobs(Array.from({ length: 20 }, (_, j) => ({ deviceId, sensor: 'cam', side: 'device' as const, type: 'image/jpeg', data: frames[j % 16], time: Date.now() })), BUDGET);
  };
  for (const id of ids) await fill(id);
  const label = `${count} camera${count > 1 ? 's' : ''}, ${inFlight === 1 ? 'each waiting for its ack' : `${inFlight} frames in flight`}`;
  const results = new Map<Mode, Round[]>([['one transaction per chunk', []], ['batched per turn', []]]);
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of (r % 2 === 0 ? ['one transaction per chunk', 'batched per turn'] : ['batched per turn', 'one transaction per chunk']) as Mode[]) {
      results.get(mode)!.push(await run(store, ids, inFlight, mode, SECONDS, dbCpu));
    }
  }
  for (const [mode, rounds] of results) {
    const db = rounds.map((x) => x.dbCpuMsPerFrame).filter((x): x is number => x !== null);
    console.log(`| ${name} | ${label} | ${mode} | ${median(rounds.map((x) => x.fps)).toFixed(0)} | ${median(rounds.map((x) => x.cpuMsPerFrame)).toFixed(2)} | ${db.length ? median(db).toFixed(2) : '—'} |`);
  }
  for (const id of ids) await store.deleteDevice(id);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iotc-blob-batches-'));
try {
  console.log(`${SIZE / 1000} KB frames; budget ${BUDGET / 1048576} MiB per camera, full; ${ROUNDS} rounds of ${SECONDS} s per mode, interleaved, medians`);
  console.log('| Store | Senders | Chunks stored | frames/s | hub CPU ms per frame | PostgreSQL CPU ms per frame |\n| --- | --- | --- | --- | --- | --- |');
  const sqlite = new SqliteStore(path.join(dir, 'iotc.db'));
  await measure('SQLite', sqlite, async () => null);
  await sqlite.close();
  const url = new URL(process.env.IOTC_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres?schema=iotc_blob_batches_bench');
  url.searchParams.set('application_name', APP);
  let store: PostgresStore | null = null;
  const admin = new pg.Client({ connectionString: url.toString().replace(/[?].*$/, '') });
  try {
    store = await PostgresStore.open(url.toString());
    await admin.connect();
    // The server's processes serving this benchmark's connections (same machine): their CPU is the store's share.
    const dbCpu = async () => {
      const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [APP]);
      return rows.reduce((sum, r) => sum + cpuMicros(r.pid), 0);
    };
    await measure('PostgreSQL', store, dbCpu);
  } catch (err) {
    console.log(`| PostgreSQL | (not measured: ${(err as Error).message}) | | | | |`);
  } finally {
    await store?.close();
    await admin.end().catch(() => {});
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
