/** Rewrites the config table in README.md from src/config.ts, so the two never disagree. */
import fs from 'node:fs';
import { configTable } from '../src/config.js';

const file = new URL('../README.md', import.meta.url);
const start = '<!-- config-table:start -->';
const end = '<!-- config-table:end -->';
const readme = fs.readFileSync(file, 'utf8');
const a = readme.indexOf(start);
const b = readme.indexOf(end);
if (a < 0 || b < a) throw new Error(`README.md lacks the ${start} … ${end} markers`);
fs.writeFileSync(file, readme.slice(0, a + start.length) + '\n' + configTable() + '\n' + readme.slice(b));
console.log('README.md config table updated');
