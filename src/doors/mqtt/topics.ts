import { checkIntegerLiterals } from '../../core/values.js';

/**
 * The MQTT topic space of IOTcommunicate: `devices/ID/SENSOR`, one topic per sensor of a device.
 * A sensor name may hold '/', so it is everything after the second level.
 */
export const TOPIC_ROOT = 'devices';

export function sensorTopic(deviceId: string, sensor: string): string {
  return `${TOPIC_ROOT}/${deviceId}/${sensor}`;
}

/** The sensor a publish to `topic` writes, or null when the topic is not under the device's own tree. */
export function sensorFromTopic(topic: string, deviceId: string): string | null {
  const prefix = `${TOPIC_ROOT}/${deviceId}/`;
  if (!topic.startsWith(prefix)) return null;
  const sensor = topic.slice(prefix.length);
  return sensor.length > 0 ? sensor : null;
}

/** A sensor that cannot be a publish topic name (MQTT forbids wildcards and NUL in them). */
export function unpublishableSensor(sensor: string): boolean {
  return /[+#\u0000]/.test(sensor);
}

/** Whether a subscription filter stays inside the device's own tree: `devices/ID/…` with ID literal. */
export function filterAllowed(filter: string, deviceId: string): boolean {
  const levels = filter.split('/');
  return levels.length >= 3 && levels[0] === TOPIC_ROOT && levels[1] === deviceId;
}

/** MQTT topic matching: `+` one level, `#` (last) any number of levels including none. */
export function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * A payload as a reading's value: JSON when it parses (`21.5`, `true`, `"on"`, `{"a":1}`),
 * otherwise the text itself (`on`, `hello world`), so plain firmware payloads need no quoting.
 * Throws E_VALIDATION for JSON holding an integer beyond ±2^53.
 */
export function payloadValue(payload: Buffer | string): unknown {
  const text = typeof payload === 'string' ? payload : payload.toString('utf8');
  const trimmed = text.trim();
  if (trimmed !== '') {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch {
      return text; // not JSON: a plain string
    }
    // JSON it is: a big integer in it would be stored rounded, so it is refused like on every door.
    checkIntegerLiterals(trimmed);
    return value;
  }
  return text;
}

/** A reading's value as delivered to MQTT subscribers: its JSON text. */
export function valuePayload(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value) ?? 'null');
}
