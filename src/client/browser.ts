/** The client for browsers (and any runtime with a global WebSocket): no Node.js imports. */
import { Client } from './client.js';
import type { ClientOptions, SocketFactory } from './client.js';

export * from './shared.js';

/**
 * Connects to the hub as one side of a device and stays connected (reconnecting with backoff).
 * `connect('ws://HOST:8888/ws?device=ID&key=KEY', { side: 'client' })` or `connect({ url, device, key, side })`.
 */
export function connect(url: string | ClientOptions, options: ClientOptions = {}): Client {
  const opts = typeof url === 'string' ? { ...options, url } : { ...url, ...options };
  const WebSocket = (globalThis as { WebSocket?: SocketFactory }).WebSocket;
  return new Client({ WebSocket, ...opts });
}
