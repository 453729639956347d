/** The automation part of the OpenAPI document (see openapi.ts): rules, alerts, deliveries, notifications. */
import { errors, json, p, ref, tokenAuth } from './openapi-kit.js';
import type { Json } from './openapi-kit.js';

const ruleId = { name: 'ruleId', in: 'path', required: true, schema: { type: 'string', pattern: '^r_[a-z2-7]+$' } };
const limit = { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } };

const trigger = {
  oneOf: [
    { type: 'object', required: ['type', 'sensor', 'op', 'value'], properties: { type: { const: 'threshold' }, sensor: { type: 'string' }, op: { enum: ['>', '>=', '<', '<=', '==', '!='] }, value: { type: ['number', 'string', 'boolean'] }, forMs: { type: ['integer', 'string'], description: 'ms, or a duration like "10m"' } } },
    { type: 'object', required: ['type', 'sensor'], properties: { type: { const: 'changed' }, sensor: { type: 'string' } } },
    { type: 'object', required: ['type'], properties: { type: { enum: ['offline', 'online'] }, forMs: { type: ['integer', 'string'] } } },
    { type: 'object', required: ['type', 'cron'], properties: { type: { const: 'schedule' }, cron: { type: 'string', description: 'cron expression, e.g. "0 7 * * *"' }, tz: { type: 'string', description: 'IANA time zone; default the server\'s' } } },
  ],
};
const action = {
  oneOf: [
    { type: 'object', required: ['type', 'sensor', 'value'], properties: { type: { const: 'set' }, sensor: { type: 'string' }, value: {} } },
    { type: 'object', required: ['type', 'url'], properties: { type: { const: 'webhook' }, url: { type: 'string' }, method: { enum: ['POST', 'PUT'] }, preset: { enum: ['plain', 'ntfy', 'gotify'] }, token: { type: 'string' },
      body: { description: 'Plain webhooks only: the JSON body to send, whose strings may hold {{event}}, {{device}}, {{rule}}, {{name}}, {{sensor}}, {{value}}, {{time}} (a string that is only a placeholder takes the value as it is); at most 4096 characters. Without it, the event is sent.' } } },
    { type: 'object', required: ['type', 'to'], properties: { type: { const: 'email' }, to: { type: 'string', description: 'The account\'s own address' } } },
    { type: 'object', required: ['type'], properties: { type: { const: 'notify' } } },
  ],
};
const ruleInput = {
  type: 'object',
  required: ['trigger', 'actions'],
  properties: {
    name: { type: 'string', maxLength: 100 },
    enabled: { type: 'boolean', default: true },
    trigger,
    actions: { type: 'array', minItems: 1, maxItems: 5, items: action },
    cooldownMs: { type: ['integer', 'string'], description: 'After an alert clears, no new one for this long' },
  },
};
const rule = {
  type: 'object',
  required: ['id', 'deviceId', 'name', 'enabled', 'trigger', 'actions', 'cooldownMs', 'secret', 'createdAt', 'updatedAt', 'lastRunAt', 'lastError'],
  properties: {
    id: { type: 'string' }, deviceId: { type: 'string' }, userId: { type: 'integer' }, name: { type: 'string' }, enabled: { type: 'boolean' },
    trigger, actions: { type: 'array', items: action }, cooldownMs: { type: 'integer' },
    secret: { type: 'string', description: 'Key of the webhooks\' X-IOTC-Signature (HMAC-SHA256)' },
    createdAt: { type: 'integer' }, updatedAt: { type: 'integer' }, lastRunAt: { type: ['integer', 'null'] },
    lastError: { type: ['string', 'null'], description: 'What went wrong the last time the rule ran' },
  },
};
const alert = {
  type: 'object',
  required: ['id', 'ruleId', 'deviceId', 'state', 'raisedAt', 'clearedAt', 'acknowledgedAt'],
  properties: {
    id: { type: 'integer' }, ruleId: { type: 'string' }, deviceId: { type: 'string' }, userId: { type: 'integer' }, detail: {},
    state: { enum: ['active', 'acknowledged', 'cleared'] }, raisedAt: { type: 'integer' }, clearedAt: { type: ['integer', 'null'] }, acknowledgedAt: { type: ['integer', 'null'] },
  },
};
const delivery = {
  type: 'object',
  required: ['id', 'ruleId', 'kind', 'target', 'state', 'attempts', 'lastStatus', 'lastError', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'integer' }, ruleId: { type: 'string' }, deviceId: { type: 'string' }, userId: { type: 'integer' }, kind: { enum: ['webhook', 'email'] },
    target: { type: 'string' }, payload: {}, state: { enum: ['pending', 'delivered', 'failed'] }, attempts: { type: 'integer' }, nextAttemptAt: { type: 'integer' },
    lastStatus: { type: ['integer', 'null'], description: 'HTTP status, or 250 for an accepted email' }, lastError: { type: ['string', 'null'] },
    createdAt: { type: 'integer' }, updatedAt: { type: 'integer' },
  },
};
const notification = {
  type: 'object',
  required: ['id', 'deviceId', 'ruleId', 'text', 'time', 'read'],
  properties: { id: { type: 'integer' }, userId: { type: 'integer' }, deviceId: { type: 'string' }, ruleId: { type: ['string', 'null'] }, text: { type: 'string' }, time: { type: 'integer' }, read: { type: 'boolean' } },
};
const list = (key: string, item: string) => ({ type: 'object', required: [key], properties: { [key]: { type: 'array', items: ref(item) } } });

