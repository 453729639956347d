import type { Side, StoredReading } from '../store/types.js';

/** The wire form of a reading as every door delivers it. */
export function readingJson(r: StoredReading, extra?: Record<string, unknown>): string {
  if (extra === undefined && r.value !== undefined) {
    // The same text JSON.stringify gives for the object below, without building the object: this runs for every delivery.
    return `{"sensor":${JSON.stringify(r.sensor)},"value":${JSON.stringify(r.value)},"time":${r.time},"write":"${r.side}"}`;
  }
  return JSON.stringify({ sensor: r.sensor, value: r.value, time: r.time, write: r.side, ...extra });
}

export function readingView(r: StoredReading): { sensor: string; value: unknown; time: number; write: Side } {
  return { sensor: r.sensor, value: r.value, time: r.time, write: r.side };
}
