/**
 * Webhooks must not reach into the hub's own network: anyone may sign up and name a URL. Addresses are checked
 * when a rule is saved (the URL's text) and again when it is sent (the address the name resolves to, in the very
 * lookup the connection uses), so a name that later resolves inward (DNS rebinding) is refused too.
 */
import dns from 'node:dns';
import net from 'node:net';
import type { LookupFunction } from 'node:net';

const blocked = new net.BlockList();
for (const [prefix, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(prefix, bits, 'ipv4');
for (const [prefix, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96]] as const) {
  blocked.addSubnet(prefix, bits, 'ipv6');
}

/** Loopback, private, link-local, carrier-grade NAT, multicast or unspecified (IPv4-mapped IPv6 included). */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1], 'ipv4');
  const family = net.isIP(address);
  if (family === 0) return true;
  return blocked.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export const PRIVATE_REFUSED = 'private, loopback and link-local addresses are refused (the hub admin can allow them with IOTC_WEBHOOK_ALLOW_PRIVATE=true)';

/** The URL's host, if it is a literal address or "localhost", must not be private: said at once, when the rule is saved. */
export function checkWebhookUrlText(url: string, allowPrivate: boolean): string | null {
  if (allowPrivate) return null;
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (/^localhost$|\.localhost$/i.test(host)) return `${host}: ${PRIVATE_REFUSED}`;
  if (net.isIP(host) && isPrivateAddress(host)) return `${host}: ${PRIVATE_REFUSED}`;
  return null;
}

/** A dns.lookup for http.request that refuses private answers: the address checked is the address connected to. */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      const list = addresses as dns.LookupAddress[];
      const bad = allowPrivate ? undefined : list.find((a) => isPrivateAddress(a.address));
      if (bad) {
        const refusal = Object.assign(new Error(`${hostname} resolves to ${bad.address}: ${PRIVATE_REFUSED}`), { code: 'E_PRIVATE_ADDRESS' });
        return callback(refusal);
      }
      if (options.all) return callback(null, list);
      return callback(null, list[0].address, list[0].family);
    });
  }) as LookupFunction;
}
