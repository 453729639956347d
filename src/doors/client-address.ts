import type { IncomingMessage } from 'node:http';

/**
 * The address a request comes from, as every limit counts it: its TCP peer, or behind a trusted proxy
 * (IOTC_TRUST_PROXY) the last X-Forwarded-For entry, the one the proxy itself wrote; entries before it come
 * from the client and could be anything. The HTTP routes see the same address (fastify trusts one hop).
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  if (!trustProxy) return peer;
  const forwarded = req.headers['x-forwarded-for'];
  const last = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded ?? '').split(',').map((s) => s.trim()).filter(Boolean).at(-1);
  return last ? last.slice(0, 64) : peer;
}
