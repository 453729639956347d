import crypto from 'node:crypto';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import type { Config } from '../config.js';
import type { Relay } from '../core/relay.js';
import type { Logger } from '../log.js';
import type { Device, Store, StoredReading } from '../store/types.js';

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
  /** Sensor → what was last announced and published for it. */
  sensors: Map<string, { component: Component; state: string; value: unknown }>;
}

/**
 * The Home Assistant bridge: the hub connects as a client to the broker Home Assistant already uses and keeps
 * it in step. For each bridged device it publishes MQTT discovery (one entity per sensor), retained states,
 * availability from the hub's own online tracking, and takes commands on the entities' command topics as
 * app-side writes, which reach the device on whatever door it is connected through. The store is read about
 * once a second, so it works the same on any node of a cluster; run it on one node only.
 */
export class HomeAssistantBridge {
  private readonly client: MqttClient;
  private readonly devices = new Map<string, Bridged>();
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> = Promise.resolve();
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
  private chosen(): Promise<string[]> {
    const v = this.config.haDevices;
    if (v === 'all' || v === '') return this.store.homeAssistantDevices(v === 'all');
    return Promise.resolve(v.split(','));
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
    }
    return this.poll();
  }

  private poll(): Promise<void> {
    this.polling = this.polling.then(async () => {
      let ids: string[];
      try {
        ids = await this.chosen();
      } catch (err) {
        this.log.warn({ err }, 'Home Assistant bridge: could not read which devices to show; will retry');
        return;
      }
      for (const id of [...this.devices.keys()]) if (!ids.includes(id)) await this.retract(id).catch(() => {});
      for (const id of ids) {
        try {
          await this.syncDevice(id);
        } catch (err) {
          this.log.warn({ err, deviceId: id }, 'Home Assistant bridge: could not read the device; will retry');
        }
      }
    });
    return this.polling;
  }

  private async syncDevice(id: string): Promise<void> {
    if (!this.client.connected) return;
    let bridged = this.devices.get(id);
    if (!bridged) {
      const device = await this.store.getDevice(id);
      if (!device) return;
      bridged = { device, online: null, sensors: new Map() };
      this.devices.set(id, bridged);
    }
    const status = (await this.store.listDevices(bridged.device.userId)).find((d) => d.id === id);
    if (!status) {
      this.devices.delete(id);
      await this.client.publishAsync(this.availabilityTopic(id), 'offline', { retain: true, qos: 1 });
      return;
    }
    if (status.online !== bridged.online) {
      bridged.online = status.online;
      await this.client.publishAsync(this.availabilityTopic(id), status.online ? 'online' : 'offline', { retain: true, qos: 1 });
    }
    const written = new Set((await this.store.latestAll(id, 'client')).map((r) => r.sensor));
    for (const r of await this.relay.sensors(id)) await this.publishSensor(bridged, r, written.has(r.sensor));
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
