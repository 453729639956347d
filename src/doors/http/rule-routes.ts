/** Automation routes of the HTTP API: rules, alerts, the delivery log and notifications, for the owner's API token. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Hub } from '../../core/hub.js';
import type { CallerAuth } from './credentials.js';
import { check, deviceIdParam } from './schemas.js';

const ruleIdParam = z.object({ ruleId: z.string().regex(/^r_[a-z2-7]{1,32}$/, 'a rule id looks like r_k3j5m2n7p4q6r8s2') });
const alertIdParam = z.object({ alertId: z.coerce.number({ error: 'alert id must be a number' }).int().positive() });
const limitQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).optional() });

export function ruleRoutes(app: FastifyInstance, hub: Hub, auth: CallerAuth, jsonBody: (body: unknown) => unknown): void {
  const { rules } = hub;

  app.get('/devices/:id/rules', async (req) => {
    const { id } = check(deviceIdParam, req.params);
    const user = await auth.user(req);
    return { rules: await rules.list(user.id, id) };
  });

  app.post('/devices/:id/rules', async (req, reply) => {
    const { id } = check(deviceIdParam, req.params);
    const user = await auth.user(req);
    return reply.code(201).send(await rules.create(user.id, id, jsonBody(req.body)));
  });

  app.get('/rules/:ruleId', async (req) => {
    const { ruleId } = check(ruleIdParam, req.params);
    const user = await auth.user(req);
    return rules.get(user.id, ruleId);
  });

  app.patch('/rules/:ruleId', async (req) => {
    const { ruleId } = check(ruleIdParam, req.params);
    const user = await auth.user(req);
    return rules.update(user.id, ruleId, jsonBody(req.body));
  });

  app.delete('/rules/:ruleId', async (req, reply) => {
    const { ruleId } = check(ruleIdParam, req.params);
    const user = await auth.user(req);
    await rules.delete(user.id, ruleId);
    return reply.code(204).send();
  });

  app.post('/rules/:ruleId/test', async (req) => {
    const { ruleId } = check(ruleIdParam, req.params);
    const user = await auth.user(req);
    return rules.testFire(user.id, ruleId);
  });

  app.get('/devices/:id/alerts', async (req) => {
    const { id } = check(deviceIdParam, req.params);
    const { limit } = check(limitQuery, req.query);
    const user = await auth.user(req);
    return { alerts: await rules.alerts(user.id, id, limit) };
  });

  app.post('/alerts/:alertId/acknowledge', async (req, reply) => {
    const { alertId } = check(alertIdParam, req.params);
    const user = await auth.user(req);
    await rules.acknowledge(user.id, alertId);
    return reply.code(204).send();
  });

  app.get('/devices/:id/deliveries', async (req) => {
    const { id } = check(deviceIdParam, req.params);
    const { limit } = check(limitQuery, req.query);
    const user = await auth.user(req);
    return { deliveries: await rules.deliveries(user.id, id, limit) };
  });

  app.get('/notifications', async (req) => {
    const { limit } = check(limitQuery, req.query);
    const user = await auth.user(req);
    return { notifications: await rules.notifications(user.id, limit) };
  });
}
