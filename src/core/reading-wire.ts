import type { Side, StoredReading } from '../store/types.js';

/** The wire form of a reading as every door delivers it. */
export function readingJson(r: StoredReading, extra?: Record<string, unknown>, valueJson?: string): string {
  if (extra === undefined && r.value !== undefined) {
    // The same text JSON.stringify gives for the object below, without building the object: this runs for every
    // delivery. `valueJson`, the value's text as the put checked and stored it, spares stringifying it again.
    return `{"sensor":${JSON.stringify(r.sensor)},"value":${valueJson ?? JSON.stringify(r.value)},"time":${r.time},"write":"${r.side}"}`;
  }
  return JSON.stringify({ sensor: r.sensor, value: r.value, time: r.time, write: r.side, ...extra });
}

export function readingView(r: StoredReading): { sensor: string; value: unknown; time: number; write: Side } {
  return { sensor: r.sensor, value: r.value, time: r.time, write: r.side };
}
