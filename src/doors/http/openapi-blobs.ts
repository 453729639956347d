/** The binary chunks part of the OpenAPI document (see openapi.ts; the routes are in blobs.ts). */
import { deviceAuth, errors, json, p } from './openapi-kit.js';
import type { Json } from './openapi-kit.js';

/** Reads of binary chunks: also the web app's login cookie (an account the device is shared with reads too). */
const blobReadAuth = [...deviceAuth, { webSession: [] }];

export function blobPaths(): Record<string, Json> {
  return {
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
  };
}
