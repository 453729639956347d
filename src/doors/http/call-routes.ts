import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CallFailed, callTimeoutMs } from '../../core/calls.js';
import { IotcError } from '../../core/errors.js';
import { CALL_ERROR_MAX, callId, callTimeout, deviceMethodName } from '../../core/messages.js';
import type { Hub } from '../../core/hub.js';
import type { CallerAuth } from './credentials.js';
import { check, deviceIdParam } from './schemas.js';

const LONG_POLL_MAX_S = 30;

export const callBody = z.object(
  {
    method: deviceMethodName,
    params: z.unknown().optional(),
    timeout: callTimeout.optional(),
    persistent: z.boolean({ error: 'persistent must be true or false' }).optional(),
  },
  { error: 'the body must be {"method":…,"params":…,"timeout":…,"persistent":…}' },
);
export const replyBody = z
  .object({
    result: z.unknown().optional(),
    error: z.string({ error: "error must be a string (the device's message)" }).max(CALL_ERROR_MAX, `error must be at most ${CALL_ERROR_MAX} characters`).optional(),
  }, { error: 'the body must be {"result":…} or {"error":"…"}' })
  .refine((b) => !('result' in b && 'error' in b), 'give either result or error, not both');
const callParams = deviceIdParam.extend({ call: callId });
const waitQuery = z.object({
  wait: z.coerce.number({ error: 'wait must be a number of seconds' }).min(0, 'wait must be 0 or more').max(LONG_POLL_MAX_S, `wait must be at most ${LONG_POLL_MAX_S} seconds`).optional(),
});

/** A request whose client went away: a long-poll stops waiting for it. */
const gone = (req: FastifyRequest, reply: FastifyReply) => () => reply.raw.closed || req.raw.socket.destroyed;

/**
 * Calls over HTTP: an app (API token, or the device key with side=client) calls its device and waits for the
 * answer; a device (its key) long-polls for its next call and answers it. See docs/http-api.md.
 */
export function callRoutes(app: FastifyInstance, hub: Hub, auth: CallerAuth, jsonBody: (body: unknown) => unknown): void {
  const { calls } = hub.relay;

  app.post('/devices/:id/calls', async (req, reply) => {
    const { id } = check(deviceIdParam, req.params);
    const caller = await auth.caller(req, id, 'call');
    if (caller.side !== 'client') throw new IotcError('E_FORBIDDEN', "Only an app (an API token, or the key with side=client) can call a device's methods");
    const body = check(callBody, jsonBody(req.body));
    const persistent = body.persistent ?? false;
    const request = { method: body.method, params: body.params ?? null, timeoutMs: callTimeoutMs(body.timeout, persistent), persistent };
    try {
      const answer = await calls.call(caller.device, request);
      return reply.code(answer.state === 'answered' ? 200 : 202).send(answer);
    } catch (err) {
      // The generic handler answers {error, message}; a call that got an id names it too.
      if (!(err instanceof CallFailed)) throw err;
      return reply.code(err.status).type('application/json; charset=utf-8').send({ error: err.code, message: err.message, call: err.call });
    }
  });

  app.get('/devices/:id/calls/next', async (req, reply) => {
    const { id } = check(deviceIdParam, req.params);
    const caller = await auth.caller(req, id);
    if (caller.side !== 'device') throw new IotcError('E_FORBIDDEN', 'Only the device (its key, device side) takes its calls');
    const { wait } = check(waitQuery, req.query);
    const next = await calls.next(caller.device, (wait ?? 0) * 1000, gone(req, reply));
    if (!next) return reply.code(204).send();
    return { call: next.call, method: next.method, params: next.params };
  });

  app.get('/devices/:id/calls/:call', async (req, reply) => {
    const { id, call } = check(callParams, req.params);
    const caller = await auth.caller(req, id, 'call');
    if (caller.side !== 'client') throw new IotcError('E_FORBIDDEN', 'Only an app (an API token, or the key with side=client) reads calls');
    const { wait } = check(waitQuery, req.query);
    return calls.waitFinal(caller.device, call, (wait ?? 0) * 1000, gone(req, reply));
  });

  app.post('/devices/:id/calls/:call/reply', async (req) => {
    const { id, call } = check(callParams, req.params);
    const caller = await auth.caller(req, id);
    if (caller.side !== 'device') throw new IotcError('E_FORBIDDEN', 'Only the device (its key, device side) answers its calls');
    const body = check(replyBody, jsonBody(req.body));
    await calls.reply(caller.device.id, call, body.error !== undefined ? { error: body.error } : { result: body.result ?? null });
    return { ok: true };
  });
}
