import type { StoredReading } from '../store/types.js';

/** A number as JSON writes it: a spreadsheet reads it as that number and nothing else. */
const PLAIN_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/**
 * RFC 4180 field: quoted when it holds a comma, quote or line break. A cell a spreadsheet could read as a
 * formula (leading = + - @ tab or carriage return, as OWASP lists them) gets a leading ' so it shows as text;
 * only a whole plain number keeps its leading minus. Sensor names and values alike.
 */
export function csvField(text: string): string {
  const safe = /^[=+\-@\t\r]/.test(text) && !PLAIN_NUMBER.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** Readings as CSV: time (ISO 8601), time_ms, sensor, value (JSON unless a plain string), written by. */
export function readingsToCsv(readings: StoredReading[]): string {
  const lines = ['time,time_ms,sensor,value,write'];
  for (const r of readings) {
    const value = typeof r.value === 'string' ? r.value : JSON.stringify(r.value);
    lines.push([new Date(r.time).toISOString(), String(r.time), csvField(r.sensor), csvField(value), r.side].join(','));
  }
  return lines.join('\r\n') + '\r\n';
}
