import type { StoredReading } from '../store/types.js';

/** RFC 4180 field: quoted when it holds a comma, quote or line break; a leading =+-@ is defused for spreadsheets. */
function field(text: string): string {
  const safe = /^[=+\-@\t\r]/.test(text) && !/^-?\d/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** Readings as CSV: time (ISO 8601), time_ms, sensor, value (JSON unless a plain string), written by. */
export function readingsToCsv(readings: StoredReading[]): string {
  const lines = ['time,time_ms,sensor,value,write'];
  for (const r of readings) {
    const value = typeof r.value === 'string' ? r.value : JSON.stringify(r.value);
    lines.push([new Date(r.time).toISOString(), String(r.time), field(r.sensor), field(value), r.side].join(','));
  }
  return lines.join('\r\n') + '\r\n';
}
