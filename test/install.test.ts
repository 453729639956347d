/** What `npm install` sees: every locked package runs on the Node.js version the README promises. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers.js';

// semver comes with npm's own dependency tree (fastify uses it); the test only reads ranges.
const semver = createRequire(import.meta.url)('semver') as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string): boolean;
};

test('no locked package needs a newer Node.js than package.json promises (npm install prints no EBADENGINE)', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const oldest = semver.minVersion(pkg.engines.node)!.version;
  assert.equal(oldest, '20.0.0', 'README says Node.js 20 or later');
  const tooNew: string[] = [];
  for (const [where, entry] of Object.entries<{ engines?: { node?: string } | string[]; dev?: boolean }>(lock.packages)) {
    const range = entry.engines && !Array.isArray(entry.engines) ? entry.engines.node : undefined;
    // Development tools may ask for a later 20.x (the CI runs the latest 20); what users install must run on any 20.
    const version = entry.dev ? '20.19.0' : oldest;
    if (range && !semver.satisfies(version, range)) tooNew.push(`${where} needs node ${range}`);
  }
  assert.deepEqual(tooNew, []);
});
