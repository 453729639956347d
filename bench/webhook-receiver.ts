/**
 * The local receiver of the bench's firing rules (`--rules N --fire`): counts the webhooks the hub delivers
 * and checks each one's signature, so the figure counts real, signed deliveries. It runs in the bench process,
 * so its cost never lands on the server's figures.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { signature } from '../src/automations/delivery.js';

/** Every bench rule is made with this secret (bench/fixture.ts). */
export const BENCH_SECRET = 'whsec_bench';
/** The firing `changed` rule fires at most once per this per device (bench/fixture.ts). */
export const FIRE_COOLDOWN_MS = 5000;

export interface WebhookReceiver {
  url: string;
  /** Webhooks received with a good signature, and with a bad or missing one, since the start. */
  counts(): { webhooks: number; badSignatures: number };
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  let webhooks = 0;
  let bad = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const ts = Number(req.headers['x-iotc-timestamp']);
      if (req.headers['x-iotc-signature'] === signature(BENCH_SECRET, ts, body)) webhooks++;
      else bad++;
      res.writeHead(200).end('ok');
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/bench-hook`,
    counts: () => ({ webhooks, badSignatures: bad }),
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
