/** The OpenAPI description of the dashboard routes (src/doors/http/dashboard-routes.ts), merged into openapi.ts's document. */
import { GRID_COLUMNS, MAX_DASHBOARDS_PER_USER, MAX_WIDGETS, WIDGET_TYPES } from '../../core/dashboards.js';
import { body, json, ref, tokenAuth } from './openapi-kit.js';
import type { Json } from './openapi-kit.js';

const ERRORS: Record<string, string> = {
  '400': 'Malformed request or invalid field, or a widget naming a device not in the account (E_BAD_MESSAGE, E_VALIDATION)',
  '401': 'Missing or wrong API token (E_AUTH)',
  '403': `The account already keeps ${MAX_DASHBOARDS_PER_USER} dashboards (E_LIMIT)`,
  '404': 'No such dashboard (E_NOT_FOUND); another user\'s dashboard is "not found" too',
  '429': 'Rate limit reached (E_RATE_LIMITED)',
};
const errors = (...statuses: string[]) => Object.fromEntries(statuses.map((s) => [s, json(ref('Error'), ERRORS[s])]));
const idParam = { name: 'dashboardId', in: 'path', required: true, schema: { type: 'integer', minimum: 1 }, description: 'The dashboard\'s number' };
const cell = { type: 'integer', minimum: 0 };

export const dashboardSchemas: Record<string, Json> = {
  Widget: {
    type: 'object',
    required: ['id', 'type', 'x', 'y', 'w', 'h', 'device'],
    description: `One tile on a ${GRID_COLUMNS}-column grid (x + w ≤ ${GRID_COLUMNS}); see docs/dashboards.md for what each type uses`,
    properties: {
      id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$' },
      type: { type: 'string', enum: [...WIDGET_TYPES] },
      x: { ...cell, maximum: GRID_COLUMNS - 1 },
      y: cell,
      w: { type: 'integer', minimum: 1, maximum: GRID_COLUMNS },
      h: { type: 'integer', minimum: 1, maximum: 12 },
      device: { type: 'string', pattern: '^[A-Z0-9]{20}$' },
      sensor: { type: 'string', maxLength: 64 },
      sensors: { type: 'array', items: { type: 'string', maxLength: 64 }, minItems: 1, maxItems: 8, description: 'A chart\'s sensors' },
      title: { type: 'string', maxLength: 60 },
      min: { type: 'number' },
      max: { type: 'number' },
      step: { type: 'number' },
      units: { type: 'string', maxLength: 16 },
      payload: { description: 'What a button sends: any JSON' },
      range: {
        description: "A chart's range, drawn as aggregated buckets: a preset relative to now, or fixed times in ms (from < to). Without it, the latest readings",
        oneOf: [
          { type: 'string', enum: ['hour', 'day', 'week', 'month', 'year'] },
          { type: 'object', additionalProperties: false, required: ['from', 'to'], properties: { from: { type: 'integer', minimum: 0 }, to: { type: 'integer', minimum: 0 } } },
        ],
      },
      url: { type: 'string', maxLength: 512, description: 'An image tile\'s picture, when not a sensor\'s binary chunks: a path on this hub' },
    },
    additionalProperties: false,
  },
  Dashboard: {
    type: 'object',
    required: ['id', 'name', 'widgets', 'created', 'updated'],
    properties: {
      id: { type: 'integer' },
      name: { type: 'string' },
      widgets: { type: 'array', items: ref('Widget') },
      created: { type: 'integer' },
      updated: { type: 'integer' },
    },
  },
  NewDashboard: {
    type: 'object',
    required: ['name'],
    properties: { name: { type: 'string', minLength: 1, maxLength: 60 }, widgets: { type: 'array', items: ref('Widget'), maxItems: MAX_WIDGETS } },
    additionalProperties: false,
  },
  DashboardChange: {
    type: 'object',
    properties: { name: { type: 'string', minLength: 1, maxLength: 60 }, widgets: { type: 'array', items: ref('Widget'), maxItems: MAX_WIDGETS, description: 'Replaces every widget' } },
    additionalProperties: false,
  },
};

export function dashboardPaths(): Record<string, Json> {
  return {
    '/dashboards': {
      get: {
        operationId: 'listDashboards',
        tags: ['account'],
        summary: 'The token\'s user\'s dashboards, oldest first',
        security: tokenAuth,
        responses: { '200': json({ type: 'object', required: ['dashboards'], properties: { dashboards: { type: 'array', items: ref('Dashboard') } } }, 'Dashboards'), ...errors('401', '429') },
      },
      post: {
        operationId: 'createDashboard',
        tags: ['account'],
        summary: 'Create a dashboard (every widget\'s device must be in the account)',
        security: tokenAuth,
        requestBody: body(ref('NewDashboard'), 'Its name and widgets'),
        responses: { '201': json(ref('Dashboard'), 'Created'), ...errors('400', '401', '403', '429') },
      },
    },
    '/dashboards/{dashboardId}': {
      get: {
        operationId: 'getDashboard',
        tags: ['account'],
        summary: 'One dashboard',
        security: tokenAuth,
        parameters: [idParam],
        responses: { '200': json(ref('Dashboard'), 'The dashboard'), ...errors('401', '404', '429') },
      },
      put: {
        operationId: 'updateDashboard',
        tags: ['account'],
        summary: 'Rename a dashboard and/or replace its widgets',
        security: tokenAuth,
        parameters: [idParam],
        requestBody: body(ref('DashboardChange'), 'The new name and/or widgets'),
        responses: { '200': json(ref('Dashboard'), 'The changed dashboard'), ...errors('400', '401', '404', '429') },
      },
      delete: {
        operationId: 'deleteDashboard',
        tags: ['account'],
        summary: 'Delete a dashboard',
        security: tokenAuth,
        parameters: [idParam],
        responses: { '204': { description: 'Deleted' }, ...errors('401', '404', '429') },
      },
    },
  };
}
