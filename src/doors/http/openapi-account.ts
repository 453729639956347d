/** The account part of the OpenAPI document (see openapi.ts): devices, API tokens, sign-up and log-in. */
import { body, errors, json, p, ref, tokenAuth } from './openapi-kit.js';
import type { Json } from './openapi-kit.js';

const deviceInfo = {
  type: 'object',
  required: ['id', 'name', 'createdAt', 'lastSeen', 'online', 'clients'],
  properties: {
    id: { type: 'string', pattern: '^[A-Z0-9]{20}$' },
    name: { type: 'string' },
    createdAt: { type: 'integer' },
    lastSeen: { type: ['integer', 'null'] },
    online: { type: 'boolean', description: 'A device-side connection is open (any door, any node)' },
    clients: { type: 'integer', description: 'Open client-side connections' },
    shared: {
      type: 'object', required: ['role', 'owner'], description: 'Only on a device another account shared with this one',
      properties: { role: { type: 'string', enum: ['viewer', 'operator'] }, owner: { type: 'string', description: "The owner's email" } },
    },
  },
};
const tokenInfo = {
  type: 'object',
  required: ['id', 'name', 'createdAt', 'lastUsed'],
  properties: { id: { type: 'integer' }, name: { type: 'string' }, createdAt: { type: 'integer' }, lastUsed: { type: ['integer', 'null'] } },
};
const authResult = {
  type: 'object',
  required: ['user', 'token', 'tokenId'],
  properties: {
    user: { type: 'object', required: ['id', 'email', 'name'], properties: { id: { type: 'integer' }, email: { type: 'string' }, name: { type: 'string' } } },
    token: { type: 'string', pattern: '^iotc_[A-Za-z0-9]{32}$', description: 'A new personal API token: send it as "Authorization: Bearer TOKEN"' },
    tokenId: { type: 'integer' },
  },
};

export const accountSchemas: Record<string, Json> = {
  Device: deviceInfo,
  NewDevice: { ...deviceInfo, required: [...deviceInfo.required, 'key'], properties: { ...deviceInfo.properties, key: { type: 'string', pattern: '^[A-Z0-9]{15}$', description: 'Shown only in this answer' } } },
  TokenInfo: tokenInfo,
  NewToken: { ...tokenInfo, required: [...tokenInfo.required, 'token'], properties: { ...tokenInfo.properties, token: { type: 'string', pattern: '^iotc_[A-Za-z0-9]{32}$', description: 'Shown only in this answer' } } },
  NameBody: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 100 } } },
  AuthResult: authResult,
};

export function accountPaths(): Record<string, Json> {
  return {
    '/devices': {
      get: {
        operationId: 'listDevices',
        tags: ['account'],
        summary: 'The devices of the token\'s user',
        security: tokenAuth,
        responses: { '200': json({ type: 'object', required: ['devices'], properties: { devices: { type: 'array', items: ref('Device') } } }, 'Devices, oldest first'), ...errors(401, 429) },
      },
      post: {
        operationId: 'createDevice',
        tags: ['account'],
        summary: 'Create a device; its key is in this answer only',
        security: tokenAuth,
        requestBody: body(ref('NameBody'), 'The device\'s name'),
        responses: { '201': json(ref('NewDevice'), 'Created'), ...errors(400, 401, 403, 413, 429) },
      },
    },
    '/devices/{id}': {
      get: {
        operationId: 'getDevice',
        tags: ['account'],
        summary: 'One device',
        security: tokenAuth,
        parameters: [p('id')],
        responses: { '200': json(ref('Device'), 'The device'), ...errors(401, 404, 429) },
      },
      patch: {
        operationId: 'renameDevice',
        tags: ['account'],
        summary: 'Rename a device',
        security: tokenAuth,
        parameters: [p('id')],
        requestBody: body(ref('NameBody'), 'The new name'),
        responses: { '200': json(ref('Device'), 'The renamed device'), ...errors(400, 401, 404, 429) },
      },
      delete: {
        operationId: 'deleteDevice',
        tags: ['account'],
        summary: 'Delete a device and everything stored for it; its connections close on every door',
        security: tokenAuth,
        parameters: [p('id')],
        responses: { '204': { description: 'Deleted' }, ...errors(401, 404, 429) },
      },
    },
    '/devices/{id}/rotate': {
      post: {
        operationId: 'rotateDeviceKey',
        tags: ['account'],
        summary: 'Give the device a new key; connections with the old key close at once (WebSocket and MQTT)',
        security: tokenAuth,
        parameters: [p('id')],
        responses: { '200': json(ref('NewDevice'), 'The device with its new key'), ...errors(401, 404, 429) },
      },
    },
    '/tokens': {
      get: {
        operationId: 'listTokens',
        tags: ['account'],
        summary: 'The user\'s API tokens (never their text)',
        security: tokenAuth,
        responses: { '200': json({ type: 'object', required: ['tokens'], properties: { tokens: { type: 'array', items: ref('TokenInfo') } } }, 'Tokens'), ...errors(401, 429) },
      },
      post: {
        operationId: 'createToken',
        tags: ['account'],
        summary: 'Create a named API token; its text is in this answer only',
        security: tokenAuth,
        requestBody: body(ref('NameBody'), 'The token\'s name'),
        responses: { '201': json(ref('NewToken'), 'Created'), ...errors(400, 401, 403, 429) },
      },
    },
    '/tokens/{tokenId}': {
      delete: {
        operationId: 'revokeToken',
        tags: ['account'],
        summary: 'Revoke an API token',
        security: tokenAuth,
        parameters: [{ name: 'tokenId', in: 'path', required: true, schema: { type: 'integer' } }],
        responses: { '204': { description: 'Revoked' }, ...errors(400, 401, 404, 429) },
      },
    },
    '/auth/signup': {
      post: {
        operationId: 'signUp',
        tags: ['auth'],
        summary: 'Create an account; answers with a first API token',
        security: [],
        requestBody: body(
          { type: 'object', required: ['name', 'email', 'password'], properties: { name: { type: 'string' }, email: { type: 'string', format: 'email' }, password: { type: 'string', minLength: 8 }, tokenName: { type: 'string' } } },
          'The new account',
        ),
        responses: { '201': json(ref('AuthResult'), 'Created'), ...errors(400, 409, 429) },
      },
    },
    '/auth/login': {
      post: {
        operationId: 'logIn',
        tags: ['auth'],
        summary: 'Log in; answers with a new API token',
        security: [],
        requestBody: body(
          { type: 'object', required: ['email', 'password'], properties: { email: { type: 'string' }, password: { type: 'string' }, tokenName: { type: 'string' } } },
          'Credentials',
        ),
        responses: { '200': json(ref('AuthResult'), 'Logged in'), ...errors(400, 401, 403, 429) },
      },
    },
  };
}
