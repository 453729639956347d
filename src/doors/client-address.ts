import type { IncomingMessage } from 'node:http';

/**
 * The caller's address as limits count it: the socket's peer, or with IOTC_TRUST_PROXY the first
 * X-Forwarded-For entry, the same address fastify gives HTTP routes as req.ip.
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const header = req.headers['x-forwarded-for'];
    const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0]?.trim();
    if (first) return first.slice(0, 64);
  }
  return req.socket.remoteAddress ?? 'unknown';
}
