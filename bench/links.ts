/**
 * One generator-side connection per actor, the same shape whatever the target speaks:
 * IOTcommunicate's WebSocket protocol, the bare relay's (same frames, no auth, no acks), or MQTT QoS 0.
 * A device `put`s a reading; a client receives readings; an IOTcommunicate device also receives acks.
 */
import net from 'node:net';
import { MqttClient } from 'mqtt';
import { WebSocket } from 'ws';
import type { Endpoint } from './targets.js';
import type { GroupCreds } from './jobs.js';

export type Role = 'device' | 'client';

export interface LinkEvents {
  /** A delivered reading's value (client side). */
  reading(value: unknown): void;
  /** An acknowledgement (device side, IOTcommunicate only): ok, request id, error code. */
  reply(ok: boolean, id: number, code?: string): void;
  /** The connection ended; `expected` when the generator closed it itself. */
  closed(code: string, expected: boolean): void;
}

export interface Link {
  /** Puts one reading: with a request id (acknowledged) or, with null, fire-and-forget. */
  put(valueJson: string, id: number | null): void;
  close(): void;
}

// A zero mask leaves the payload as it is: the generator skips masking work that would only burden it.
// Servers unmask whatever the key, so this changes nothing on their side.
const zeroMask = (mask: Buffer) => void mask.fill(0);

/** Sensor name used by every actor; each message's value is `{"d":device,"n":seq,"t":µs}`. */
export const SENSOR = 'temp';

function openWs(endpoint: Endpoint, role: Role, creds: GroupCreds, localAddress: string | undefined, ev: LinkEvents): Promise<Link> {
  const q =
    endpoint.protocol === 'iotc'
      ? `/ws?device=${creds.id}&key=${creds.key}&side=${role}`
      : `/?pair=${encodeURIComponent(creds.id)}&side=${role}`;
  const ws = new WebSocket(`ws://${endpoint.host}:${endpoint.port}${q}`, {
    perMessageDeflate: false,
    localAddress,
    generateMask: zeroMask,
    skipUTF8Validation: true,
    handshakeTimeout: 30_000,
  } as WebSocket.ClientOptions);
  let closing = false;
  return new Promise((resolve, reject) => {
    let opened = false;
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if ('ok' in m) ev.reply(m.ok === true, typeof m.id === 'number' ? m.id : -1, m.code);
      else ev.reading(m.value);
    });
    ws.once('open', () => {
      opened = true;
      resolve({
        put(valueJson, id) {
          if (id === null) ws.send(`{"method":"put","status":{"sensor":"${SENSOR}","value":${valueJson}}}`);
          else ws.send(`{"method":"put","status":{"sensor":"${SENSOR}","value":${valueJson}},"id":${id}}`);
        },
        close() {
          closing = true;
          ws.terminate();
        },
      });
    });
    ws.on('error', (err) => {
      if (!opened) reject(err);
    });
    ws.on('close', (code) => {
      if (opened) ev.closed(`close ${code}`, closing);
      else reject(new Error(`closed ${code} before open`));
    });
  });
}

function openMqtt(endpoint: Endpoint, role: Role, creds: GroupCreds, localAddress: string | undefined, ev: LinkEvents, clientId: string): Promise<Link> {
  // IOTcommunicate's door: the device's own topic, its id and key, and the value as the whole payload (what an
  // MQTT sketch publishes). Mosquitto: a topic of the bench's, anonymous, and the bytes an IOTcommunicate
  // device puts as its status, {"sensor":…,"value":…}, which the receiver unwraps.
  const hub = endpoint.login === true;
  const topic = hub ? `devices/${creds.id}/${SENSOR}` : `iotc-bench/${creds.id}/${SENSOR}`;
  const login = hub ? { username: role === 'client' ? `${creds.id}:client` : creds.id, password: creds.key } : {};
  const client = new MqttClient(() => net.createConnection({ host: endpoint.host, port: endpoint.port, localAddress, noDelay: true }) as never, {
    protocolVersion: 4,
    clientId,
    clean: true,
    keepalive: 60,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
    ...login,
  });
  let closing = false;
  return new Promise((resolve, reject) => {
    let opened = false;
    client.on('message', (_topic, payload) => {
      const m = JSON.parse(payload.toString());
      ev.reading(hub ? m : m.value);
    });
    client.on('error', (err) => {
      if (!opened) reject(err);
    });
    client.on('close', () => {
      if (opened) ev.closed('close', closing);
      else reject(new Error('closed before CONNACK'));
    });
    client.once('connect', () => {
      const ready = () => {
        opened = true;
        resolve({
          put(valueJson, id) {
            const payload = hub ? valueJson : `{"sensor":"${SENSOR}","value":${valueJson}}`;
            if (id === null) client.publish(topic, payload, { qos: 0 });
            // Acked puts against QoS 1: the PUBACK plays the hub's ack (the MQTT door sends it after the commit;
            // Mosquitto runs without persistence).
            else client.publish(topic, payload, { qos: 1 }, (err) => ev.reply(!err, id, err ? 'puback' : undefined));
          },
          close() {
            closing = true;
            client.end(true);
          },
        });
      };
      if (role === 'client') client.subscribe(topic, { qos: 0 }, (err) => (err ? reject(err) : ready()));
      else ready();
    });
  });
}

let mqttIds = 0;
export function openLink(endpoint: Endpoint, role: Role, creds: GroupCreds, localAddress: string | undefined, ev: LinkEvents): Promise<Link> {
  if (endpoint.protocol === 'mqtt') return openMqtt(endpoint, role, creds, localAddress, ev, `b${process.pid}-${++mqttIds}`);
  return openWs(endpoint, role, creds, localAddress, ev);
}
