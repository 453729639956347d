/**
 * One account's write flood, in a process of its own so that what the flooding client costs does not show up in
 * the victim's timings (they share the machine's cores, not an event loop). Run by the attacks with fork():
 * argv: WS_URL SECONDS LANES DEVICES_JSON; prints one JSON line: the puts' outcomes and the readings acknowledged.
 */
import { WsPeer } from './peers.js';
import { ATTACKER_ADDRESS } from './index.js';

const [wsUrl, seconds, lanes, devicesJson] = process.argv.slice(2);
const devices = JSON.parse(devicesJson) as { id: string; key: string; connections: number }[];

async function main(): Promise<void> {
  const peers = await Promise.all(devices.flatMap((d) => Array.from({ length: d.connections }, () => WsPeer.connect(wsUrl, d, 'device', ATTACKER_ADDRESS))));
  const outcome: Record<string, number> = {};
  let readings = 0;
  const end = Date.now() + Number(seconds) * 1000;
  await Promise.all(peers.flatMap((ws, k) => Array.from({ length: Number(lanes) }, async (_, lane) => {
    for (let i = 0; Date.now() < end && ws.open; i++) {
      const status = Array.from({ length: 500 }, (_, j) => ({ sensor: `s${j % 20}`, value: k * 1e6 + lane * 1e4 + j }));
      const reply = await ws.request({ method: 'put', status }, 60_000);
      const code = reply?.ok ? 'ok' : String(reply?.code ?? 'error');
      outcome[code] = (outcome[code] ?? 0) + 1;
      if (reply?.ok) readings += 500;
    }
  })));
  for (const ws of peers) ws.close();
  process.stdout.write(`${JSON.stringify({ outcome, readings })}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
