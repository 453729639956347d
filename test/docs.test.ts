import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { configTable } from '../src/config.js';
import { ROOT } from './helpers.js';

test('the README config table matches the options the server accepts', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = /<!-- config-table:start -->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(readme);
  assert.ok(m, 'README.md has the config table markers');
  assert.equal(m[1], configTable(), 'README config table is stale: run npm run docs:config');
});

test('docs/protocol.md documents every method and every error code', async () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/protocol.md'), 'utf8');
  const { METHODS } = await import('../src/core/messages.js');
  const { ERRORS } = await import('../src/core/errors.js');
  for (const method of METHODS) assert.match(doc, new RegExp(`"method":"${method}"`), `protocol.md lacks an example of ${method}`);
  for (const code of Object.keys(ERRORS)) assert.ok(doc.includes(`\`${code}\``), `protocol.md lacks error code ${code}`);
});