export function rulePaths(): Json {
  const body = { required: true, content: { 'application/json': { schema: ref('RuleInput') } } };
  return {
    '/devices/{id}/rules': {
      get: { operationId: 'listRules', tags: ['account'], summary: 'The device\'s automation rules', security: tokenAuth, parameters: [p('id')], responses: { '200': json(list('rules', 'Rule'), 'Rules'), ...errors(401, 404, 429) } },
      post: {
        operationId: 'createRule', tags: ['account'], summary: 'Add a rule: a trigger and up to five actions (see docs/automations.md)', security: tokenAuth, parameters: [p('id')], requestBody: body,
        responses: { '201': json(ref('Rule'), 'Created'), ...errors(400, 401, 403, 404, 429) },
      },
    },
    '/rules/{ruleId}': {
      get: { operationId: 'getRule', tags: ['account'], summary: 'One rule, with its last run', security: tokenAuth, parameters: [ruleId], responses: { '200': json(ref('Rule'), 'The rule'), ...errors(400, 401, 404, 429) } },
      patch: {
        operationId: 'updateRule', tags: ['account'], summary: 'Change a rule (e.g. {"enabled":false}); fields left out keep their value', security: tokenAuth, parameters: [ruleId],
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', properties: ruleInput.properties } } } },
        responses: { '200': json(ref('Rule'), 'The changed rule'), ...errors(400, 401, 404, 429) },
      },
      delete: { operationId: 'deleteRule', tags: ['account'], summary: 'Delete a rule with its alerts and delivery log', security: tokenAuth, parameters: [ruleId], responses: { '204': { description: 'Deleted' }, ...errors(400, 401, 404, 429) } },
    },
    '/rules/{ruleId}/test': {
      post: {
        operationId: 'testRule', tags: ['account'], summary: 'Fire the rule\'s actions now, as a test (the event carries "test": true)', security: tokenAuth, parameters: [ruleId],
        responses: { '200': json({ type: 'object', required: ['error'], properties: { error: { type: ['string', 'null'], description: 'What could not run; deliveries report later in the log' } } }, 'Fired'), ...errors(400, 401, 403, 404, 429) },
      },
    },
    '/devices/{id}/alerts': {
      get: { operationId: 'listAlerts', tags: ['account'], summary: 'The device\'s alerts, newest first', security: tokenAuth, parameters: [p('id'), limit], responses: { '200': json(list('alerts', 'Alert'), 'Alerts'), ...errors(400, 401, 404, 429) } },
    },
    '/alerts/{alertId}/acknowledge': {
      post: {
        operationId: 'acknowledgeAlert', tags: ['account'], summary: 'Mark an active alert as seen', security: tokenAuth,
        parameters: [{ name: 'alertId', in: 'path', required: true, schema: { type: 'integer' } }], responses: { '204': { description: 'Acknowledged' }, ...errors(400, 401, 404, 429) },
      },
    },
    '/devices/{id}/deliveries': {
      get: { operationId: 'listDeliveries', tags: ['account'], summary: 'The device\'s webhook and email delivery log, newest first', security: tokenAuth, parameters: [p('id'), limit], responses: { '200': json(list('deliveries', 'Delivery'), 'Deliveries'), ...errors(400, 401, 404, 429) } },
    },
    '/notifications': {
      get: { operationId: 'listNotifications', tags: ['account'], summary: 'The account\'s in-app notifications, newest first', security: tokenAuth, parameters: [limit], responses: { '200': json(list('notifications', 'Notification'), 'Notifications'), ...errors(400, 401, 429) } },
    },
  };
}

export const RULE_SCHEMAS = { RuleInput: ruleInput, Rule: rule, Alert: alert, Delivery: delivery, Notification: notification };
