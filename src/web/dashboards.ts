import type { FastifyInstance, FastifyReply } from 'fastify';
import { dashboardView, MAX_DASHBOARDS_PER_USER } from '../core/dashboards.js';
import { IotcError } from '../core/errors.js';
import type { PageKit } from './page-kit.js';
import { dashboardListPage, dashboardPage } from './pages/dashboards.js';
import type { DashboardDevice } from './pages/dashboards.js';

/**
 * The dashboards pages: the list (create, delete), one dashboard (its widgets live, the editor), and the JSON
 * the page saves with (PUT, CSRF header). Every device check goes through hub.dashboards.access.
 */
export function registerDashboardPages(app: FastifyInstance, kit: PageKit): void {
  const { hub, log } = kit;
  const { dashboards, accounts, relay } = hub;

  /** The user's devices with their sensor names, for the editor's pickers and the widgets' titles. */
  async function devicesOf(userId: number): Promise<DashboardDevice[]> {
    const list = await accounts.listDevices(userId);
    return Promise.all(
      list.map(async (d) => ({ id: d.id, name: d.name, online: d.online, lastSeen: d.lastSeen, sensors: (await relay.sensors(d.id)).map((r) => r.sensor) })),
    );
  }

  function notFound(reply: FastifyReply, viewer: Parameters<typeof dashboardListPage>[0]) {
    return kit.sendPage(reply, dashboardListPage(viewer, [], 'There is no such dashboard in your account. It may have been deleted.'), 404);
  }

  app.get('/dashboards', async (req, reply) => {
    const signed = await kit.needUser(req, reply);
    if (!signed) return reply;
    const q = req.query as Record<string, string>;
    return kit.sendPage(reply, dashboardListPage(signed.viewer, await dashboards.list(signed.user.id), q.deleted !== undefined ? 'Dashboard deleted.' : undefined));
  });

  app.post('/dashboards', async (req, reply) => {
    const signed = await kit.guarded(req, reply);
    if (!signed) return reply;
    const name = kit.field(req.body, 'name').trim() || 'My dashboard';
    try {
      const d = await dashboards.create(signed.user.id, { name, widgets: [] });
      log.info({ userId: signed.user.id, dashboardId: d.id }, 'dashboard created');
      return reply.redirect(`/dashboards/${d.id}?edit`, 303);
    } catch (err) {
      if (!(err instanceof IotcError && (err.code === 'E_VALIDATION' || err.code === 'E_LIMIT'))) throw err;
      const list = await dashboards.list(signed.user.id);
      const message = err.code === 'E_LIMIT' ? `You have ${MAX_DASHBOARDS_PER_USER} dashboards, the most an account keeps: delete one first.` : err.message;
      return kit.sendPage(reply, dashboardListPage(signed.viewer, list, undefined, message), err.code === 'E_LIMIT' ? 403 : 400);
    }
  });

  app.get<{ Params: { id: string } }>('/dashboards/:id', async (req, reply) => {
    const signed = await kit.needUser(req, reply);
    if (!signed) return reply;
    let d;
    try {
      d = await dashboards.get(signed.user.id, req.params.id);
    } catch (err) {
      if (err instanceof IotcError && err.code === 'E_NOT_FOUND') return notFound(reply, signed.viewer);
      throw err;
    }
    const devices = await devicesOf(signed.user.id);
    const writable = Object.fromEntries(await Promise.all(devices.map(async (dev) => [dev.id, await dashboards.access.writable(signed.user.id, dev.id)] as const)));
    return kit.sendPage(reply, dashboardPage(signed.viewer, dashboardView(d), devices.map((dev) => ({ ...dev, writable: writable[dev.id] }))));
  });

  app.get<{ Params: { id: string } }>('/dashboards/:id/data.json', async (req, reply) => {
    const signed = await kit.needUser(req, reply);
    if (!signed) return reply;
    reply.header('Cache-Control', 'no-store');
    return dashboardView(await dashboards.get(signed.user.id, req.params.id));
  });

  // The page saves with JSON and the session's CSRF token in X-CSRF-Token; the answer is JSON either way.
  app.put<{ Params: { id: string } }>('/dashboards/:id/data.json', async (req, reply) => {
    const signed = await kit.guarded(req, reply);
    if (!signed) return reply;
    reply.header('Cache-Control', 'no-store');
    return dashboardView(await dashboards.update(signed.user.id, req.params.id, req.body));
  });

  app.post<{ Params: { id: string } }>('/dashboards/:id/delete', async (req, reply) => {
    const signed = await kit.guarded(req, reply);
    if (!signed) return reply;
    try {
      await dashboards.delete(signed.user.id, req.params.id);
    } catch (err) {
      if (err instanceof IotcError && err.code === 'E_NOT_FOUND') return notFound(reply, signed.viewer);
      throw err;
    }
    log.info({ userId: signed.user.id, dashboardId: req.params.id }, 'dashboard deleted');
    return reply.redirect('/dashboards?deleted', 303);
  });
}
