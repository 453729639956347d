/**
 * The ceiling of the runtime: a WebSocket relay with nothing but the work every relay must do. No auth,
 * no storage, no validation, no acknowledgement. `/?pair=P&side=device|client`; each text frame from one
 * side is parsed, re-serialised once (as IOTcommunicate's delivered reading) and sent to every connection
 * on the other side of the same pair. Run as its own process by the bench: `PORT=… node bare-relay`.
 */
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';

interface Pair {
  device: Set<WebSocket>;
  client: Set<WebSocket>;
}

const pairs = new Map<string, Pair>();
const port = Number(process.env.PORT ?? 0);
const wss = new WebSocketServer({ port, host: '127.0.0.1', perMessageDeflate: false, clientTracking: false, maxPayload: 65536 });

wss.on('connection', (ws, req) => {
  const url = new URL(req.url ?? '/', 'http://relay');
  const key = url.searchParams.get('pair') ?? '';
  const side = url.searchParams.get('side') === 'client' ? 'client' : 'device';
  let pair = pairs.get(key);
  if (!pair) {
    pair = { device: new Set(), client: new Set() };
    pairs.set(key, pair);
  }
  const mine = pair[side];
  const others = side === 'device' ? pair.client : pair.device;
  mine.add(ws);
  ws.on('message', (data) => {
    let msg: { status?: { sensor?: unknown; value?: unknown } };
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return;
    }
    const s = msg.status;
    if (!s) return;
    const json = JSON.stringify({ sensor: s.sensor, value: s.value, time: Date.now(), write: side });
    for (const peer of others) peer.send(json);
  });
  ws.on('error', () => {});
  ws.on('close', () => {
    mine.delete(ws);
    if (pair!.device.size === 0 && pair!.client.size === 0) pairs.delete(key);
  });
});

wss.on('listening', () => process.stdout.write(`listening ${(wss.address() as { port: number }).port}\n`));
// Nothing to save: stop at once (ws's close would wait for every client to go first).
process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));
