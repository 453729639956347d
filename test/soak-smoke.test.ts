import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, runProcess, tempDir } from './helpers.js';

/**
 * `npm run soak` for 20 seconds, so the soak run keeps working; the real run (30 minutes) stays out of CI.
 * Its abuse here is the two doses that do not depend on the hardening fixes (history to a reader that does
 * not read, many sensors), so this checks the tool; the fuzz suite and `npm run attacks` check the hub.
 */
test('the soak run samples the hub under mixed load and abuse, and writes sane results', { timeout: 120_000 }, async () => {
  const { dir, cleanup } = tempDir('iotc-soak-smoke-');
  try {
    const { code, stdout, stderr } = await runProcess(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'bench/soak.ts'), '--minutes', '0.33', '--sample', '2', '--warmup', '6', '--abuse', '3,4', '--abuse-every', '5', '--max-growth', '200', '--out', dir, '--name', 'smoke'],
      { cwd: ROOT, timeoutMs: 110_000, killSignal: 'SIGINT' },
    );
    assert.equal(code, 0, `${stdout.slice(-3000)}\n${stderr.slice(-2000)}`);
    assert.match(stdout, /RSS MiB +loop p99/);
    const results = JSON.parse(fs.readFileSync(path.join(dir, 'smoke.json'), 'utf8'));
    assert.match(fs.readFileSync(path.join(dir, 'smoke.svg'), 'utf8'), /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.ok(results.samples.length >= 5, `${results.samples.length} samples`);
    for (const s of results.samples) {
      assert.ok(s.rssMiB > 10, `RSS read from /proc: ${s.rssMiB}`);
      assert.ok(Number.isFinite(s.loopP99Ms), 'event-loop delay read from /metrics');
    }
    const last = results.samples[results.samples.length - 1];
    assert.ok(last.ackedTotal > 100, `the victim wrote: ${last.ackedTotal} acknowledged`);
    assert.ok(results.abuseLog.some((l: string) => / 3 — /.test(l)) && results.abuseLog.some((l: string) => / 4 — /.test(l)), results.abuseLog.join('\n'));
    assert.ok(results.info.load.mqttAcked > 0 && results.info.load.httpOk > 0 && results.info.load.wsDelivered > 0, JSON.stringify(results.info.load));
    for (const v of results.verdict) assert.ok(v.ok, `${v.name}: ${v.detail}`);
  } finally {
    cleanup();
  }
});
