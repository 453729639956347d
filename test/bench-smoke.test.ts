import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, runProcess, tempDir } from './helpers.js';
import type { ProcessResult } from './helpers.js';

/** `npm run bench` on a tiny load (a few seconds a round), so the benchmark keeps working; the real run stays out of CI. */
function runBench(args: string[]): Promise<ProcessResult> {
  // SIGINT on a timeout, so the bench stops the servers it started.
  return runProcess(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/run.ts'), ...args], { cwd: ROOT, timeoutMs: 290_000, killSignal: 'SIGINT' });
}

test('the bench runs every scenario against every target and writes sane results', { timeout: 300_000 }, async () => {
  const { dir, cleanup } = tempDir('iotc-bench-smoke-');
  try {
    const { code, stdout, stderr } = await runBench([
      '--quick', '--rounds', '1', '--warmup', '0.2', '--duration', '0.5', '--settle', '0.3',
      '--pairs', '4', '--deep', '2x8', '--fan', '4', '--rate', '500', '--connections', '100,200', '--connect-rate', '2000',
      '--out', dir, '--name', 'smoke',
    ]);
    assert.equal(code, 0, stderr.slice(-3000));
    const results = JSON.parse(fs.readFileSync(path.join(dir, 'smoke.json'), 'utf8'));
    assert.match(fs.readFileSync(path.join(dir, 'smoke.svg'), 'utf8'), /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    for (const heading of ['POINT-TO-POINT', 'DEEP PIPELINES', 'FIRE-AND-FORGET', 'FAN-IN', 'FAN-OUT', 'OPEN-LOOP LATENCY', 'IDLE CONNECTIONS', 'DURABILITY', 'GOALS']) assert.ok(stdout.includes(heading), heading);

    const mosquittoHere = !results.meta.skippedTargets.mosquitto;
    if (!mosquittoHere) assert.match(stderr, /notice: Mosquitto skipped/);
    const streamTargets = ['iotc', 'iotc-mqtt', 'bare', ...(mosquittoHere ? ['mosquitto'] : [])].sort();
    const byName = Object.fromEntries(results.scenarios.map((s: { name: string }) => [s.name, s]));
    const stream = ['p2p', 'p2p-ff', 'deep', 'deep-ff', 'fanin', 'fanin-ff', 'fanout', 'fanout-ff'];
    assert.deepEqual(Object.keys(byName).sort(), ['connections', 'durability', ...stream, 'latency'].sort());

    for (const name of [...stream, 'latency']) {
      const s = byName[name];
      assert.deepEqual(Object.keys(s.targets).sort(), streamTargets, name);
      for (const [target, t] of Object.entries<any>(s.targets)) {
        const where = `${name}/${target}: ${t.notes.join('; ')}`;
        assert.equal(t.rounds.length, 1, where);
        const m = t.median;
        assert.ok(m.msgPerSec > 0, where);
        assert.ok(m.cpuUsPerMsg > 0 && Number.isFinite(m.cpuUsPerMsg), where);
        assert.ok(m.p50Ms > 0 && m.p50Ms <= m.p99Ms && m.p99Ms <= m.p999Ms, where);
        assert.ok(m.rssPeakMiB > 1, where);
        assert.equal(t.notes.filter((n: string) => /failed|errors/.test(n)).length, 0, where);
      }
      // Puts with an id are acknowledged (Mosquitto: QoS 1 PUBACKs); fire-and-forget puts get no reply at all.
      // The MQTT door: QoS 1 publishes get their PUBACK after the commit, QoS 0 ones nothing.
      for (const door of ['iotc', 'iotc-mqtt']) {
        if (name.endsWith('-ff')) assert.equal(s.targets[door].median.ackedPerSec, 0, `${name}/${door}: no acks for puts without an id`);
        else assert.ok(s.targets[door].median.ackedPerSec > 0, `${name}/${door}: IOTcommunicate acknowledged the puts`);
        assert.ok(Number.isFinite(s.targets[door].median.loopMaxMs), `${name}/${door}: the server's event-loop delay, read from its HTTP port`);
      }
      if (mosquittoHere && name !== 'latency') assert.equal(s.targets.mosquitto.median.ackedPerSec > 0, !name.endsWith('-ff'), `${name}: QoS 1 only for acked puts`);
      assert.ok(Number.isFinite(s.targets.iotc.median.loopMaxMs) && s.targets.iotc.median.loopMaxMs >= s.targets.iotc.median.loopP99Ms, `${name}: the server's event-loop delay`);
      assert.ok(Number.isFinite(s.targets.iotc.vsBare.msgPerSec), `${name}: ratio to the bare relay`);
      if (mosquittoHere) assert.ok(Number.isFinite(s.targets.iotc.vsMosquitto.cpuUsPerMsg), `${name}: ratio to Mosquitto`);
    }
    // Open loop: the offered rate is kept whatever the target does.
    for (const t of Object.values<any>(byName.latency.targets)) assert.ok(t.median.sentPerSec > 400 && t.median.sentPerSec < 600, JSON.stringify(t.median));

    for (const [target, t] of Object.entries<any>(byName.connections.targets)) {
      const m = t.median;
      assert.equal(m.connections, 200, `${target}: ${t.notes.join('; ')}`);
      assert.equal(m.failed, 0, target);
      assert.equal(m.droppedIdle, 0, target);
      assert.ok(m.connectPerSec > 0 && Number.isFinite(m.rssPerConnKiB), target);
      assert.ok(Number.isFinite(m.rssPerConnKiB_100) && Number.isFinite(m.rssPerConnKiB_200) && m.projected100kMiB > 0, `${target}: RSS at each step and the projection`);
    }

    // Both doors of the hub: a PUBACK, like a WebSocket ack, promises the reading is stored.
    assert.deepEqual(Object.keys(byName.durability.targets), ['iotc', 'iotc-mqtt']);
    for (const door of ['iotc', 'iotc-mqtt']) {
      const d = byName.durability.targets[door].median;
      assert.ok(d.termAcknowledged > 0 && d.killAcknowledged > 0, `${door}: ${JSON.stringify(d)}`);
      assert.equal(d.termStored, d.termAcknowledged, `${door}: SIGTERM: every acknowledged reading stored, nothing stored unacknowledged`);
      assert.equal(d.termLost, 0, door);
      assert.equal(d.killLost, 0, `${door}: SIGKILL: no acknowledged reading lost`);
      assert.ok(d.killStored >= d.killAcknowledged, door);
    }

    assert.ok(results.goals.length >= 5);
    assert.ok(results.goals.some((g: { goal: string; met: boolean }) => g.goal.startsWith('durability') && g.met === true));
    assert.ok(results.goals.some((g: { goal: string; met: boolean }) => g.goal.startsWith('durability (MQTT door)') && g.met === true));
    assert.ok(results.goals.some((g: { goal: string }) => g.goal.startsWith('p2p (MQTT door): server CPU per delivered message')), 'the MQTT door is judged against Mosquitto too');
  } finally {
    cleanup();
  }
});

test('the bench compares rules on with rules off, and counts the signed webhooks of firing rules', { timeout: 200_000 }, async () => {
  const { dir, cleanup } = tempDir('iotc-bench-rules-');
  try {
    const { code, stdout, stderr } = await runBench([
      '--scenarios', 'p2p', '--targets', 'iotc', '--rules', '2', '--fire', '--rounds', '1', '--warmup', '0.2', '--duration', '1', '--pairs', '4',
      '--out', dir, '--name', 'rules',
    ]);
    assert.equal(code, 0, stderr.slice(-3000));
    assert.match(stdout, /RULES ON ÷ RULES OFF/);
    const results = JSON.parse(fs.readFileSync(path.join(dir, 'rules.json'), 'utf8'));
    const targets = results.scenarios[0].targets;
    assert.deepEqual(Object.keys(targets), ['iotc', 'iotc-rules', 'iotc-fire'], 'rules off, on and firing in the same rounds');
    for (const [name, t] of Object.entries<any>(targets)) {
      assert.equal(t.notes.filter((n: string) => /failed|errors/.test(n)).length, 0, `${name}: ${t.notes.join('; ')}`);
      assert.ok(t.median.msgPerSec > 0, name);
    }
    const fire = targets['iotc-fire'].median;
    assert.ok(Number.isFinite(fire.webhooksPerSec) && fire.webhooksPerSec >= 0, JSON.stringify(fire));
    assert.equal(fire.badSignaturesPerSec, 0, 'every webhook the receiver got was signed with the rule secret');
    assert.deepEqual(results.goals.filter((g: { goal: string }) => /throughput with rules/.test(g.goal)).map((g: { goal: string }) => g.goal.split(':')[0]), ['p2p', 'p2p']);
  } finally {
    cleanup();
  }
});
