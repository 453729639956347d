import type { FastifyInstance } from 'fastify';
import { dashboardView } from '../../core/dashboards.js';
import type { Hub } from '../../core/hub.js';
import type { CallerAuth } from './credentials.js';

/** Dashboards over the API (the owner's API token): list, create, read, change, delete. See docs/dashboards.md. */
export function dashboardRoutes(app: FastifyInstance, hub: Hub, auth: CallerAuth, jsonBody: (body: unknown) => unknown): void {
  const { dashboards } = hub;
  const idOf = (req: { params: unknown }) => (req.params as { dashboardId: string }).dashboardId;

  app.get('/dashboards', async (req) => {
    const user = await auth.user(req);
    return { dashboards: (await dashboards.list(user.id)).map(dashboardView) };
  });

  app.post('/dashboards', async (req, reply) => {
    const user = await auth.user(req);
    return reply.code(201).send(dashboardView(await dashboards.create(user.id, jsonBody(req.body))));
  });

  app.get('/dashboards/:dashboardId', async (req) => {
    const user = await auth.user(req);
    return dashboardView(await dashboards.get(user.id, idOf(req)));
  });

  app.put('/dashboards/:dashboardId', async (req) => {
    const user = await auth.user(req);
    return dashboardView(await dashboards.update(user.id, idOf(req), jsonBody(req.body)));
  });

  app.delete('/dashboards/:dashboardId', async (req, reply) => {
    const user = await auth.user(req);
    await dashboards.delete(user.id, idOf(req));
    return reply.code(204).send();
  });
}
