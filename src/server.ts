import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { mqttPortTakenReason, nearbyFreePort, serverAddresses } from './addresses.js';
import type { ServerAddresses } from './addresses.js';
import { isExplicit, sourceOf } from './config.js';
import type { Config } from './config.js';
import { createHub } from './core/hub.js';
import type { Hub } from './core/hub.js';
import { IotcError } from './core/errors.js';
import { HandshakeGuard } from './doors/handshake-guard.js';
import type { PendingHandshake } from './doors/handshake-guard.js';
import { httpError, sendError } from './doors/http/errors.js';
import { registerHttpApi } from './doors/http/routes.js';
import { MqttDoor } from './doors/mqtt/door.js';
import { WebSocketDoor } from './doors/ws.js';
import type { Logger } from './log.js';
import { InstanceLock } from './instance.js';
import { createMetrics, stopMetrics } from './metrics.js';
import { describeStore } from './store/index.js';
import { CertificateReloader, readTlsFiles, tlsEnabled } from './tls.js';
import { notFoundPage, sessionUpgradeAuthenticator, webApp, webSessionUser } from './web/index.js';
import { mqttUserAuthenticator } from './core/sharing-doors.js';

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => void;

export interface RunningServer {
  hub: Hub;
  app: FastifyInstance;
  /** The port actually bound (useful with port 0). */
  port: number;
  /** The MQTT port bound, or null when the MQTT listener is off (MQTT over WebSocket at /mqtt is always on). */
  mqttPort: number | null;
  /** The MQTT-over-TLS port bound, or null without TLS or with --mqtts-port 0. */
  mqttsPort: number | null;
  /** Loads the TLS certificate and key again (SIGHUP); false without TLS or when the new pair does not load. */
  reloadTls(): boolean;
  url: string;
  /**
   * Where each door really listens, with the MQTT port in use or why MQTT is off: the one place to read them
   * (also as hub.addresses, and published for the CLI in the data dir's server.json while the server runs).
   */
  addresses: ServerAddresses;
  /** Stops taking connections, commits every accepted write, closes connections and the store. */
  close(): Promise<void>;
}

/** A socket's error listener that holds nothing but the socket it is called on (it lives as long as the connection). */
function destroySelf(this: Duplex): void {
  this.destroy();
}

