import crypto from 'node:crypto';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import type { Config } from '../config.js';
import type { Relay } from '../core/relay.js';
import type { Logger } from '../log.js';
import type { BridgeChoice, BridgedDevice, Device, Store, StoredReading } from '../store/types.js';

export type HomeAssistantConfig = Pick<Config, 'haBroker' | 'haUsername' | 'haPassword' | 'haDiscoveryPrefix' | 'haBaseTopic' | 'haDevices'>;

/** What Home Assistant entity a sensor becomes. */
export type Component = 'switch' | 'number' | 'binary_sensor' | 'sensor';

const ON_OFF = /^(on|off)$/i;
const isOnOff = (v: unknown) => typeof v === 'boolean' || (typeof v === 'string' && ON_OFF.test(v));

/**
 * A sensor the app side has written is one Home Assistant may write too: a switch for on/off values, a number
 * for numbers. The rest are read-only: a binary sensor for on/off values, a sensor for everything else.
 */
export function componentFor(value: unknown, writable: boolean): Component {
  if (isOnOff(value)) return writable ? 'switch' : 'binary_sensor';
  if (typeof value === 'number' && writable) return 'number';
  return 'sensor';
}

/** The state payload Home Assistant reads: ON/OFF for on/off values, the text of anything else. */
export function statePayload(value: unknown): string {
  if (isOnOff(value)) return value === true || (typeof value === 'string' && value.toLowerCase() === 'on') ? 'ON' : 'OFF';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** A command from Home Assistant, written back in the form the sensor's values have. */
export function commandValue(payload: string, last: unknown): unknown {
  if (isOnOff(last)) {
    const on = payload.trim().toUpperCase() === 'ON';
    if (typeof last === 'boolean') return on;
    const word = on ? 'on' : 'off';
    return last === (last as string).toUpperCase() ? word.toUpperCase() : word;
  }
  if (typeof last === 'number') {
    const n = Number(payload);
    return Number.isFinite(n) ? n : payload;
  }
  return payload;
}

/** A sensor name as one topic level: no '/', '+' or '#'. */
const topicLevel = (sensor: string) => encodeURIComponent(sensor);
/** Ids Home Assistant accepts: letters, digits and _; a hash keeps two names that clean alike apart. */
const objectId = (deviceId: string, sensor: string) =>
  `iotc_${deviceId.toLowerCase()}_${sensor.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 40)}_${crypto.createHash('sha256').update(sensor).digest('hex').slice(0, 6)}`;

interface Bridged {
  device: Device;
  online: boolean | null;
  /** The device's readings mark when its sensors were last published; null: publish them at the next poll. */
  readingsMark: string | null;
  /** Sensor → what was last announced and published for it. */
  sensors: Map<string, { component: Component; state: string; value: unknown }>;
}

/**
 * The Home Assistant bridge: the hub connects as a client to the broker Home Assistant already uses and keeps
 * it in step. For each bridged device it publishes MQTT discovery (one entity per sensor), retained states,
 * availability from the hub's own online tracking, and takes commands on the entities' command topics as
 * app-side writes, which reach the device on whatever door it is connected through. The store is read about
 * once a second, so it works the same on any node of a cluster; run it on one node only. Each poll is one query
 * for all the bridged devices; a device's sensors are read only when its readings moved.
 */
export class HomeAssistantBridge {
  private readonly client: MqttClient;
  private readonly devices = new Map<string, Bridged>();
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> = Promise.resolve();
  /** The poll waiting for the running one: at most one, so a slow store or broker never piles polls up. */
  private queued: Promise<void> | null = null;
  private readonly statusTopic: string;

  constructor(
    private readonly config: HomeAssistantConfig,
    private readonly store: Store,
    private readonly relay: Relay,
    private readonly log: Logger,
    private readonly pollMs = 1000,
  ) {
    this.statusTopic = `${config.haBaseTopic}/bridge/status`;
    this.client = mqtt.connect(config.haBroker, {
      username: config.haUsername || undefined,
      password: config.haPassword || undefined,
      clientId: `iotcommunicate-${crypto.randomBytes(4).toString('hex')}`,
      reconnectPeriod: 5000,
      // Home Assistant marks every entity unavailable when the hub goes away without saying goodbye.
      will: { topic: this.statusTopic, payload: Buffer.from('offline'), retain: true, qos: 1 },
    });
    this.client.on('connect', () => void this.connected());
    this.client.on('message', (topic, payload) => void this.message(topic, payload.toString()));
    this.client.on('error', (err) => this.log.warn({ err: err.message }, 'Home Assistant broker: connection problem; retrying'));
  }

  /** The devices to show, read again at every poll so an opt-in or opt-out shows within a second. */
  private chosen(): BridgeChoice {
    const v = this.config.haDevices;
    return v === 'all' ? 'all' : v === '' ? 'opted' : v.split(',');
  }

  private async connected(): Promise<void> {
    this.log.info({ broker: this.config.haBroker.replace(/\/\/[^@/]*@/, '//***@'), devices: this.config.haDevices || 'opted in' }, 'Home Assistant bridge connected');
    await this.client.subscribeAsync([`${this.config.haDiscoveryPrefix}/status`, `${this.config.haBaseTopic}/+/+/set`], { qos: 1 });
    await this.client.publishAsync(this.statusTopic, 'online', { retain: true, qos: 1 });
    await this.announceAll();
    if (!this.timer) {
      this.timer = setInterval(() => void this.poll(), this.pollMs);
      this.timer.unref();
    }
  }

  /** Forgets what was published and publishes it all again: at connect, and when Home Assistant restarts. */
  private announceAll(): Promise<void> {
    for (const b of this.devices.values()) {
      b.sensors.clear();
      b.online = null;
      b.readingsMark = null;
    }
    return this.poll();
  }

  private poll(): Promise<void> {
    if (this.queued) return this.queued;
    const run = () => {
      this.queued = null;
      return this.pollNow();
    };
    // Whatever became of the poll before, this one runs.
    const next = this.polling.then(run, run);
    this.queued = next;
    this.polling = next;
    return next;
  }

  private async pollNow(): Promise<void> {
    let shown: BridgedDevice[];
    try {
      shown = await this.store.homeAssistantDevices(this.chosen());
    } catch (err) {
      this.log.warn({ err }, 'Home Assistant bridge: could not read which devices to show; will retry');
      return;
    }
    const ids = new Set(shown.map((d) => d.id));
    for (const id of [...this.devices.keys()]) if (!ids.has(id)) await this.retract(id).catch(() => {});
    for (const d of shown) {
      try {
        await this.syncDevice(d);
      } catch (err) {
        this.log.warn({ err, deviceId: d.id }, 'Home Assistant bridge: could not read the device; will retry');
      }
    }
  }

  private async syncDevice(d: BridgedDevice): Promise<void> {
    if (!this.client.connected) return;
    const { online, readingsMark, ...device } = d;
    let bridged = this.devices.get(d.id);
    if (!bridged) {
      bridged = { device, online: null, readingsMark: null, sensors: new Map() };
      this.devices.set(d.id, bridged);
    } else if (bridged.device.name !== device.name) {
      // Renamed: every entity is announced again under the device's new name.
      bridged.device = device;
      bridged.sensors.clear();
      bridged.readingsMark = null;
    }
    if (online !== bridged.online) {
      bridged.online = online;
      await this.client.publishAsync(this.availabilityTopic(d.id), online ? 'online' : 'offline', { retain: true, qos: 1 });
    }
    if (readingsMark === bridged.readingsMark) return;
    const written = new Set((await this.store.latestAll(d.id, 'client')).map((r) => r.sensor));
    for (const r of await this.relay.sensors(d.id)) await this.publishSensor(bridged, r, written.has(r.sensor));
    bridged.readingsMark = readingsMark;
  }

  /** A device no longer shown (opted out, deleted): its entities leave Home Assistant. */
  private async retract(id: string): Promise<void> {
    const b = this.devices.get(id);
    this.devices.delete(id);
    if (!b || !this.client.connected) return;
    for (const [sensor, s] of b.sensors) await this.client.publishAsync(this.configTopic(s.component, id, sensor), '', { retain: true, qos: 1 });
    await this.client.publishAsync(this.availabilityTopic(id), 'offline', { retain: true, qos: 1 });
  }

  private async publishSensor(b: Bridged, r: StoredReading, writable: boolean): Promise<void> {
    const component = componentFor(r.value, writable);
    const state = statePayload(r.value);
    const known = b.sensors.get(r.sensor);
    b.sensors.set(r.sensor, { component, state, value: r.value });
    if (known?.component !== component) {
      // The entity changes kind (an app started writing it, or its values changed type): drop the old one.
      if (known) await this.client.publishAsync(this.configTopic(known.component, b.device.id, r.sensor), '', { retain: true, qos: 1 });
      await this.client.publishAsync(this.configTopic(component, b.device.id, r.sensor), JSON.stringify(this.discovery(b.device, r.sensor, component)), { retain: true, qos: 1 });
    }
    if (known?.state !== state || known?.component !== component) {
      await this.client.publishAsync(this.stateTopic(b.device.id, r.sensor), state, { retain: true, qos: 1 });
    }
  }

  /** Per-entity discovery: <prefix>/<component>/<node_id>/<object_id>/config, one device in Home Assistant per hub device. */
  discovery(device: Device, sensor: string, component: Component): Record<string, unknown> {
    const payload: Record<string, unknown> = {
      name: sensor,
      unique_id: objectId(device.id, sensor),
      object_id: objectId(device.id, sensor),
      state_topic: this.stateTopic(device.id, sensor),
      availability: [{ topic: this.statusTopic }, { topic: this.availabilityTopic(device.id) }],
      availability_mode: 'all',
      device: { identifiers: [`iotc_${device.id}`], name: device.name, manufacturer: 'IOTcommunicate', model: 'IOTcommunicate device' },
      origin: { name: 'IOTcommunicate' },
    };
    if (component === 'switch' || component === 'number') payload.command_topic = `${this.config.haBaseTopic}/${device.id}/${topicLevel(sensor)}/set`;
    if (component === 'switch' || component === 'binary_sensor') Object.assign(payload, { payload_on: 'ON', payload_off: 'OFF' });
    if (component === 'number') Object.assign(payload, { min: -1e9, max: 1e9, step: 0.001, mode: 'box' });
    return payload;
  }

  private configTopic(component: Component, deviceId: string, sensor: string): string {
    return `${this.config.haDiscoveryPrefix}/${component}/iotc_${deviceId.toLowerCase()}/${objectId(deviceId, sensor)}/config`;
  }
  private stateTopic(deviceId: string, sensor: string): string {
    return `${this.config.haBaseTopic}/${deviceId}/${topicLevel(sensor)}/state`;
  }
  private availabilityTopic(deviceId: string): string {
    return `${this.config.haBaseTopic}/${deviceId}/availability`;
  }

  private async message(topic: string, payload: string): Promise<void> {
    if (topic === `${this.config.haDiscoveryPrefix}/status`) {
      if (payload === 'online') {
        this.log.info('Home Assistant came online: announcing every entity again');
        await this.announceAll();
      }
      return;
    }
    const base = `${this.config.haBaseTopic}/`;
    if (!topic.startsWith(base) || !topic.endsWith('/set')) return;
    const [deviceId, level] = topic.slice(base.length, -'/set'.length).split('/');
    const bridged = this.devices.get(deviceId);
    if (!bridged) return;
    let sensor: string;
    try {
      sensor = decodeURIComponent(level);
    } catch {
      return;
    }
    const known = bridged.sensors.get(sensor);
    if (!known || (known.component !== 'switch' && known.component !== 'number')) {
      this.log.info({ deviceId, sensor }, 'Home Assistant command for a sensor that takes none; ignored');
      return;
    }
    try {
      // An app-side write: it reaches the device on every door, as a switch in the web app would.
      const [stored] = await this.relay.put(deviceId, 'client', [{ sensor, value: commandValue(payload, known.value) }]);
      await this.publishSensor(bridged, stored, true);
    } catch (err) {
      this.log.warn({ err, deviceId, sensor }, 'Home Assistant command not written');
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.polling.catch(() => {});
    if (this.client.connected) await this.client.publishAsync(this.statusTopic, 'offline', { retain: true, qos: 1 }).catch(() => {});
    await this.client.endAsync();
  }
}
