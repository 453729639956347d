/** The readings part of the OpenAPI document (see openapi.ts): writing, the latest values, sensors, history. */
import { MAX_BATCH } from '../../core/messages.js';
import { body, deviceAuth, errors, json, p, ref } from './openapi-kit.js';
import type { Json } from './openapi-kit.js';

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
const written = {
  type: 'object',
  required: ['ok', 'count', 'time'],
  properties: { ok: { const: true }, count: { type: 'integer', minimum: 1 }, time: { type: 'integer', description: 'Server time of the write, ms since epoch' } },
};

export const readingSchemas: Record<string, Json> = { Reading: reading, SensorWrite: sensorWrite, Written: written };

export function readingPaths(): Record<string, Json> {
  return {
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
  };
}
