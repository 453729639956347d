import type { Side, StoredReading } from '../store/types.js';

/** Sensor names whose opening text readingJson keeps; past them it starts over, so hostile names cost only the lookup. */
const MAX_KEPT_PREFIXES = 1024;
const prefixes = new Map<string, string>();

/** `{"sensor":NAME,"value":` for a sensor: every delivery starts with it, and a hub sees the same few names again and again. */
function openingOf(sensor: string): string {
  let opening = prefixes.get(sensor);
  if (opening === undefined) {
    opening = `{"sensor":${JSON.stringify(sensor)},"value":`;
    if (prefixes.size >= MAX_KEPT_PREFIXES) prefixes.clear();
    prefixes.set(sensor, opening);
  }
  return opening;
}

const CLOSING_DEVICE = ',"write":"device"}';
const CLOSING_CLIENT = ',"write":"client"}';

/** The wire form of a reading as every door delivers it. */
export function readingJson(r: StoredReading, extra?: Record<string, unknown>, valueJson?: string): string {
  if (extra === undefined && r.value !== undefined) {
    // The same text JSON.stringify gives for the object below, without building the object: this runs for every
    // delivery. `valueJson`, the value's text as the put checked and stored it, spares stringifying it again; the
    // kept opening and the two closings spare quoting the name and joining constant pieces (each join of strings
    // is an object of its own until the text is written out).
    return `${openingOf(r.sensor)}${valueJson ?? JSON.stringify(r.value)},"time":${r.time}${r.side === 'device' ? CLOSING_DEVICE : CLOSING_CLIENT}`;
  }
  return JSON.stringify({ sensor: r.sensor, value: r.value, time: r.time, write: r.side, ...extra });
}

export function readingView(r: StoredReading): { sensor: string; value: unknown; time: number; write: Side } {
  return { sensor: r.sensor, value: r.value, time: r.time, write: r.side };
}
