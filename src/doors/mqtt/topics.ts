import { checkIntegerLiterals } from '../../core/values.js';

/**
 * The MQTT topic space of IOTcommunicate: `devices/ID/SENSOR`, one topic per sensor of a device.
 * A sensor name may hold '/', so it is everything after the second level.
 */
export const TOPIC_ROOT = 'devices';

export function sensorTopic(deviceId: string, sensor: string): string {
  return `${TOPIC_ROOT}/${deviceId}/${sensor}`;
}

const SLASH = 0x2f;

/**
 * Where the rest of `topic` starts after `devices/ID/` of this device, or -1 when it is not under the device's own
 * tree. Every publish asks (for its sensor, and whether it is a call): compared in place, not made for the question.
 */
export function deviceTreeAt(topic: string, deviceId: string): number {
  const idAt = TOPIC_ROOT.length + 1;
  const restAt = idAt + deviceId.length + 1;
  if (topic.length < restAt || topic.charCodeAt(idAt - 1) !== SLASH || topic.charCodeAt(restAt - 1) !== SLASH) return -1;
  return topic.startsWith(TOPIC_ROOT) && topic.startsWith(deviceId, idAt) ? restAt : -1;
}

/** The sensor a publish to `topic` writes, or null when the topic is not under the device's own tree. */
export function sensorFromTopic(topic: string, deviceId: string): string | null {
  const at = deviceTreeAt(topic, deviceId);
  return at < 0 || at === topic.length ? null : topic.slice(at);
}

// ---- Firmware's own topic layouts ----
// Tasmota and ESPHome publish under names of their own (the device's "topic" or node name), not devices/ID/.
// The connection is already the device's (its id and key are the credentials), so these names only say which
// sensor: they are mapped onto the device's sensors, and commands the app side writes go back the same way.
//
//   Tasmota   tele/T/SENSOR, tele/T/STATE, tele/T/LWT, stat/T/POWER, stat/T/RESULT  → sensor SENSOR, STATE, LWT, POWER, RESULT
//             subscribes cmnd/T/#                                                   ← the app side's POWER = "ON" arrives as cmnd/T/POWER ON
//   ESPHome   N/sensor/temperature/state, N/switch/relay/state, …                   → sensor temperature, relay
//             N/status (online/offline)                                             → sensor status
//             subscribes N/switch/relay/command                                     ← the app side's relay = "ON" arrives there as ON
//   Discovery (homeassistant/…, tasmota/discovery/…) is accepted and not stored: the hub is not Home Assistant.

const LEVEL = /^[^/+#]+$/;

/** What a publish to a firmware-default topic does: write a sensor, be dropped (discovery), or null (not such a topic). */
export function aliasPublish(topic: string): { sensor: string } | 'drop' | null {
  const l = topic.split('/');
  if (l[0] === TOPIC_ROOT || !l.every((level) => LEVEL.test(level))) return null;
  if (l[0] === 'homeassistant' || (l[0] === 'tasmota' && l[1] === 'discovery')) return 'drop';
  if (l.length === 3 && (l[0] === 'tele' || l[0] === 'stat')) return { sensor: l[2] };
  if (l.length === 4 && l[3] === 'state') return { sensor: l[2] };
  if (l.length === 2 && l[1] === 'status') return { sensor: 'status' };
  return null;
}

/** Whether a subscription is a firmware's command topic: cmnd/T/# (or /+, or /NAME), or N/COMPONENT/NAME/command. */
export function aliasFilterAllowed(filter: string): boolean {
  const l = filter.split('/');
  if (l[0] === TOPIC_ROOT) return false;
  if (l.length === 3 && l[0] === 'cmnd' && LEVEL.test(l[1])) return l[2] === '#' || l[2] === '+' || LEVEL.test(l[2]);
  return l.length === 4 && l[3] === 'command' && LEVEL.test(l[0]) && (l[1] === '+' || LEVEL.test(l[1])) && (l[2] === '+' || LEVEL.test(l[2]));
}

/** The command topic that carries `sensor` to a firmware subscribed with `filter`, or null when it does not. */
export function aliasDeliveryTopic(filter: string, sensor: string): string | null {
  if (!LEVEL.test(sensor)) return null;
  const l = filter.split('/');
  if (l[0] === TOPIC_ROOT) return null;
  if (l.length === 3 && l[0] === 'cmnd' && LEVEL.test(l[1])) {
    return l[2] === '#' || l[2] === '+' || l[2] === sensor ? `cmnd/${l[1]}/${sensor}` : null;
  }
  if (l.length === 4 && l[3] === 'command' && LEVEL.test(l[0]) && LEVEL.test(l[1]) && (l[2] === '+' || l[2] === sensor)) {
    return `${l[0]}/${l[1]}/${sensor}/command`;
  }
  return null;
}

/** Firmware expects bare words (ON, not "ON"): strings go as their text, anything else as JSON. */
export function aliasPayload(value: unknown): string {
  return typeof value === 'string' ? value : valuePayload(value);
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
export function valuePayload(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}
