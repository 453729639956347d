/** Issue 9: the CSV export's formula guard, for values and sensor names alike. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { csvField, readingsToCsv } from '../src/core/csv.js';

test('every cell a spreadsheet could run as a formula is defused, sensor names too', () => {
  for (const cell of ['-2+3+cmd|\' /C calc\'!A0', '-1+2', '+1', '=1+1', '@SUM(A1)', '\tx', '\r=1', '-', '--1', '-1e', '-0x10', '- 1', '-1-1']) {
    assert.ok(csvField(cell).replace(/^"/, '').startsWith(`'`), JSON.stringify(cell));
  }
  const csv = readingsToCsv([{ seq: 1, time: 0, sensor: '-1+2', value: '-2+3+cmd|x', side: 'device' } as never]);
  assert.equal(csv.split('\r\n')[1].split(',').slice(2, 4).join(','), `'-1+2,'-2+3+cmd|x`);
});

test('plain numbers stay numbers; ordinary text is untouched', () => {
  for (const cell of ['-5', '-0.25', '-1e-7', '-12.5E+3', '0', '42', 'temp', 'a=b', 'x-1']) assert.equal(csvField(cell), cell);
  const csv = readingsToCsv([{ seq: 1, time: 0, sensor: 'temp', value: -3.5, side: 'device' } as never]);
  assert.equal(csv.split('\r\n')[1].split(',')[3], '-3.5');
});