/** Builds and starts a node: the hub, the HTTP app and every door, listening on config.port. */
export async function startServer(config: Config, log: Logger, opts: { tlsPollMs?: number; haPollMs?: number } = {}): Promise<RunningServer> {
  // A bad certificate stops the start before anything is opened.
  const tlsFiles = tlsEnabled(config) ? readTlsFiles(config) : null;
  // Before the database is opened: a second server on the same SQLite file is refused, naming the first.
  const instance = InstanceLock.claim(config, config.nodeId || 'node', describeStore(config));
  let hub: Hub;
  try {
    hub = await createHub(config, log);
  } catch (err) {
    instance?.release();
    throw err;
  }
  const app = Fastify({
    loggerInstance: log.child({ component: 'http' }) as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.maxFrameBytes,
    // One trusted hop: request.ip is the last X-Forwarded-For entry, the one the proxy wrote, as the doors count it (client-address.ts).
    trustProxy: config.trustProxy ? (_address: string, hop: number) => hop === 0 : false,
    // A whole request (at most max-frame bytes) must arrive in good time; fastify's default is no limit at all.
    requestTimeout: Math.max(30_000, config.handshakeTimeout),
    // An idle keep-alive connection proves nothing: it gets the handshake timeout, unless it is a proxy's pool (kept past common load balancers' 60 s).
    keepAliveTimeout: config.trustProxy ? 72_000 : config.handshakeTimeout,
    http: { connectionsCheckingInterval: Math.min(5000, config.handshakeTimeout) },
    // With a certificate the same port speaks https (and wss); the http options above apply to it too.
    ...(tlsFiles ? { https: { connectionsCheckingInterval: Math.min(5000, config.handshakeTimeout), cert: tlsFiles.cert, key: tlsFiles.key, handshakeTimeout: config.handshakeTimeout } } : {}),
  }) as unknown as FastifyInstance;
  app.server.headersTimeout = config.handshakeTimeout;
  // One guard for every door: handshake timeout and unauthenticated connections per address.
  const handshakes = new HandshakeGuard(config, log.child({ component: 'handshake' }), (code) => hub.relay.countError(code));
  const wsDoor = new WebSocketDoor(hub.relay, config, log.child({ component: 'ws' }), { authenticateRequest: sessionUpgradeAuthenticator(hub, config), handshakes, blobs: hub.blobs });
  const mqttDoor = await MqttDoor.create(hub.relay, config, log.child({ component: 'mqtt' }), handshakes, hub.blobs, mqttUserAuthenticator(hub));
  // A TCP connection to the HTTP port is in its handshake until its first request (or upgrade) has arrived.
  // Behind a trusted proxy its peer is the proxy, so it is timed but not counted against an address.
  // Keyed by the peer's address and port: with TLS the request comes on a TLS socket wrapping the TCP one admitted here.
  const pendingHttp = new Map<string, PendingHandshake>();
  const peer = (socket: { remoteAddress?: string; remotePort?: number }) => `${socket.remoteAddress}:${socket.remotePort}`;
  const settleHttp = (socket: Duplex) => pendingHttp.get(peer(socket as Duplex & { remoteAddress?: string }))?.settle();
  app.server.on('connection', (socket: Duplex & { remoteAddress?: string; remotePort?: number }) => {
    const key = peer(socket);
    // Settled (and forgotten) at the first request or upgrade, or when the socket closes before it.
    const handshake = handshakes.admitSocket(config.trustProxy ? null : socket.remoteAddress ?? '?', socket, () => {
      if (pendingHttp.get(key) === handshake) pendingHttp.delete(key);
    });
    pendingHttp.set(key, handshake);
  });
  app.server.prependListener('request', (req: IncomingMessage) => settleHttp(req.socket));
  const upgrades = new Map<string, UpgradeHandler>([
    ['/ws', (req, socket, head, url) => wsDoor.handleUpgrade(req, socket, head, url)],
    ['/mqtt', (req, socket, head) => mqttDoor.handleUpgrade(req, socket, head)],
  ]);

  registerHttpApi(app, { hub, config, log: log.child({ component: 'api' }), sessionUser: webSessionUser(hub, config) });

  // Outside the API and the web app's own routes: the same error shapes, a page for browsers, JSON for the rest.
  app.setErrorHandler((raw, _req, reply) => {
    const err = httpError(raw, config.maxFrameBytes);
    if (err.status >= 500) log.error({ err: raw }, 'request failed');
    return sendError(reply, err);
  });
  app.setNotFoundHandler((req, reply) => {
    const path = (req.url.split('?')[0] ?? '').slice(0, 200);
    if (String(req.headers.accept ?? '').includes('text/html')) {
      return reply.code(404).type('text/html; charset=utf-8').send(notFoundPage(path).text);
    }
    return sendError(reply, new IotcError('E_NOT_FOUND', `Nothing at ${req.method} ${path}`));
  });

  const metrics = createMetrics(hub, { handshakesPending: () => handshakes.pending });
  app.addHook('onClose', async () => stopMetrics(metrics));
  app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));

  app.get('/healthz', async () => ({ ok: true }));
  // Ready = this node can serve: its store and its bus both answer, each within 2 s.
  app.get('/readyz', async (_req, reply) => {
    const check = (what: string, ping: () => Promise<void>) =>
      Promise.race([ping(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 2 s')), 2000).unref())]).then(
        () => null,
        (err: Error) => `${what} (${what === 'store' ? hub.store.kind : hub.bus.kind}): ${err.message}`,
      );
    const problems = (await Promise.all([check('store', () => hub.store.ping()), check('bus', () => hub.bus.ping())])).filter(Boolean);
    if (problems.length === 0) return { ok: true, store: hub.store.kind, bus: hub.bus.kind };
    return reply.code(503).send({ error: 'E_UNAVAILABLE', message: `Not ready: ${problems.join('; ')}` });
  });

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    settleHttp(socket);
    socket.on('error', destroySelf);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const handler = upgrades.get(url.pathname);
    if (!handler) {
      const text = 'No WebSocket endpoint here: use /ws or /mqtt';
      socket.end(`HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
      return;
    }
    handler(req, socket, head, url);
  });

  let mqttPort: number | null = null;
  try {
    // The pages show the MQTT port really bound (or that there is none), read when a page is made.
    await app.register(webApp, { hub, config, mqttPort: () => mqttPort });
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await mqttDoor.close();
    await hub.close();
    instance?.release();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(`Port ${config.port} is already in use: stop what runs there or pick another with --port / PORT`);
    }
    throw err;
  }
  let mqttOff: string | null = config.mqttPort === 0 ? `turned off (${sourceOf(config, 'mqttPort') === 'IOTC_MQTT_PORT' ? 'IOTC_MQTT_PORT=0' : '--mqtt-port 0'})` : null;
  try {
    mqttPort = await mqttDoor.listen();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && !isExplicit(config, 'mqttPort')) {
      // The default port is often held by a broker already on the machine: the hub still runs, with MQTT over
      // WebSocket at /mqtt, and says how to get the TCP listener. A port the user chose must be had, or it stops.
      log.warn(`${(err as Error).message}. Running without the MQTT TCP listener (MQTT over WebSocket at /mqtt is on).`);
      mqttPort = null;
      mqttOff = mqttPortTakenReason(config.mqttPort, await nearbyFreePort(config.mqttPort, config.host));
    } else {
      await mqttDoor.close();
      await app.close();
      await hub.close();
      instance?.release();
      throw err;
    }
  }
  let mqttsPort: number | null = null;
  let reloader: CertificateReloader | null = null;
  if (tlsFiles) {
    try {
      mqttsPort = await mqttDoor.listenTls(config.mqttsPort, tlsFiles);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && !isExplicit(config, 'mqttsPort')) {
        log.warn(`${(err as Error).message}. Running without the MQTTS listener.`);
      } else {
        await mqttDoor.close();
        await app.close();
        await hub.close();
        throw err;
      }
    }
    const tlsServer = app.server as unknown as import('node:tls').Server;
    reloader = new CertificateReloader(config, (files) => {
      tlsServer.setSecureContext(files);
      mqttDoor.setSecureContext(files);
    }, log.child({ component: 'tls' }), opts.tlsPollMs);
    if (mqttPort !== null) log.warn(`TLS is on, but the plain MQTT listener on port ${mqttPort} is too: device keys sent there cross the network in the clear (--mqtt-port 0 turns it off)`);
  }
  // Loaded only when configured: the MQTT client library it connects with is a good part of a hub's memory.
  const haBridge = config.haBroker ? new (await import('./integrations/home-assistant.js')).HomeAssistantBridge(config, hub.store, hub.relay, log.child({ component: 'home-assistant' }), opts.haPollMs) : null;
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const addresses = serverAddresses({ host: config.host, port, mqttPort, mqttOff, tls: tlsFiles !== null });
  Object.assign(hub, { addresses });
  instance?.publish(addresses, hub.nodeId);
  log.info({ port, mqttPort, mqttsPort, tls: tlsFiles !== null, node: hub.nodeId, store: describeStore(config), bus: hub.bus.kind }, `IOTcommunicate listening on port ${port}`);

  let closing: Promise<void> | null = null;
  return {
    hub,
    app,
    port,
    mqttPort,
    mqttsPort,
    url: `${tlsFiles ? 'https' : 'http'}://127.0.0.1:${port}`,
    addresses,
    reloadTls: () => reloader?.reload() ?? false,
    close() {
      closing ??= (async () => {
        reloader?.stop();
        await haBridge?.close().catch((err) => log.warn({ err }, 'Home Assistant bridge did not close cleanly'));
        wsDoor.stopAccepting();
        mqttDoor.stopAccepting();
        hub.relay.stopAccepting();
        const httpClosed = app.close();
        // Commit what was accepted, let its acknowledgements go out, then say goodbye.
        await hub.relay.drain();
        await new Promise((r) => setImmediate(r));
        await wsDoor.close(config.shutdownTimeout);
        await mqttDoor.close(config.shutdownTimeout);
        await httpClosed;
        handshakes.close();
        await hub.close();
        instance?.release();
        log.info('IOTcommunicate stopped');
      })();
      return closing;
    },
  };
}
