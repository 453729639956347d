import { ERRORS } from '../../core/errors.js';
import { accountPaths, accountSchemas } from './openapi-account.js';
import { blobPaths } from './openapi-blobs.js';
import { callPaths, callSchemas } from './openapi-calls.js';
import type { Json } from './openapi-kit.js';
import { readingPaths, readingSchemas } from './openapi-readings.js';
import { RULE_SCHEMAS, rulePaths } from './openapi-rules.js';
import { sharingPaths, sharingSchemas } from './openapi-sharing.js';
import { dashboardPaths, dashboardSchemas } from './openapi-dashboards.js';

/**
 * The OpenAPI 3.1 description of /api/v1, written by hand next to the routes it describes (each area in its
 * openapi-*.ts). test/http-api.test.ts validates it and calls every operation in it, so the two cannot drift apart.
 */
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
      ...readingPaths(),
      ...callPaths(),
      ...blobPaths(),
      ...sharingPaths(),
      ...dashboardPaths(),
      ...accountPaths(),
      ...rulePaths(),
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
        ...readingSchemas,
        ...accountSchemas,
        ...callSchemas,
        ...RULE_SCHEMAS,
        ...sharingSchemas,
        ...dashboardSchemas,
      },
    },
  };
}
