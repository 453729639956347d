/** docs/security.md's limits table lists every limit of src/config.ts, with its real default. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { OPTIONS } from '../src/config.js';
import type { OptionSpec } from '../src/config.js';
import { ROOT } from './helpers.js';

/** Options that bound what a caller may use or hold: caps, rates, queues, retention, failures, timeouts. */
const LIMIT_FLAG = /(^|-)max-|^rate-|-rate-|-failures-|-per-|^send-queue$|^retention-|-timeout$|^session-ttl$/;
/** Limit-looking flags that are not limits on callers. */
const NOT_LIMITS = new Set(['shutdown-timeout', 'store-pool']);

function table(): Map<string, string> {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/security.md'), 'utf8');
  const m = /<!-- limits-table:start -->\n([\s\S]*?)\n<!-- limits-table:end -->/.exec(doc);
  assert.ok(m, 'docs/security.md has the limits-table markers');
  const rows = new Map<string, string>();
  for (const line of m[1].split('\n').slice(2)) {
    const cells = line.split('|').map((c) => c.trim());
    const env = /^`(IOTC_[A-Z_]+|PORT)`$/.exec(cells[2])?.[1];
    if (env) rows.set(env, cells[3].replace(/`/g, ''));
  }
  return rows;
}

test('every limit in src/config.ts has a row in docs/security.md with its default', () => {
  const rows = table();
  const specs = Object.values(OPTIONS) as OptionSpec<unknown>[];
  const limits = specs.filter((o) => LIMIT_FLAG.test(o.flag) && !NOT_LIMITS.has(o.flag));
  assert.ok(limits.length >= 15, `found ${limits.length} limit options`);
  for (const o of limits) {
    assert.ok(rows.has(o.env), `docs/security.md's limits table lacks ${o.env} (--${o.flag}): add a row`);
    assert.equal(rows.get(o.env), o.defaultText ?? String(o.default), `default of ${o.env} in docs/security.md`);
  }
  for (const env of rows.keys()) assert.ok(specs.some((o) => o.env === env), `docs/security.md lists ${env}, which src/config.ts does not have`);
});
