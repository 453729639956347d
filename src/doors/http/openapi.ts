import { ERRORS } from '../../core/errors.js';
import { MAX_BATCH } from '../../core/messages.js';
import { callPaths, callSchemas } from './openapi-calls.js';
import { RULE_SCHEMAS, rulePaths } from './openapi-rules.js';
import { sharingPaths, sharingSchemas } from './openapi-sharing.js';
import { dashboardPaths, dashboardSchemas } from './openapi-dashboards.js';

/**
 * The OpenAPI 3.1 description of /api/v1, written by hand next to the routes it describes.
 * test/http-api.test.ts validates it and calls every operation in it, so the two cannot drift apart.
 */
type Json = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json, description: string) => ({ description, content: { 'application/json': { schema } } });

const ERROR_TEXT: Record<number, string> = {
  400: 'Malformed request or invalid field (E_BAD_MESSAGE, E_VALIDATION)',
  401: 'Missing or wrong device key or API token (E_AUTH)',
  403: 'A key used for another device than the one named (E_FORBIDDEN), or a limit of the hub reached: devices or API tokens per account, rules, open calls (E_LIMIT, the message names the setting)',
  404: 'No such device, sensor, token or route (E_NOT_FOUND); another user\'s device is "not found" too',
  409: 'Already exists (E_CONFLICT)',
  413: 'Body larger than the limit (E_TOO_LARGE)',
  429: 'Rate limit reached (E_RATE_LIMITED); wait Retry-After seconds',
  503: 'The store is unavailable or the server is shutting down (E_UNAVAILABLE, E_SHUTTING_DOWN)',
};

function errors(...statuses: number[]): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const s of statuses) {
    const r: Json = json(ref('Error'), ERROR_TEXT[s]);
    if (s === 429 || s === 503) r.headers = { 'Retry-After': { description: 'Seconds to wait before trying again', schema: { type: 'integer', minimum: 0 } } };
    out[String(s)] = r;
  }
  return out;
}

const deviceAuth = [{ deviceKey: [] }, { deviceKeyQuery: [] }, { apiToken: [] }];
const tokenAuth = [{ apiToken: [] }];
/** Reads of binary chunks: also the web app's login cookie (an account the device is shared with reads too). */
const blobReadAuth = [...deviceAuth, { webSession: [] }];
const p = (name: string) => ({ $ref: `#/components/parameters/${name}` });
const body = (schema: Json, description: string) => ({ required: true, description, content: { 'application/json': { schema } } });

