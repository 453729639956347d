import { mqttPortTakenReason, nearbyFreePort, portIsFree, serverAddresses } from '../addresses.js';
import type { ServerAddresses } from '../addresses.js';
import { isExplicit } from '../config.js';
import type { Config } from '../config.js';
import { findServer } from '../instance.js';

export interface ServerWhereabouts {
  addresses: ServerAddresses;
  running: boolean;
  /** Said under what the CLI prints when the addresses are not those of a running server. */
  note: string | null;
}

/** What the server would have, started now with this config: the MQTT port checked, since it is often taken. */
async function expectedAddresses(config: Config): Promise<ServerAddresses> {
  let mqttPort: number | null = config.mqttPort === 0 ? null : config.mqttPort;
  let mqttOff: string | null = mqttPort === null ? 'turned off (--mqtt-port 0)' : null;
  if (mqttPort !== null && !(await portIsFree(mqttPort, config.host))) {
    mqttOff = isExplicit(config, 'mqttPort')
      ? `port ${mqttPort} is used by another program: a server started with these settings would stop there`
      : mqttPortTakenReason(mqttPort, await nearbyFreePort(mqttPort, config.host));
    mqttPort = null;
  }
  return serverAddresses({ host: config.host, port: config.port, mqttPort, mqttOff });
}

/**
 * Where the hub listens, for the URLs the CLI prints: read from the running server's server.json, or worked out
 * from the settings (and said so) when none runs. Never a port where the hub is not.
 */
export async function whereIsServer(config: Config): Promise<ServerWhereabouts> {
  const found = findServer(config);
  if (found.state === 'running' && found.info?.addresses) return { addresses: found.info.addresses, running: true, note: null };
  const addresses = await expectedAddresses(config);
  if (found.state === 'running') {
    return { addresses, running: true, note: 'the server is still starting: these are the addresses its settings ask for' };
  }
  if (found.state === 'unknown') {
    return { addresses, running: false, note: 'with PostgreSQL the CLI cannot see which servers run: these are the ports of these settings' };
  }
  const gone = found.stale ? `The server that used it (pid ${found.stale.pid}) stopped without cleaning up. ` : '';
  return {
    addresses,
    running: false,
    note: `no server is running on ${found.files.dir}. ${gone}Start it with npm start (iotc serve); these are the addresses it would use with these settings`,
  };
}

/** The lines that tell a device where to connect, with its key when it is known. */
export function deviceLines(a: ServerAddresses, id: string, key: string): string[] {
  const lines = [
    `  url:  ${a.ws}?device=${id}&key=${key}`,
    `  http: curl '${a.api}/update?device=${id}&key=${key}&temp=21.5'`,
  ];
  if (a.mqttPort !== null) lines.push(`  mqtt: host ${a.publicHost} port ${a.mqttPort}, user name ${id}, password the key, topics devices/${id}/SENSOR`);
  else lines.push(`  mqtt: OFF: ${a.mqttOff}`, `        MQTT over WebSocket works: ${a.mqttWs} (user name ${id}, password the key)`);
  return lines;
}

/** One line saying where the server is, for commands that print no URL of their own (device list). */
export function serverLine(where: ServerWhereabouts): string {
  const a = where.addresses;
  const mqtt = a.mqttPort !== null ? `MQTT port ${a.mqttPort}` : 'MQTT OFF';
  if (where.running && !where.note) return `server: running, web app ${a.web}/, ${mqtt}`;
  return `server: ${where.note} (web app ${a.web}/, ${mqtt})`;
}
