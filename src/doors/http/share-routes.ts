import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Hub } from '../../core/hub.js';
import { readingView } from '../../core/reading-wire.js';
import { sensorsPage } from '../../core/replies.js';
import type { CallerAuth } from './credentials.js';
import { check, deviceIdParam } from './schemas.js';

const emailParam = deviceIdParam.extend({ email: z.string().min(1).max(254) });
const linkParam = deviceIdParam.extend({ linkId: z.coerce.number({ error: 'link id must be a number' }).int('link id must be a whole number').positive('link id must be positive') });
const tokenParam = z.object({ token: z.string().min(1).max(64) });

/**
 * Sharing over HTTP (see docs/sharing.md): the owner's API token shares a device with another account, lists,
 * changes and withdraws shares and invitations, and makes or revokes public links; anyone with a public link's
 * token reads the device's latest values.
 */
export function shareRoutes(app: FastifyInstance, hub: Hub, auth: CallerAuth, jsonBody: (body: unknown) => unknown, maxReplyBytes: number): void {
  const { sharing } = hub;

  app.get('/devices/:id/shares', async (req) => {
    const { id } = check(deviceIdParam, req.params);
    const user = await auth.user(req);
    const { shares, invitations } = await sharing.sharesOf(user.id, id);
    return {
      shares: shares.map((s) => ({ email: s.email, role: s.role, createdAt: s.createdAt })),
      invitations: invitations.map((i) => ({ email: i.email, role: i.role, createdAt: i.createdAt, expiresAt: i.expiresAt, expired: i.expired })),
    };
  });

  app.post('/devices/:id/shares', async (req) => {
    const { id } = check(deviceIdParam, req.params);
    const user = await auth.user(req);
    return sharing.share(user.id, id, jsonBody(req.body));
  });

  app.delete('/devices/:id/shares/:email', async (req, reply) => {
    const { id, email } = check(emailParam, req.params);
    const user = await auth.user(req);
    await sharing.unshare(user.id, id, { email });
    return reply.code(204).send();
  });

  app.get('/devices/:id/links', async (req) => {
    const { id } = check(deviceIdParam, req.params);
    const user = await auth.user(req);
    return { links: await sharing.deviceLinks(user.id, id) };
  });

  app.post('/devices/:id/links', async (req, reply) => {
    const { id } = check(deviceIdParam, req.params);
    const user = await auth.user(req);
    return reply.code(201).send(await sharing.createDeviceLink(user.id, id));
  });

  app.delete('/devices/:id/links/:linkId', async (req, reply) => {
    const { id, linkId } = check(linkParam, req.params);
    const user = await auth.user(req);
    await sharing.revokeDeviceLink(user.id, id, linkId);
    return reply.code(204).send();
  });

  // Read-only, for anyone holding the link's token: the device's name and the latest value of each sensor.
  app.get('/public/:token', async (req) => {
    const { token } = check(tokenParam, req.params);
    const device = await sharing.linkedDevice(token);
    const page = sensorsPage(await hub.relay.sensors(device.id, undefined, { maxBytes: maxReplyBytes }), undefined, maxReplyBytes);
    return { device: { id: device.id, name: device.name }, sensors: page.readings.map(readingView), ...(page.next ? { more: true } : {}) };
  });
}
