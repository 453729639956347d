/**
 * What the relay hands an MQTT connection, published to it: readings (live, retained on SUBSCRIBE, or missed
 * while a persistent session was away), binary chunks, and calls for a device.
 */
import type { Client } from 'aedes';
import { blobDelivery } from '../../core/blobs.js';
import type { DeviceCall } from '../../core/calls.js';
import { IotcError } from '../../core/errors.js';
import { otherSide } from '../../store/types.js';
import type { StoredReading } from '../../store/types.js';
import { isRpcSensor, publishTo, rpcTopic } from './rpc.js';
import { closeSession } from './session.js';
import type { DeliveryTarget, DoorContext, Session } from './session.js';
import { publishToConnection } from './session-persistence.js';
import { FilterIndex, latestBlobsMatching, latestMatching } from './subscriptions.js';
import { aliasDeliveryTopic, aliasFilterAllowed, aliasPayload, sensorTopic, unpublishableSensor, valuePayload } from './topics.js';
import { REASON } from './reason-codes.js';

/** Sensors whose targets a connection keeps; beyond them (a device with more sensors) they are worked out at each delivery. */
const KEPT_TARGETS = 256;

/**
 * Where a reading goes on this connection: its devices/ID/SENSOR topic if a subscription matches it (found through
 * the index, whatever the number of filters), and the command topic of a firmware's own layout. A firmware
 * subscribed to several (Tasmota: its topic, its group's, its fallback) gets a command once, on the first it
 * subscribed to, so a TOGGLE toggles once. Firmware filters are few (a Tasmota holds three) and within the cap.
 * Kept per sensor until the filters change: the topic and its match were made again for every delivery.
 */
function deliveryTargets(session: Pick<Session, 'filters' | 'firmwareFilters' | 'targets'>, deviceId: string, sensor: string): readonly DeliveryTarget[] {
  const generation = session.filters.generation;
  let kept = session.targets;
  if (kept !== null && kept.generation === generation) {
    const known = kept.bySensor.get(sensor);
    if (known !== undefined) return known;
  } else {
    kept = session.targets = { generation, bySensor: new Map() };
  }
  const out: DeliveryTarget[] = [];
  if (!unpublishableSensor(sensor)) {
    const topic = sensorTopic(deviceId, sensor);
    const qos = session.filters.qosFor(topic);
    if (qos >= 0) out.push({ topic, qos, firmware: false });
  }
  for (const filter of session.firmwareFilters) {
    const topic = aliasDeliveryTopic(filter, sensor);
    if (topic !== null) {
      out.push({ topic, qos: session.filters.qosOf(filter), firmware: true });
      break;
    }
  }
  // A session is one device's: its readings' device id never changes, so the sensor alone is the key.
  if (kept.bySensor.size < KEPT_TARGETS) kept.bySensor.set(sensor, out);
  return out;
}

/** A reading from the relay: sent now, or kept (the latest per sensor) until the session is ready. `valueJson`: see Receiver.deliver. */
export function deliver(ctx: DoorContext, session: Session, client: Client, reading: StoredReading, valueJson?: string): void {
  if (session.closed) return;
  if (!session.ready) {
    const had = session.early.get(reading.sensor);
    if (!had || had.seq < reading.seq) session.early.set(reading.sensor, reading);
    return;
  }
  send(ctx, session, client, reading, false, valueJson);
}

/** The broker restored the session and sent CONNACK: what came before goes out now. */
export function sessionReady(ctx: DoorContext, session: Session | undefined, client: Client): void {
  if (!session || session.closed) return;
  session.ready = true;
  const early = [...session.early.values()].sort((a, b) => a.seq - b.seq);
  session.early.clear();
  session.blobs?.ready(client.clean);
  // A clean session has no subscription from before: what it missed reaches it as the retained
  // latest values when it subscribes. A persistent session gets it now, through its restored subscriptions.
  if (client.clean) return;
  callsSubscribed(ctx, session);
  for (const r of early) send(ctx, session, client, r, false);
}

