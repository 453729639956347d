/**
 * Calls (commands with confirmation) over MQTT, as request/response topics two levels below the device:
 *   devices/ID/rpc/request/CALLID   the device receives calls here ({"method","params"})
 *   devices/ID/rpc/response/CALLID  and answers here ({"result":…} or {"error":"…"}; a bare value is a result)
 * An app (username ID:client) publishes its call to devices/ID/rpc/request/REQID ({"method","params","timeout"})
 * and gets the answer on devices/ID/rpc/response/REQID ({"result":…} or {"error","code"}).
 */
import type { Client, PublishPacket } from 'aedes';
import { z } from 'zod';
import { IotcError, toIotcError } from '../../core/errors.js';
import { CallFailed, callTimeoutMs } from '../../core/calls.js';
import type { CallRequest } from '../../core/calls.js';
import type { Relay } from '../../core/relay.js';
import type { Logger } from '../../log.js';
import type { Device, Side } from '../../store/types.js';
import { CALL_ERROR_MAX, callTimeout, describeIssues, deviceMethodName } from '../../core/messages.js';
import type { CallOutcome } from '../../store/types.js';
import type { FilterIndex } from './subscriptions.js';
import { TOPIC_ROOT, deviceTreeAt, payloadValue } from './topics.js';

export type RpcKind = 'request' | 'response';

const RPC_ID = /^[^/+#\u0000]{1,64}$/;

export function rpcTopic(deviceId: string, kind: RpcKind, id: string): string {
  return `${TOPIC_ROOT}/${deviceId}/rpc/${kind}/${id}`;
}

/**
 * The rpc topic a publish names, or null when it is not under devices/ID/rpc/request|response/.
 * `id` is null when the topic is in the rpc space but its last level is no usable id.
 */
export function parseRpcTopic(topic: string, deviceId: string): { kind: RpcKind; id: string | null } | null {
  const at = deviceTreeAt(topic, deviceId);
  if (at < 0 || !topic.startsWith('rpc/', at)) return null;
  const rest = topic.slice(at + 'rpc/'.length);
  for (const kind of ['request', 'response'] as const) {
    if (rest.startsWith(`${kind}/`)) {
      const id = rest.slice(kind.length + 1);
      return { kind, id: RPC_ID.test(id) ? id : null };
    }
  }
  return null;
}

/** A sensor whose topic would fall in the rpc space: never delivered to MQTT subscribers as a reading. */
export function isRpcSensor(sensor: string): boolean {
  return sensor.startsWith('rpc/request/') || sensor.startsWith('rpc/response/');
}

const appRequest = z.object(
  { method: deviceMethodName, params: z.unknown().optional(), timeout: callTimeout.optional() },
  { error: 'the payload must be {"method":…,"params":…,"timeout":…}' },
);

/** An app's request payload as a live call; throws E_BAD_MESSAGE / E_VALIDATION saying what is wrong. */
export function callFromPayload(payload: Buffer | string): CallRequest {
  let data: unknown;
  try {
    data = JSON.parse(payload.toString());
  } catch {
    throw new IotcError('E_BAD_MESSAGE', 'The payload is not valid JSON: send {"method":…,"params":…,"timeout":…}');
  }
  const parsed = appRequest.safeParse(data);
  if (!parsed.success) throw new IotcError('E_VALIDATION', describeIssues(parsed.error));
  return { method: parsed.data.method, params: parsed.data.params ?? null, timeoutMs: callTimeoutMs(parsed.data.timeout, false), persistent: false };
}

/** A device's answer payload: {"result":…}, {"error":"…"}, or any other JSON (or text) taken as the result. */
export function outcomeFromPayload(payload: Buffer | string): CallOutcome {
  const value = payloadValue(payload);
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    if (typeof v.error === 'string' && !('result' in v)) return { error: v.error.slice(0, CALL_ERROR_MAX) };
    if ('result' in v && !('error' in v)) return { result: v.result ?? null };
  }
  return { result: value };
}

/** The answer an app receives on its response topic. */
export function answerPayload(outcome: { result: unknown } | { error: unknown }): Buffer {
  if ('result' in outcome) return Buffer.from(JSON.stringify({ result: outcome.result ?? null }));
  const err = toIotcError(outcome.error);
  const body: Record<string, unknown> = { error: err.message, code: err.code };
  if (err instanceof CallFailed) body.call = err.call;
  return Buffer.from(JSON.stringify(body));
}

/** Publishes to one client if one of its filters matches the topic; QoS 1 at most, never retained. */
export function publishTo(filters: FilterIndex, client: Client, topic: string, payload: Buffer): boolean {
  const qos = filters.qosFor(topic);
  if (qos < 0) return false;
  client.publish({ cmd: 'publish', topic, payload, qos: Math.min(qos, 1), retain: false, dup: false } as PublishPacket, () => {});
  return true;
}

/**
 * Acts on an accepted rpc publish: a device's answer goes to the call router; an app's request becomes a live
 * call whose answer (or error) is published back to that app's response topic.
 */
export function runRpc(relay: Relay, log: Logger, conn: { side: Side; filters: FilterIndex; isClosed(): boolean }, client: Client, device: Device, id: string, payload: Buffer | string): void {
  if (conn.side === 'device') {
    relay.calls.reply(device.id, id, outcomeFromPayload(payload)).catch((err) => {
      log.info({ deviceId: device.id, call: id, code: toIotcError(err).code }, 'mqtt answer to a call refused');
    });
    return;
  }
  const answer = (outcome: { result: unknown } | { error: unknown }) => {
    if (!conn.isClosed()) publishTo(conn.filters, client, rpcTopic(device.id, 'response', id), answerPayload(outcome));
  };
  let request: CallRequest;
  try {
    request = callFromPayload(payload);
  } catch (err) {
    answer({ error: err });
    return;
  }
  relay.calls.call(device, request).then(
    (a) => answer({ result: a.state === 'answered' ? a.result : null }),
    (err) => answer({ error: err }),
  );
}