const reading = {
  type: 'object',
  required: ['sensor', 'value', 'time', 'write'],
  properties: {
    sensor: { type: 'string', minLength: 1, maxLength: 64 },
    value: { description: 'Any JSON value, as written' },
    time: { type: 'integer', description: 'ms since epoch, stamped by the server' },
    write: { type: 'string', enum: ['device', 'client'], description: 'The side that wrote it' },
  },
};
const sensorWrite = {
  type: 'object',
  required: ['sensor', 'value'],
  properties: { sensor: { type: 'string', minLength: 1, maxLength: 64 }, value: { description: 'Any JSON value: number, string, boolean, object, array or null' } },
};
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
const written = {
  type: 'object',
  required: ['ok', 'count', 'time'],
  properties: { ok: { const: true }, count: { type: 'integer', minimum: 1 }, time: { type: 'integer', description: 'Server time of the write, ms since epoch' } },
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

export function openApiDocument(): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'IOTcommunicate HTTP API',
      version: '1.0.0',
      description:
        'Devices write readings and poll what their apps wrote; apps and scripts manage devices and read history. ' +
        'Everything written here reaches the WebSocket and MQTT connections of the same device, and back. ' +
        'Errors are always {"error": CODE, "message": "…"}.',
    },
    servers: [{ url: '/api/v1' }],
    tags: [
      { name: 'device', description: 'Device side: authenticated by the device id and key' },
      { name: 'account', description: 'Account side: authenticated by a personal API token' },
      { name: 'auth', description: 'Sign-up and log-in, each returning a new API token' },
    ],
    paths: {
      '/update': {
        get: {
          operationId: 'updateOneLine',
          tags: ['device'],
          summary: 'Write readings in one line: /update?device=ID&key=KEY&temp=21.5&hum=40',
          description: 'Every query parameter other than device, key and side is a sensor. Numbers become numbers, true/false booleans, anything else a string.',
          security: [{ deviceKeyQuery: [] }, { deviceKey: [] }, { apiToken: [] }],
          parameters: [
            { name: 'device', in: 'query', required: true, schema: { type: 'string' }, description: 'Device id' },
            p('side'),
            { name: 'sensors', in: 'query', required: true, style: 'form', explode: true, schema: { type: 'object', additionalProperties: { type: 'string' } }, description: 'One parameter per sensor: temp=21.5&hum=40' },
          ],
          responses: { '200': json(ref('Written'), 'Stored and delivered'), ...errors(400, 401, 429, 503) },
        },
      },
      '/devices/{id}/readings': {
        post: {
          operationId: 'writeReadings',
          tags: ['device', 'account'],
          summary: 'Write one reading or a batch',
          description: 'With the device key the writer is the device (or the client with side=client / X-Device-Side: client); with the owner\'s API token it is the client. Acknowledged once stored.',
          security: deviceAuth,
          parameters: [p('id'), p('side'), p('sideHeader')],
          requestBody: body({ oneOf: [ref('SensorWrite'), { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: ref('SensorWrite') }] }, 'A reading or an array of them'),
          responses: { '201': json(ref('Written'), 'Stored and delivered'), ...errors(400, 401, 403, 404, 413, 429, 503) },
        },
      },
      '/devices/{id}/latest': {
        get: {
          operationId: 'latestFromOtherSide',
          tags: ['device', 'account'],
          summary: 'Latest value of each sensor the other side wrote',
          description: 'For the device key: what the apps wrote (a sleepy device polls its commands here). For an API token or side=client: what the device wrote.',
          security: deviceAuth,
          parameters: [
            p('id'), p('side'), p('sideHeader'),
            { name: 'sensor', in: 'query', schema: { type: 'string' }, description: 'Only this sensor' },
            { name: 'since', in: 'query', schema: { type: 'string' }, description: 'Only values written after this time (ms since epoch or ISO 8601)' },
            { name: 'after', in: 'query', schema: { type: 'string', minLength: 1, maxLength: 64 }, description: 'Only sensors named after this one: to continue a cut answer' },
          ],
          responses: {
            '200': json(
              {
                type: 'object', required: ['readings', 'values'],
                properties: {
                  readings: { type: 'array', items: ref('Reading') }, values: { type: 'object', additionalProperties: true, description: 'sensor → value, for the smallest parsers' },
                  more: { type: 'boolean', description: 'The answer was cut at the reply bound (max-reply); ask again with next' },
                  next: { type: 'object', properties: { after: { type: 'string' } } },
                },
              },
              'Latest values',
            ),
            ...errors(400, 401, 403, 404, 429),
          },
        },
      },
      '/devices/{id}/sensors': {
        get: {
          operationId: 'listSensors',
          tags: ['device', 'account'],
          summary: 'Latest value of every sensor, written by either side',
          security: deviceAuth,
          parameters: [p('id'), p('write'), { name: 'after', in: 'query', schema: { type: 'string', minLength: 1, maxLength: 64 }, description: 'Only sensors named after this one: to continue a cut answer' }],
          responses: {
            '200': json({
              type: 'object', required: ['sensors'],
              properties: {
                sensors: { type: 'array', items: ref('Reading') },
                more: { type: 'boolean', description: 'The answer was cut at the reply bound (max-reply); ask again with next' },
                next: { type: 'object', properties: { after: { type: 'string' } } },
              },
            }, 'Sensors'),
            ...errors(400, 401, 403, 404, 429),
          },
        },
      },
      '/devices/{id}/sensors/{sensor}/history': {
        get: {
          operationId: 'sensorHistory',
          tags: ['device', 'account'],
          summary: 'History of one sensor, oldest first, as JSON or CSV',
          description: 'CSV with format=csv or "Accept: text/csv"; columns time (ISO 8601), time_ms, sensor, value, write. ' +
            'An answer larger than the reply bound is cut: JSON says "more": true and "next", CSV the headers X-More: true and X-Next (query parameters to use).',
          security: deviceAuth,
          parameters: [
            p('id'),
            { name: 'sensor', in: 'path', required: true, schema: { type: 'string', minLength: 1, maxLength: 64 } },
            { name: 'from', in: 'query', schema: { type: 'string' }, description: 'ms since epoch or ISO 8601' },
            { name: 'to', in: 'query', schema: { type: 'string' }, description: 'ms since epoch or ISO 8601' },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 10000, default: 100 }, description: 'With only a limit: the most recent readings' },
            p('write'),
            { name: 'format', in: 'query', schema: { type: 'string', enum: ['json', 'csv'] } },
            {
              name: 'bucket', in: 'query', schema: { type: 'string', pattern: '^([1-9][0-9]{0,5}[smhd]|auto)$' },
              description: 'Aggregate: one row per non-empty bucket (1m, 5m, 1h, 1d…, or auto for about 500) between from and to (default: the last day), ' +
                'with min, max, avg, count and last of the numeric values (numbers sent as strings count). At most 2000 buckets.',
            },
          ],
          responses: {
            '200': {
              description: 'Readings',
              content: {
                'application/json': {
                  schema: {
                    type: 'object', required: ['sensor'],
                    description: 'readings, or with bucket: from, to, bucket (ms) and buckets',
                    properties: {
                      sensor: { type: 'string' }, readings: { type: 'array', items: ref('Reading') },
                      from: { type: 'integer' }, to: { type: 'integer' }, bucket: { type: 'integer', description: 'Bucket size in ms' },
                      buckets: {
                        type: 'array',
                        items: {
                          type: 'object', required: ['time', 'min', 'max', 'avg', 'count', 'last'],
                          properties: { time: { type: 'integer', description: 'Bucket start' }, min: { type: 'number' }, max: { type: 'number' }, avg: { type: 'number' }, count: { type: 'integer' }, last: { type: 'number' } },
                        },
                      },
                      more: { type: 'boolean', description: 'The answer was cut at the reply bound (max-reply): ask again with the fields of next in place of your own' },
                      next: { type: 'object', properties: { from: { type: 'integer' }, to: { type: 'integer' }, limit: { type: 'integer' } } },
                    },
                  },
                },
                'text/csv': { schema: { type: 'string' } },
              },
            },
            ...errors(400, 401, 403, 404, 429),
          },
        },
      },
      ...callPaths(),
      '/devices/{id}/blobs/{sensor}': {
        put: {
          operationId: 'putBlob',
          tags: ['device', 'account'],
          summary: 'Store a binary chunk (camera frame, file) and relay it byte-exact to the other side',
          description: 'The body is the bytes (at most --max-blob, default 256 KiB); its Content-Type is kept. Oldest chunks beyond the device budget (--blob-budget) are dropped.',
          security: deviceAuth,
          parameters: [p('id'), { name: 'sensor', in: 'path', required: true, schema: { type: 'string', minLength: 1, maxLength: 64 } }],
          requestBody: { required: true, content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
          responses: {
            '201': json({ type: 'object', properties: { ok: { type: 'boolean' }, sensor: { type: 'string' }, seq: { type: 'integer' }, type: { type: 'string' }, size: { type: 'integer' }, time: { type: 'integer' }, write: { type: 'string' }, url: { type: 'string' } } }, 'Stored'),
            ...errors(400, 401, 403, 404, 413, 429),
          },
        },
        get: {
          operationId: 'getBlob',
          tags: ['device', 'account'],
          summary: "The newest chunk's bytes, with its content type; ETag \"seq\" (If-None-Match answers 304)",
          security: blobReadAuth,
          parameters: [p('id'), { name: 'sensor', in: 'path', required: true, schema: { type: 'string', minLength: 1, maxLength: 64 } }, p('write')],
          responses: { '200': { description: 'The bytes', content: { '*/*': { schema: { type: 'string', format: 'binary' } } } }, '304': { description: 'Not modified' }, ...errors(400, 401, 403, 404, 429) },
        },
      },
      '/devices/{id}/blobs/{sensor}/history': {
        get: {
          operationId: 'blobHistory',
          tags: ['device', 'account'],
          summary: 'Recent chunks of a sensor, newest first, without bytes',
          security: blobReadAuth,
          parameters: [p('id'), { name: 'sensor', in: 'path', required: true, schema: { type: 'string', minLength: 1, maxLength: 64 } }, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } }],
          responses: { '200': json({ type: 'object', properties: { sensor: { type: 'string' }, blobs: { type: 'array', items: { type: 'object' } } } }, 'Chunks'), ...errors(400, 401, 403, 404, 429) },
        },
      },
      '/devices/{id}/blobs/{sensor}/{seq}': {
        get: {
          operationId: 'getBlobBySeq',
          tags: ['device', 'account'],
          summary: "One chunk's bytes by its seq (404 once pruned)",
          security: blobReadAuth,
          parameters: [p('id'), { name: 'sensor', in: 'path', required: true, schema: { type: 'string', minLength: 1, maxLength: 64 } }, { name: 'seq', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } }],
          responses: { '200': { description: 'The bytes', content: { '*/*': { schema: { type: 'string', format: 'binary' } } } }, ...errors(400, 401, 403, 404, 429) },
        },
      },
      '/devices/{id}/blobs': {
        get: {
          operationId: 'listBlobs',
          tags: ['device', 'account'],
          summary: 'The newest chunk of each sensor that has any, without bytes',
          security: blobReadAuth,
          parameters: [p('id')],
          responses: { '200': json({ type: 'object', properties: { blobs: { type: 'array', items: { type: 'object' } } } }, 'Chunks'), ...errors(400, 401, 403, 404, 429) },
        },
      },
      ...sharingPaths(),
      ...dashboardPaths(),
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
      ...rulePaths(errors),
    },
    components: {
      securitySchemes: {
        deviceKey: { type: 'apiKey', in: 'header', name: 'X-Device-Key', description: 'The device key; the device id is in the path (or the device query parameter)' },
        deviceKeyQuery: { type: 'apiKey', in: 'query', name: 'key', description: 'The device key as a query parameter, for devices that cannot set headers' },
        apiToken: { type: 'http', scheme: 'bearer', description: 'A personal API token (iotc_…), created in the web app, with `iotc token add`, or by /auth' },
        webSession: { type: 'apiKey', in: 'cookie', name: 'iotc_session', description: "The web app's login cookie: taken by the reads of binary chunks only, so the app's pages show frames by their URL" },
      },
      parameters: {
        id: { name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'Device id (20 letters and digits)' },
        side: { name: 'side', in: 'query', schema: { type: 'string', enum: ['device', 'client'], default: 'device' }, description: 'With a device key: act as the client side (an app holding the key)' },
        sideHeader: { name: 'X-Device-Side', in: 'header', schema: { type: 'string', enum: ['device', 'client'] }, description: 'Same as the side query parameter' },
        write: { name: 'write', in: 'query', schema: { type: 'string', enum: ['device', 'client'] }, description: 'Only readings written by this side' },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error', 'message'],
          properties: { error: { type: 'string', enum: Object.keys(ERRORS) }, message: { type: 'string' } },
        },
        Reading: reading,
        SensorWrite: sensorWrite,
        Written: written,
        Device: deviceInfo,
        NewDevice: { ...deviceInfo, required: [...deviceInfo.required, 'key'], properties: { ...deviceInfo.properties, key: { type: 'string', pattern: '^[A-Z0-9]{15}$', description: 'Shown only in this answer' } } },
        TokenInfo: tokenInfo,
        NewToken: { ...tokenInfo, required: [...tokenInfo.required, 'token'], properties: { ...tokenInfo.properties, token: { type: 'string', pattern: '^iotc_[A-Za-z0-9]{32}$', description: 'Shown only in this answer' } } },
        NameBody: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 100 } } },
        AuthResult: authResult,
        ...callSchemas,
        ...RULE_SCHEMAS,
        ...sharingSchemas,
        ...dashboardSchemas,
      },
    },
  };
}