/** A new subscription gets the latest value (or chunk) of each matching sensor the other side wrote, as a retained message. */
export async function sendRetained(ctx: DoorContext, session: Session, client: Client, subs: { topic: string; qos: number }[]): Promise<void> {
  const device = session.device;
  if (!device || session.closed) return;
  const filters = subs.filter((s) => s.qos !== 128 && session.wire.retainHandling(s.topic) !== 2).map((s) => s.topic);
  if (filters.length === 0) return;
  try {
    const firmware = filters.filter(aliasFilterAllowed);
    const rows = await latestMatching(ctx.relay, device.id, otherSide(session.side), filters.filter((f) => !aliasFilterAllowed(f)));
    if (firmware.length > 0) {
      // A firmware's command filter names sensors, not devices/ID/ topics: each sensor is tried against the few it holds.
      for (const r of await ctx.relay.sensors(device.id, otherSide(session.side))) {
        if (firmware.some((f) => aliasDeliveryTopic(f, r.sensor) !== null)) rows.push(r);
      }
    }
    const chunks = session.blobs ? await latestBlobsMatching(ctx.relay.store, device.id, otherSide(session.side), filters.filter((f) => !aliasFilterAllowed(f))) : [];
    // A topic may hold both a text value and a chunk: the newer (by time) is retained last.
    const out = [...rows.map((r) => ({ time: r.time, go: () => send(ctx, session, client, r, true) })), ...chunks.map((b) => ({ time: b.time, go: () => session.blobs!.deliver(blobDelivery(b, b.data), true) }))];
    for (const o of out.sort((a, b) => a.time - b.time)) o.go();
  } catch (err) {
    ctx.log.warn({ err, deviceId: device.id }, 'could not send retained values');
  }
}

function send(ctx: DoorContext, session: Session, client: Client, r: StoredReading, retain: boolean, valueJson?: string): void {
  if (session.closed || isRpcSensor(r.sensor)) return;
  const targets = deliveryTargets(session, r.deviceId, r.sensor);
  if (targets.length === 0) return;
  if ((session.sent.get(r.sensor) ?? 0) >= r.seq) return;
  session.sent.set(r.sensor, r.seq);
  if (session.wire.queuedBytes > ctx.config.sendQueueBytes) {
    ctx.log.warn({ deviceId: r.deviceId, side: session.side }, 'closing slow mqtt receiver: send queue full');
    closeSession(session, client, REASON.quotaExceeded, new IotcError('E_SLOW_CONSUMER').message);
    return;
  }
  for (const t of targets) {
    const payload = t.firmware ? aliasPayload(r.value) : (valueJson ?? valuePayload(r.value));
    publishToConnection(client, session.wire, t.topic, payload, t.qos, retain);
  }
}

// ---- calls (see rpc.ts) ----

/** A call for a device-side connection: published on its request topic if it subscribed to it. */
export function deliverCall(session: Session, client: Client, c: DeviceCall): void {
  if (session.closed || !session.ready) return;
  const payload = Buffer.from(JSON.stringify({ method: c.method, params: c.params ?? null }));
  publishTo(session.filters, client, rpcTopic(session.device!.id, 'request', c.call), payload);
}

/** A device subscribed to its calls (or came back with such a subscription): its persistent calls that wait are sent. */
export function callsSubscribed(ctx: DoorContext, session: Session | undefined, filters?: string[]): void {
  if (!session?.device || session.closed || session.side !== 'device' || !session.ready) return;
  const probe = rpcTopic(session.device.id, 'request', 'c_probe');
  if ((filters ? new FilterIndex(filters.map((f) => [f, 0])) : session.filters).qosFor(probe) < 0) return;
  void ctx.relay.calls.deliverOpen(session.device.id, session.receiver);
}
