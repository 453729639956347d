import { IotcError } from './errors.js';

export type Side = 'device' | 'client';

export interface Address {
  /** Where the hub is: `ws://HOST:8888/ws?device=ID&key=KEY` as `iotc device add` prints it, or just `ws://HOST:8888`. */
  url?: string;
  /** The device id; overrides the URL's `device`. */
  device?: string;
  /** The device key; overrides the URL's `key`. */
  key?: string;
  /** Which end this is; overrides the URL's `side`. Default: the URL's, else `device` (as the original protocol). */
  side?: Side;
}

/**
 * The WebSocket URL to open: http(s) becomes ws(s), a missing scheme means ws://, `/ws` is added when the path
 * does not end with it, and device, key and side from `address` replace the URL's own.
 */
export function socketUrl(address: Address, fallbackUrl = 'ws://127.0.0.1:8888'): string {
  let text = (address.url ?? fallbackUrl).trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = `ws://${text}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new IotcError('E_VALIDATION', `"${address.url}" is not a URL: give e.g. ws://HOST:8888/ws?device=ID&key=KEY`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new IotcError('E_VALIDATION', `"${url.protocol}//" is not a WebSocket URL: use ws://, wss://, http:// or https://`);
  }
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = path.endsWith('/ws') ? path : `${path}/ws`;
  const device = address.device ?? url.searchParams.get('device') ?? '';
  const key = address.key ?? url.searchParams.get('key') ?? '';
  const side = address.side ?? url.searchParams.get('side') ?? 'device';
  if (!device || !key) throw new IotcError('E_VALIDATION', 'Give the device id and key (device and key, or a URL with ?device=ID&key=KEY)');
  if (side !== 'device' && side !== 'client') throw new IotcError('E_VALIDATION', 'side must be "device" or "client"');
  url.search = new URLSearchParams({ device, key, side }).toString();
  url.hash = '';
  return url.toString();
}
