/** The OpenAPI description of the call routes (src/doors/http/call-routes.ts), merged into openapi.ts's document. */
import { json, p, ref } from './openapi-kit.js';
import type { Json } from './openapi-kit.js';

const error = (description: string, schema: Json = ref('Error')) => json(schema, description);

const ERRORS: Record<string, string> = {
  '400': 'Malformed request or invalid field (E_BAD_MESSAGE, E_VALIDATION)',
  '401': 'Missing or wrong device key or API token (E_AUTH)',
  '403': 'The wrong side for this route (E_FORBIDDEN: only apps call, only the device answers), or a limit of open calls reached (E_LIMIT)',
  '404': 'No such device or call (E_NOT_FOUND); another user\'s device or call is "not found" too',
  '429': 'Rate limit reached (E_RATE_LIMITED)',
};
const errors = (...statuses: string[]) => Object.fromEntries(statuses.map((s) => [s, error(ERRORS[s])]));

const callIdParam = { name: 'call', in: 'path', required: true, schema: { type: 'string', maxLength: 64 }, description: 'The call id ("c_" and 16 letters/digits)' };
const waitParam = (what: string) => ({ name: 'wait', in: 'query', schema: { type: 'number', minimum: 0, maximum: 30, default: 0 }, description: `Seconds to wait for ${what} (long-poll)` });
const deviceAuth = [{ deviceKey: [] }, { deviceKeyQuery: [] }];
const appAuth = [{ apiToken: [] }, { deviceKey: [] }, { deviceKeyQuery: [] }];

export const callSchemas: Record<string, Json> = {
  CallFailed: {
    type: 'object',
    required: ['error', 'message', 'call'],
    properties: { error: { type: 'string', enum: ['E_TIMEOUT', 'E_DEVICE'] }, message: { type: 'string', description: 'For E_DEVICE, the device\'s own message' }, call: { type: 'string' } },
  },
  Call: {
    type: 'object',
    required: ['call', 'method', 'params', 'state', 'created', 'expires'],
    properties: {
      call: { type: 'string' },
      method: { type: 'string' },
      params: { description: 'Any JSON' },
      state: { type: 'string', enum: ['queued', 'sent', 'answered', 'expired'] },
      result: { description: 'The device\'s result, once answered without an error' },
      error: { type: 'string', description: 'The device\'s error message, once answered with one' },
      created: { type: 'integer' },
      expires: { type: 'integer' },
    },
  },
};

export function callPaths(): Record<string, Json> {
  return {
    '/devices/{id}/calls': {
      post: {
        operationId: 'callDevice',
        tags: ['account'],
        summary: 'Call a method of the device and wait for its answer (or queue a persistent call)',
        description:
          'An app calls: the owner\'s API token, or the device key with side=client. A live call waits up to `timeout` ms for the device\'s answer. ' +
          'A persistent call is stored and answered at once with 202; it is delivered when the device connects and expires after `timeout` ms.',
        security: appAuth,
        parameters: [p('id'), p('side'), p('sideHeader')],
        requestBody: {
          required: true,
          description: 'The call',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['method'],
                properties: {
                  method: { type: 'string', minLength: 1, maxLength: 64, description: 'The device method, named like a sensor' },
                  params: { description: 'Any JSON; null when absent' },
                  timeout: { type: 'integer', minimum: 100, description: 'ms: live calls 100..60000 (default 10000); persistent calls up to 7 days (default 1 hour)' },
                  persistent: { type: 'boolean', default: false },
                },
              },
            },
          },
        },
        responses: {
          '200': json({ type: 'object', required: ['call', 'state', 'result'], properties: { call: { type: 'string' }, state: { const: 'answered' }, result: { description: 'The device\'s result' } } }, 'The device answered'),
          '202': json({ type: 'object', required: ['call', 'state'], properties: { call: { type: 'string' }, state: { type: 'string', enum: ['queued', 'sent'] } } }, 'A persistent call, stored'),
          ...errors('400', '401', '403', '404', '429'),
          '409': error('The device is not connected (E_OFFLINE)'),
          '502': error('The device answered with an error (E_DEVICE): its message, and the call id', ref('CallFailed')),
          '504': error('The device did not answer in time (E_TIMEOUT)', ref('CallFailed')),
        },
      },
    },
    '/devices/{id}/calls/next': {
      get: {
        operationId: 'nextCall',
        tags: ['device'],
        summary: 'The device takes its next call (long-poll)',
        description: 'For a device over HTTP: its oldest queued persistent call, or a call made while it waits. Answer it with …/calls/{call}/reply.',
        security: deviceAuth,
        parameters: [p('id'), waitParam('a call')],
        responses: {
          '200': json({ type: 'object', required: ['call', 'method', 'params'], properties: { call: { type: 'string' }, method: { type: 'string' }, params: { description: 'Any JSON' } } }, 'A call'),
          '204': { description: 'No call within the wait' },
          ...errors('400', '401', '403', '404', '429'),
        },
      },
    },
    '/devices/{id}/calls/{call}': {
      get: {
        operationId: 'getCall',
        tags: ['account'],
        summary: 'A persistent call: its state and answer',
        security: appAuth,
        parameters: [p('id'), callIdParam, p('side'), p('sideHeader'), waitParam('the call to be answered or to expire')],
        responses: { '200': json(ref('Call'), 'The call'), ...errors('400', '401', '403', '404', '429') },
      },
    },
    '/devices/{id}/calls/{call}/reply': {
      post: {
        operationId: 'replyToCall',
        tags: ['device'],
        summary: 'The device answers a call: {"result":…} or {"error":"…"}',
        description: 'The first answer wins; an unknown, answered or expired call is 404.',
        security: deviceAuth,
        parameters: [p('id'), callIdParam],
        requestBody: {
          required: true,
          description: 'The answer',
          content: { 'application/json': { schema: { type: 'object', properties: { result: { description: 'Any JSON' }, error: { type: 'string', maxLength: 1024 } } } } },
        },
        responses: { '200': json({ type: 'object', required: ['ok'], properties: { ok: { const: true } } }, 'Answer taken'), ...errors('400', '401', '403', '404', '429') },
      },
    },
  };
}
