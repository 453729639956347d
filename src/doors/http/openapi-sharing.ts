/** The OpenAPI description of the sharing routes (src/doors/http/share-routes.ts), merged into openapi.ts's document. */
import { body, json, p, ref, tokenAuth } from './openapi-kit.js';
import type { Json } from './openapi-kit.js';

const ERRORS: Record<string, string> = {
  '400': 'Invalid field (E_VALIDATION)',
  '401': 'Missing or wrong API token (E_AUTH)',
  '403': 'A shared account asked to manage a device only its owner manages (E_FORBIDDEN), or the device already has the most people (shares and invitations, 100) or public links (20) a hub allows (E_LIMIT)',
  '404': 'No such device, share or link (E_NOT_FOUND); another user\'s device is "not found" too',
  '429': 'Rate limit reached (E_RATE_LIMITED)',
};
const errors = (...statuses: string[]) => Object.fromEntries(statuses.map((s) => [s, json(ref('Error'), ERRORS[s])]));
const role = { type: 'string', enum: ['viewer', 'operator'], description: 'viewer: reads values, history, charts; operator: also writes values and calls the device' };
const entry = { type: 'object', required: ['email', 'role', 'createdAt'], properties: { email: { type: 'string' }, role, createdAt: { type: 'integer' } } };
const invitation = {
  ...entry,
  required: [...entry.required, 'expiresAt', 'expired'],
  properties: { ...entry.properties, expiresAt: { type: ['integer', 'null'], description: 'When it stops being accepted at sign-up (IOTC_INVITE_TTL); null = never' }, expired: { type: 'boolean', description: 'Past expiresAt: gives no access; share again to renew it' } },
};
const link = { type: 'object', required: ['id', 'scope', 'target', 'createdAt'], properties: { id: { type: 'integer' }, scope: { type: 'string', description: '"device"' }, target: { type: 'string' }, createdAt: { type: 'integer' } } };
const linkParam = { name: 'linkId', in: 'path', required: true, schema: { type: 'integer' } };

export const sharingSchemas: Record<string, Json> = {
  PublicLink: link,
  NewPublicLink: { ...link, required: [...link.required, 'token'], properties: { ...link.properties, token: { type: 'string', pattern: '^iotp_[A-Za-z0-9]{32}$', description: 'Shown only in this answer; open it at /api/v1/public/TOKEN' } } },
};

export function sharingPaths(): Record<string, Json> {
  return {
    '/devices/{id}/shares': {
      get: {
        operationId: 'listShares', tags: ['account'], summary: 'Who the device is shared with, and the invitations waiting for sign-up (owner only)', security: tokenAuth,
        parameters: [p('id')],
        responses: {
          '200': json({ type: 'object', required: ['shares', 'invitations'], properties: { shares: { type: 'array', items: entry }, invitations: { type: 'array', items: invitation } } }, 'Shares and invitations'),
          ...errors('401', '403', '404', '429'),
        },
      },
      post: {
        operationId: 'shareDevice', tags: ['account'], summary: 'Share the device with an account by email, change its role, or invite an email without an account (owner only)',
        description: 'An email with an account is shared at once ("shared"); an email without one is invited ("invited") and the share starts when it signs up. ' +
          'A role change applies to the account\'s open connections at once.',
        security: tokenAuth, parameters: [p('id')],
        requestBody: body({ type: 'object', required: ['email', 'role'], properties: { email: { type: 'string' }, role } }, 'Who and which role'),
        responses: {
          '200': json({ type: 'object', required: ['state', 'email', 'role'], properties: { state: { type: 'string', enum: ['shared', 'invited'] }, email: { type: 'string' }, role } }, 'Shared or invited'),
          ...errors('400', '401', '403', '404', '429'),
        },
      },
    },
    '/devices/{id}/shares/{email}': {
      delete: {
        operationId: 'unshareDevice', tags: ['account'], summary: 'Stop sharing the device with the email (or withdraw its invitation); its open connections close at once', security: tokenAuth,
        parameters: [p('id'), { name: 'email', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '204': { description: 'No longer shared' }, ...errors('401', '403', '404', '429') },
      },
    },
    '/devices/{id}/links': {
      get: {
        operationId: 'listPublicLinks', tags: ['account'], summary: 'The device\'s public links (never their tokens)', security: tokenAuth, parameters: [p('id')],
        responses: { '200': json({ type: 'object', required: ['links'], properties: { links: { type: 'array', items: ref('PublicLink') } } }, 'Links'), ...errors('401', '403', '404', '429') },
      },
      post: {
        operationId: 'createPublicLink', tags: ['account'], summary: 'A read-only public link to the device\'s values (owner only)', security: tokenAuth, parameters: [p('id')],
        responses: { '201': json(ref('NewPublicLink'), 'The link, with its token shown once'), ...errors('401', '403', '404', '429') },
      },
    },
    '/devices/{id}/links/{linkId}': {
      delete: {
        operationId: 'revokePublicLink', tags: ['account'], summary: 'Revoke a public link: it stops working at once', security: tokenAuth, parameters: [p('id'), linkParam],
        responses: { '204': { description: 'Revoked' }, ...errors('400', '401', '403', '404', '429') },
      },
    },
    '/public/{token}': {
      get: {
        operationId: 'publicDevice', tags: ['public'], summary: 'What a public device link shows: the device\'s name and latest values (read-only, no credentials)', security: [],
        parameters: [{ name: 'token', in: 'path', required: true, schema: { type: 'string' }, description: 'The link\'s token (iotp_…)' }],
        responses: {
          '200': json({
            type: 'object', required: ['device', 'sensors'],
            properties: {
              device: { type: 'object', required: ['id', 'name'], properties: { id: { type: 'string' }, name: { type: 'string' } } },
              sensors: { type: 'array', items: ref('Reading') },
              more: { type: 'boolean', description: 'More sensors than fit in one reply' },
            },
          }, 'The device\'s values'),
          ...errors('404', '429'),
        },
      },
    },
  };
}
