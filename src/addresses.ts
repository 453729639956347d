import net from 'node:net';
import { lanAddresses } from './web/address.js';

/**
 * Where a running server can be reached, door by door: what the start-up banner prints, what the server publishes
 * in its data dir for the CLI (server.json), and what the pages can read in-process (server.addresses, hub.addresses).
 */
export interface ServerAddresses {
  /** The address listened on (config.host). */
  host: string;
  /** HTTP and WebSocket port actually bound. */
  port: number;
  /** MQTT port actually bound, or null when the MQTT TCP listener is off. */
  mqttPort: number | null;
  /** Why the MQTT TCP listener is off (null when it is on). */
  mqttOff: string | null;
  /** The host a device on the network uses: the machine's LAN address when listening on every interface. */
  publicHost: string;
  /** Base URL of the web app, e.g. http://192.168.1.20:8888 (no trailing slash). */
  web: string;
  /** The WebSocket door: append ?device=ID&key=KEY&side=… */
  ws: string;
  /** The HTTP API's base. */
  api: string;
  /** mqtt://host:port, or null when the MQTT TCP listener is off. */
  mqtt: string | null;
  /** MQTT over WebSocket, on the HTTP port (always on). */
  mqttWs: string;
}

const ANY = new Set(['0.0.0.0', '::', '[::]', '']);

/** The host name to print for a listening address: a LAN address for "every interface", brackets for IPv6. */
export function publicHostFor(listenHost: string): string {
  if (ANY.has(listenHost)) return lanAddresses()[0] ?? 'localhost';
  return listenHost.includes(':') && !listenHost.startsWith('[') ? `[${listenHost}]` : listenHost;
}

export function serverAddresses(opts: { host: string; port: number; mqttPort: number | null; mqttOff: string | null; tls?: boolean }): ServerAddresses {
  const publicHost = publicHostFor(opts.host);
  const at = `${publicHost}:${opts.port}`;
  // With the built-in TLS the HTTP port speaks only https and wss.
  const [http, ws] = opts.tls ? ['https', 'wss'] : ['http', 'ws'];
  return {
    host: opts.host,
    port: opts.port,
    mqttPort: opts.mqttPort,
    mqttOff: opts.mqttPort === null ? (opts.mqttOff ?? 'off') : null,
    publicHost,
    web: `${http}://${at}`,
    ws: `${ws}://${at}/ws`,
    api: `${http}://${at}/api/v1`,
    mqtt: opts.mqttPort === null ? null : `mqtt://${publicHost}:${opts.mqttPort}`,
    mqttWs: `${ws}://${at}/mqtt`,
  };
}

/** Whether `port` can be listened on at `host` right now. */
export function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** The first free port after `taken`, to suggest in place of a port another program holds (null if none near). */
export async function nearbyFreePort(taken: number, host: string): Promise<number | null> {
  for (let port = taken + 1; port <= Math.min(taken + 20, 65535); port++) {
    if (await portIsFree(port, host)) return port;
  }
  return null;
}

/** Why the default MQTT port could not be had, in the words the banner, the CLI and the pages use. */
export function mqttPortTakenReason(port: number, suggestion: number | null): string {
  const p = suggestion === null ? 'PORT' : String(suggestion);
  return (
    `port ${port} is used by another program, probably an MQTT broker such as Mosquitto (Home Assistant's). ` +
    `Devices sent to port ${port} reach that broker, not this hub. To turn MQTT on, start the server with --mqtt-port ${p} ` +
    `(or IOTC_MQTT_PORT=${p})${suggestion === null ? '' : `; ${p} is free now`}`
  );
}
