import os from 'node:os';
import type { IncomingMessage } from 'node:http';
import { isSecureRequest, requestHost } from './session.js';

/** Where devices reach this server, as the browser addressed it: what the pages put in URLs and examples. */
export interface ServerAddress {
  /** host[:port] */
  host: string;
  hostname: string;
  port: number;
  secure: boolean;
  wsBase: string;
  httpBase: string;
  /** The browser used localhost: a device on the network cannot, so the pages suggest these instead. */
  loopback: boolean;
  lanHosts: string[];
}

const HOST_PATTERN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253})(:\d{1,5})?$/;

export function validHost(host: string): boolean {
  return HOST_PATTERN.test(host);
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || /^127\./.test(hostname) || hostname === '[::1]';
}

export function lanAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) out.push(a.address);
  }
  return out.slice(0, 4);
}

export function serverAddress(req: IncomingMessage, trustProxy: boolean, override?: string): ServerAddress {
  const secure = isSecureRequest(req, trustProxy);
  let host = requestHost(req, trustProxy);
  if (!validHost(host)) host = 'localhost';
  const seen = host;
  if (override && validHost(override)) host = override;
  const m = HOST_PATTERN.exec(host)!;
  const hostname = m[1];
  const port = m[2] ? Number(m[2].slice(1)) : secure ? 443 : 80;
  const seenName = HOST_PATTERN.exec(seen)![1];
  const seenPort = HOST_PATTERN.exec(seen)![2] ?? '';
  const loopback = isLoopback(hostname);
  return {
    host,
    hostname,
    port,
    secure,
    wsBase: `${secure ? 'wss' : 'ws'}://${host}`,
    httpBase: `${secure ? 'https' : 'http'}://${host}`,
    loopback,
    lanHosts: loopback || isLoopback(seenName) ? lanAddresses().map((ip) => ip + seenPort) : [],
  };
}

export function deviceUrl(addr: ServerAddress, id: string, key: string): string {
  return `${addr.wsBase}/ws?device=${id}&key=${key}`;
}
