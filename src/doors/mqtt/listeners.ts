/** Where MQTT connections come in: plain TCP, TLS, and WebSocket upgrades of /mqtt, each admitted through the handshake guard. */
import net from 'node:net';
import tls from 'node:tls';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from '../../log.js';
import { clientAddress } from '../client-address.js';
import type { HandshakeGuard, PendingHandshake } from '../handshake-guard.js';
import type { MqttDoorConfig, Session } from './session.js';

/** Hands an admitted byte stream over to the broker. */
export type AcceptStream = (raw: Duplex, remote: string, transport: Session['transport'], handshake: PendingHandshake) => void;

export class MqttListeners {
  /** False once the hub stops: new connections are turned away. */
  accepting = true;
  private readonly wss: WebSocketServer;
  private readonly servers: net.Server[] = [];

  constructor(
    private readonly config: MqttDoorConfig,
    private readonly log: Logger,
    private readonly handshakes: HandshakeGuard,
    maxPacketBytes: number,
    private readonly accept: AcceptStream,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: maxPacketBytes,
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
    });
  }

  /** Listens on config.mqttPort (0 = no TCP listener); resolves to the bound port or null. */
  async listen(): Promise<number | null> {
    if (this.config.mqttPort === 0) return null;
    const server = net.createServer((socket) => {
      socket.setNoDelay(true);
      const remote = socket.remoteAddress ?? '?';
      this.accept(socket, remote, 'tcp', this.handshakes.admit(remote, () => socket.destroy()));
    });
    return this.bind(server, this.config.mqttPort, '--mqtt-port / IOTC_MQTT_PORT');
  }

  /**
   * MQTT over TLS on `port` (0 = off); resolves to the bound port or null. The connection counts as in its
   * handshake from the first TCP byte, so a peer that never finishes TLS is dropped like any other.
   */
  async listenTls(port: number, secure: tls.TlsOptions): Promise<number | null> {
    if (port === 0) return null;
    const server = tls.createServer({ ...secure, handshakeTimeout: this.config.handshakeTimeout });
    const pending = new Map<string, PendingHandshake>();
    const key = (s: net.Socket) => `${s.remoteAddress}:${s.remotePort}`;
    server.on('connection', (socket: net.Socket) => {
      const remote = socket.remoteAddress ?? '?';
      const k = key(socket);
      // Settled when the socket closes before it is handed over, or by the session; forgotten here either way.
      const handshake = this.handshakes.admitSocket(remote, socket, () => {
        if (pending.get(k) === handshake) pending.delete(k);
      });
      pending.set(k, handshake);
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      socket.setNoDelay(true);
      const k = key(socket);
      const handshake = pending.get(k);
      pending.delete(k);
      if (!handshake) return void socket.destroy();
      this.accept(socket, socket.remoteAddress ?? '?', 'tls', handshake);
    });
    server.on('tlsClientError', (err) => this.log.debug({ err: err.message }, 'mqtts handshake failed'));
    return this.bind(server, port, '--mqtts-port / IOTC_MQTTS_PORT');
  }

  /** Swaps the certificate of the MQTTS listener; connections already open keep theirs. */
  setSecureContext(secure: tls.SecureContextOptions): void {
    for (const server of this.servers) if (server instanceof tls.Server) server.setSecureContext(secure);
  }

  private async bind(server: net.Server, port: number, setting: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE'
          ? Object.assign(new Error(`MQTT port ${port} is already in use: stop what runs there, pick another with ${setting}, or 0 to turn that listener off`), { code: 'EADDRINUSE' })
          : err),
      );
      server.listen(port, this.config.host, () => resolve());
    });
    this.servers.push(server);
    return (server.address() as net.AddressInfo).port;
  }

  /** MQTT over WebSocket: the server routes upgrades of /mqtt here. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!this.accepting) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    // The WebSocket handshake and then the MQTT CONNECT must both be done within the handshake timeout.
    const remote = clientAddress(req, this.config.trustProxy);
    const handshake = this.handshakes.admitSocket(remote, socket);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => stream.destroy());
      this.accept(stream, remote, 'websocket', handshake);
    });
  }

  stopAccepting(): void {
    this.accepting = false;
    for (const server of this.servers) server.close();
  }

  /** Once the connections are gone: the WebSocket server and every listener closed. */
  async close(): Promise<void> {
    this.wss.close();
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}
