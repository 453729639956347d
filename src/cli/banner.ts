import type { ServerAddresses } from '../addresses.js';
import type { Logger } from '../log.js';

/** One line of the banner: a door, where it is, or why it is off. */
export interface Door {
  door: 'web' | 'ws' | 'http' | 'mqtt' | 'mqtt-ws';
  label: string;
  url: string | null;
  /** Why the door is off (url null). */
  off?: string;
  note?: string;
}

export function doors(a: ServerAddresses): Door[] {
  const local = a.publicHost === 'localhost' || a.publicHost.startsWith('127.') ? null : `on this machine also http://localhost:${a.port}/`;
  return [
    { door: 'web', label: 'Web app', url: `${a.web}/`, note: local ?? undefined },
    { door: 'ws', label: 'WebSocket', url: `${a.ws}?device=ID&key=KEY&side=device|client` },
    { door: 'http', label: 'HTTP API', url: `${a.api}/update?device=ID&key=KEY&temp=21.5` },
    a.mqtt
      ? { door: 'mqtt', label: 'MQTT', url: a.mqtt, note: 'user name = device id, password = key' }
      : { door: 'mqtt', label: 'MQTT', url: null, off: a.mqttOff ?? 'off' },
    { door: 'mqtt-ws', label: 'MQTT over WS', url: a.mqttWs },
  ];
}

const WIDTH = 14;

/** The banner for a person at a terminal: each door's real URL, MQTT's state impossible to miss. */
export function bannerText(a: ServerAddresses, store: string, colour = false): string {
  const off = colour ? '\x1b[1;33mOFF\x1b[0m' : 'OFF';
  const lines = ['', `IOTcommunicate is running. Data: ${store}`, ''];
  for (const d of doors(a)) {
    const label = `  ${d.label}`.padEnd(WIDTH + 2);
    if (d.url) {
      lines.push(`${label}${d.url}${d.note ? `   (${d.note})` : ''}`);
    } else {
      lines.push(`${label}${off}: ${wrap(d.off ?? '', 92 - WIDTH).join(`\n${' '.repeat(WIDTH + 7)}`)}`);
    }
  }
  lines.push('', `Next: open ${a.web}/ to sign up, or run: npm run iotc -- user add --email you@example.com --name You`, 'Stop with Ctrl-C.', '');
  return lines.join('\n') + '\n';
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + word.length + 1 > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}

/** The same, as one log record per door, for logs read by programs: `door` and `url` (or `off`) fields. */
export function logBanner(log: Logger, a: ServerAddresses): void {
  for (const d of doors(a)) {
    if (d.url) log.info({ door: d.door, url: d.url }, `${d.label}: ${d.url}`);
    else log.warn({ door: d.door, url: null, off: d.off }, `${d.label} is OFF: ${d.off}`);
  }
}
