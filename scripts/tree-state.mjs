// `npm test` must leave the checkout as it found it: pretest records what git sees (and a hash of each file
// already changed), posttest compares. Outside a git checkout (an installed package) it does nothing.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function snapshot() {
  let status;
  try {
    status = execFileSync('git', ['status', '--porcelain', '--untracked-files=all'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
  const lines = status.split('\n').filter(Boolean).sort();
  return lines.map((line) => {
    const file = line.slice(3).split(' -> ').pop().replace(/^"|"$/g, '');
    let hash = 'gone';
    try {
      hash = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 16);
    } catch {}
    return `${line} ${hash}`;
  });
}

const now = snapshot();
if (now === null) process.exit(0);
const root = execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim();
const stateFile = path.join(os.tmpdir(), `iotc-tree-${crypto.createHash('sha256').update(root).digest('hex').slice(0, 12)}.json`);

if (process.argv[2] === 'record') {
  fs.writeFileSync(stateFile, JSON.stringify(now));
} else {
  let before;
  try {
    before = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  } catch {
    process.exit(0);
  }
  fs.rmSync(stateFile, { force: true });
  const was = new Set(before);
  const changed = now.filter((l) => !was.has(l)).map((l) => l.slice(0, l.lastIndexOf(' ')));
  if (changed.length) {
    console.error(`npm test changed the checkout (tests must write only to temporary folders):\n  ${changed.join('\n  ')}`);
    process.exit(1);
  }
}
