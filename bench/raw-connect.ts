/**
 * Idle connections for the connections scenario, made with as little generator work as possible so the
 * server's handshake cost is what limits the rate: a plain TCP socket that sends a ready-made WebSocket
 * upgrade request (or MQTT CONNECT) and waits for 101 (or CONNACK). It answers pings, so it stays up.
 */
import net from 'node:net';
import mqttPacket from 'mqtt-packet';
import type { Endpoint } from './targets.js';
import type { GroupCreds } from './jobs.js';

export interface IdleConnection {
  close(): void;
}

// Any 16 bytes, base64: the generator does not check the server's accept hash.
const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function upgradeRequest(endpoint: Endpoint, creds: GroupCreds): string {
  const path = endpoint.protocol === 'iotc' ? `/ws?device=${creds.id}&key=${creds.key}&side=device` : `/?pair=${encodeURIComponent(creds.id)}&side=device`;
  return `GET ${path} HTTP/1.1\r\nHost: ${endpoint.host}:${endpoint.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
}

/** CONNECT: v3.1.1, clean session, keep-alive 60 s; with `creds`, logged in as the device (IOTcommunicate's door). */
function mqttConnect(clientId: string, creds: GroupCreds | null): Buffer {
  const login = creds ? { username: creds.id, password: Buffer.from(creds.key ?? '') } : {};
  return mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId, ...login });
}

/** A masked (zero-key) control frame, as a client must send. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

/**
 * Resolves once the server accepted the connection; `closed` is called if it ends later (with a reason:
 * a WebSocket close code such as 4401 for refused credentials, or the socket error).
 */
export function openIdle(endpoint: Endpoint, creds: GroupCreds, clientId: string, localAddress: string, closed: (why: string) => void): Promise<IdleConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port, localAddress, noDelay: true });
    let open = false;
    let ending = false;
    let buf = Buffer.alloc(0);
    const fail = (why: string) => {
      if (!open) reject(new Error(why));
      else if (!ending) closed(why);
      ending = true;
      socket.destroy();
    };
    socket.on('error', (err) => fail(err.message));
    socket.on('close', () => fail('connection closed'));
    socket.on('connect', () => socket.write(endpoint.protocol === 'mqtt' ? mqttConnect(clientId, endpoint.login ? creds : null) : upgradeRequest(endpoint, creds)));
    socket.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (!open) {
        if (endpoint.protocol === 'mqtt') {
          if (buf.length < 4) return;
          if (buf[0] !== 0x20 || buf[3] !== 0) return fail(`CONNACK refused (${buf[3]})`);
          buf = buf.subarray(4);
        } else {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const status = buf.subarray(0, 12).toString();
          if (status !== 'HTTP/1.1 101') return fail(`handshake refused: ${buf.subarray(0, Math.min(end, 60)).toString()}`);
          buf = buf.subarray(end + 4);
        }
        open = true;
        resolve({
          close() {
            ending = true;
            socket.destroy();
          },
        });
      }
      if (endpoint.protocol === 'mqtt') {
        buf = Buffer.alloc(0);
        return;
      }
      // Server frames are unmasked; idle connections only ever get small ones (ping, error, close).
      while (buf.length >= 2) {
        const opcode = buf[0] & 0x0f;
        let len = buf[1] & 0x7f;
        let at = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          at = 4;
        } else if (len === 127) {
          return fail('unexpected large frame');
        }
        if (buf.length < at + len) return;
        const payload = buf.subarray(at, at + len);
        buf = buf.subarray(at + len);
        if (opcode === 0x9) socket.write(clientFrame(0xa, payload));
        else if (opcode === 0x8) return fail(`close ${payload.length >= 2 ? payload.readUInt16BE(0) : ''}`.trim());
      }
    });
  });
}
