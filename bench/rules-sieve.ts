/**
 * What the automation rules' reading path costs per reading, on the event loop, without the rest of the relay
 * or the machine's noise: committed batches go through the real sieve (src/automations/reading-sieve.ts) in
 * batches like the relay's, for each steady state and for readings no rule names. Compare with the relay's
 * server CPU per message from `npm run bench` (some 20 µs).
 *   node --import tsx bench/rules-sieve.ts [--rules 3] [--devices 100] [--batch 64] [--readings 2000000]
 */
import { parseArgs } from 'node:util';
import { ReadingSieve } from '../src/automations/reading-sieve.js';
import type { SlowJob } from '../src/automations/reading-sieve.js';
import { sortRules } from '../src/automations/rule-state.js';
import type { Rule, Trigger } from '../src/automations/model.js';
import type { NewReading, StoredReading } from '../src/store/types.js';

const { values } = parseArgs({ options: { rules: { type: 'string', default: '3' }, devices: { type: 'string', default: '100' }, batch: { type: 'string', default: '64' }, readings: { type: 'string', default: '2000000' } } });
const perDevice = Number(values.rules);
const devices = Number(values.devices);
const batchSize = Number(values.batch);
const total = Number(values.readings);

const rule = (id: string, deviceId: string, trigger: Trigger, cooldownMs = 0): Rule => ({
  id, deviceId, userId: 1, name: '', enabled: true, trigger, actions: [{ type: 'notify' }], cooldownMs,
  secret: 's', createdAt: 0, updatedAt: 0, lastRunAt: null, lastError: null,
});

interface Case {
  name: string;
  /** No rules anywhere: the hub without automations (what the harness itself costs). */
  none?: boolean;
  /** The rules of one device. */
  rules(deviceId: string): Rule[];
  /** The sensor the readings write. */
  sensor: string;
}

const never = (d: string) => Array.from({ length: perDevice }, (_, i) => rule(`${d}-${i}`, d, { type: 'threshold', sensor: 'temp', op: '>', value: 1e15 + i, forMs: 0 }));
const CASES: Case[] = [
  { name: 'no rules anywhere (the harness alone)', rules: () => [], sensor: 'temp', none: true },
  { name: 'a device without rules', rules: () => [], sensor: 'temp' },
  { name: `${perDevice} rules, on another sensor`, rules: never, sensor: 'hum' },
  { name: `${perDevice} thresholds that never hold`, rules: never, sensor: 'temp' },
  { name: `${perDevice} thresholds holding, alert open`, rules: (d) => Array.from({ length: perDevice }, (_, i) => rule(`${d}-${i}`, d, { type: 'threshold', sensor: 'temp', op: '!=', value: 'off', forMs: 0 })), sensor: 'temp' },
  { name: `${perDevice} changed rules within their cooldown`, rules: (d) => Array.from({ length: perDevice }, (_, i) => rule(`${d}-${i}`, d, { type: 'changed', sensor: 'temp' }, 3_600_000)), sensor: 'temp' },
];

async function run(c: Case): Promise<{ nsPerReading: number; slowJobs: number }> {
  const ids = Array.from({ length: devices }, (_, i) => `dev${i}`);
  // A device nobody has rules on still meets a sieve that holds other devices' rules.
  const set = sortRules(c.none ? [] : [...ids.flatMap((d) => c.rules(d)), ...never('someone else')], new Map(), () => null);
  let slowJobs = 0;
  const sieve = new ReadingSieve(true, () => false, async (job: SlowJob) => {
    slowJobs++;
    // Learn as the engine would: the alert is open while the condition holds.
    job.s.open = job.s.rule.trigger.type === 'threshold' && job.s.rule.trigger.op === '!=';
  });
  sieve.index = set.byReading;
  // A few batches made once and taken again and again (warm in the cache, as a batch just committed is), so the
  // figure is the sieve's alone.
  const batches: [StoredReading[], NewReading[]][] = [];
  for (let b = 0, n = 0; b < 16; b++) {
    const written: NewReading[] = [];
    for (let i = 0; i < batchSize; i++, n++) {
      const value = { d: 'x'.repeat(24), n, t: n * 7 };
      written.push({ deviceId: ids[n % devices], sensor: c.sensor, value, side: 'device', time: 1_700_000_000_000 + n, json: JSON.stringify(value) });
    }
    batches.push([written.map((w, i) => ({ ...w, seq: n - batchSize + i + 1 })), written]);
  }
  const pass = async (readings: number) => {
    for (let done = 0, b = 0; done < readings; done += batchSize, b = (b + 1) % batches.length) {
      sieve.take(batches[b][0], batches[b][1]);
      // One turn of the event loop per batch, as in the relay.
      await new Promise<void>((r) => setImmediate(r));
      await sieve.settled();
    }
  };
  await pass(batches.length * batchSize);
  slowJobs = 0;
  const cpu0 = process.cpuUsage();
  await pass(total);
  const cpu = process.cpuUsage(cpu0);
  return { nsPerReading: ((cpu.user + cpu.system) * 1000) / total, slowJobs };
}

console.log(`${devices} devices, batches of ${batchSize}, ${total.toLocaleString('en-US')} readings per case, one event-loop turn per batch; CPU per reading`);
let harness = 0;
for (const c of CASES) {
  const r = await run(c);
  if (c.none) harness = r.nsPerReading;
  const own = c.none ? '' : `   sieve: ${(r.nsPerReading - harness).toFixed(0).padStart(4)} ns`;
  console.log(`${c.name.padEnd(44)} ${r.nsPerReading.toFixed(0).padStart(6)} ns${own}   slow jobs: ${r.slowJobs}`);
}
