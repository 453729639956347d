import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { deviceName } from '../core/accounts.js';
import type { DeviceInfo } from '../core/accounts.js';
import { blobNoticeValue } from '../core/blobs.js';
import { readingsToCsv } from '../core/csv.js';
import { IotcError } from '../core/errors.js';
import { MAX_TIME, historyLimit, sensorName } from '../core/messages.js';
import { secretMatches } from '../core/secrets.js';
import type { StoredReading } from '../store/types.js';
import { serverAddress } from './address.js';
import { emptyForm } from './pages/auth.js';
import { confirmPage, deviceListJson, devicePage, devicesPage, keyPage, messagePage, newDevicePage } from './pages/devices.js';
import type { DeviceWithLatest, RenameState } from './pages/devices.js';
import { sharingSection } from './pages/sharing.js';
import { fieldErrors, str } from './page-kit.js';
import type { WebKit } from './page-kit.js';
import { parseCookies, serializeCookie } from './session.js';

/** Carries a new device key from the form's POST to the page that shows it, once. */
const NEW_KEY_COOKIE = 'iotc_newkey';
/** Carries a new public link's token to the device page that shows it, once. */
const NEW_LINK_COOKIE = 'iotc_newlink';

const csvQuery = z.object({
  sensor: sensorName.optional(),
  limit: historyLimit.optional(),
  from: z.string().optional(),
  to: z.string().optional(),
});

function parseTime(text: string | undefined, name: string): number | undefined {
  if (text === undefined || text === '') return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) throw new IotcError('E_VALIDATION', `${name}: "${text.slice(0, 40)}" is not a time: use ms since epoch or an ISO 8601 date`);
  if (ms < 0 || ms > MAX_TIME) throw new IotcError('E_VALIDATION', `${name}: ${text.slice(0, 40)} is out of range: a time must be between 0 and ${MAX_TIME} ms since epoch`);
  return ms;
}

function fileSlug(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'device';
}

/** The device pages: the list and its JSON, creating, the device page and its JSON and CSV, renaming, sharing, new keys, deleting. */
export function registerDevicePages(app: FastifyInstance, kit: WebKit): void {
  const { hub, log, trustProxy, needUser, guarded, ownDevice, sendPage, secure } = kit;
  const { accounts, relay, store } = hub;

  async function withLatest(devices: DeviceInfo[]): Promise<DeviceWithLatest[]> {
    // Most recently updated first: what moved is what the list shows.
    const byRecency = (a: StoredReading, b: StoredReading) => b.time - a.time || a.sensor.localeCompare(b.sensor);
    return Promise.all(devices.map(async (d) => ({ ...d, latest: (await relay.sensors(d.id)).sort(byRecency) })));
  }

  app.get('/devices', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    const q = req.query as Record<string, string>;
    const devices = await withLatest(await accounts.listDevices(signed.user.id));
    const notice =
      q.welcome !== undefined ? `Welcome, ${signed.user.name}! Create a device to get its connection URL.` : q.deleted !== undefined ? 'The device was deleted.' : undefined;
    return sendPage(reply, devicesPage(signed.viewer, devices, notice));
  });

  app.get('/devices.json', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    reply.header('Cache-Control', 'no-store');
    return { devices: deviceListJson(await withLatest(await accounts.listDevices(signed.user.id))) };
  });

  app.get('/devices/new', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    return sendPage(reply, newDevicePage(signed.viewer, emptyForm()));
  });

  app.post('/devices/new', async (req, reply) => {
    const signed = await guarded(req, reply);
    if (!signed) return reply;
    const name = str(req.body, 'name');
    const parsed = deviceName.safeParse(name);
    if (!parsed.success) {
      return sendPage(reply, newDevicePage(signed.viewer, { values: { name }, errors: { name: fieldErrors(parsed.error)._ ?? 'Enter a name.' } }), 400);
    }
    const device = await accounts.createDevice(signed.user.id, parsed.data);
    log.info({ userId: signed.user.id, deviceId: device.id }, 'device created');
    return showKeyOnce(req, reply, device.id, device.key, 'created');
  });

  /**
   * Post/redirect/get for a new key: the key rides to the next page in a cookie only that page receives, for two
   * minutes, read once. A reload then cannot create or rotate again, and the key never appears in a URL (server
   * logs, browser history) or in the server's memory.
   */
  function showKeyOnce(req: FastifyRequest, reply: FastifyReply, deviceId: string, key: string, mode: 'created' | 'rotated') {
    const path = `/devices/${deviceId}/key`;
    reply.header('Set-Cookie', serializeCookie(NEW_KEY_COOKIE, key, { secure: secure(req), maxAgeSeconds: 120, path }));
    return reply.redirect(`${path}?${mode}`, 303);
  }

  app.get<{ Params: { id: string } }>('/devices/:id/key', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply);
    if (!device) return reply;
    const path = `/devices/${device.id}/key`;
    const sent = parseCookies(req.headers.cookie)[NEW_KEY_COOKIE];
    let key: string | null = null;
    if (sent !== undefined) {
      reply.header('Set-Cookie', serializeCookie(NEW_KEY_COOKIE, '', { secure: secure(req), maxAgeSeconds: 0, path }));
      // Only the device's current key: never one a later rotation (say, in another tab) has replaced.
      const stored = await accounts.owned(signed.user.id, device.id);
      if (/^[A-Z0-9]{15}$/.test(sent) && secretMatches(sent, stored.keyHash)) key = sent;
    }
    const mode = (req.query as Record<string, string>).rotated !== undefined ? 'rotated' : 'created';
    return sendPage(reply, keyPage(signed.viewer, device, key, serverAddress(req.raw, trustProxy), mode));
  });

  app.get<{ Params: { id: string } }>('/devices/:id', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply);
    if (!device) return reply;
    const q = req.query as Record<string, string>;
    const shareSection = device.shared ? undefined : sharingSection(signed.viewer, device.id, { ...(await hub.sharing.sharesOf(signed.user.id, device.id)), links: await hub.sharing.deviceLinks(signed.user.id, device.id) });
    const link = device.shared ? undefined : parseCookies(req.headers.cookie)[NEW_LINK_COOKIE];
    if (link) reply.header('Set-Cookie', serializeCookie(NEW_LINK_COOKIE, '', { secure: secure(req), maxAgeSeconds: 0, path: `/devices/${device.id}` }));
    const notice = q.renamed !== undefined ? 'Renamed.' : q.shared !== undefined ? 'Sharing updated.' : link ? `Public link (shown once): ${serverAddress(req.raw, trustProxy).httpBase}/api/v1/public/${link}` : undefined;
    return sendPage(reply, devicePage(signed.viewer, device, await relay.sensors(device.id), serverAddress(req.raw, trustProxy), notice, undefined, shareSection));
  });

  app.get<{ Params: { id: string } }>('/devices/:id/status.json', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply, true);
    if (!device) return reply;
    reply.header('Cache-Control', 'no-store');
    return { id: device.id, name: device.name, online: device.online, lastSeen: device.lastSeen, clients: device.clients };
  });

  // Binary chunks for the device page: the newest of each sensor (their bytes come from the API, which reads with the login cookie).
  app.get<{ Params: { id: string } }>('/devices/:id/blobs.json', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply, true);
    if (!device) return reply;
    reply.header('Cache-Control', 'no-store');
    return { blobs: (await store.latestBlobs(device.id)).map((b) => ({ sensor: b.sensor, value: blobNoticeValue(b), time: b.time, write: b.side })) };
  });

  app.get<{ Params: { id: string } }>('/devices/:id/history.csv', async (req, reply) => {
    const signed = await needUser(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply, true);
    if (!device) return reply;
    const raw = Object.fromEntries(Object.entries(req.query as Record<string, string>).filter(([, v]) => v !== ''));
    const parsed = csvQuery.safeParse(raw);
    if (!parsed.success) throw new IotcError('E_VALIDATION', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const limit = parsed.data.limit ?? 10_000;
    const query = { limit, from: parseTime(parsed.data.from, 'from'), to: parseTime(parsed.data.to, 'to') };
    const sensors = parsed.data.sensor ? [parsed.data.sensor] : (await relay.sensors(device.id)).map((r) => r.sensor);
    let readings: StoredReading[] = (await Promise.all(sensors.map((s) => relay.history(device.id, s, query)))).flat();
    readings.sort((a, b) => a.seq - b.seq);
    if (readings.length > limit) readings = readings.slice(readings.length - limit);
    const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
    const filename = `${fileSlug(device.name)}-${parsed.data.sensor ? fileSlug(parsed.data.sensor) : 'all'}-${stamp}.csv`;
    return reply
      .header('Content-Type', 'text/csv; charset=utf-8')
      .header('Content-Disposition', `attachment; filename="${filename}"`)
      .header('Cache-Control', 'no-store')
      .send(readingsToCsv(readings));
  });

  app.post<{ Params: { id: string } }>('/devices/:id/rename', async (req, reply) => {
    const signed = await guarded(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply);
    if (!device) return reply;
    const name = str(req.body, 'name');
    const parsed = deviceName.safeParse(name);
    if (!parsed.success) {
      const rename: RenameState = { value: name, error: fieldErrors(parsed.error)._ ?? 'Enter a name.' };
      return sendPage(reply, devicePage(signed.viewer, device, await relay.sensors(device.id), serverAddress(req.raw, trustProxy), undefined, rename), 400);
    }
    await accounts.renameDevice(signed.user.id, device.id, parsed.data);
    return reply.redirect(`/devices/${device.id}?renamed`, 303);
  });

  // ---- sharing (owner only; errors such as a bad email come back as a message page) ----
  const sharingPost = (path: string, act: (userId: number, id: string, body: unknown, reply: FastifyReply) => Promise<void>) =>
    app.post<{ Params: { id: string; linkId?: string } }>(path, async (req, reply) => {
      const signed = await guarded(req, reply);
      if (!signed) return reply;
      try {
        await act(signed.user.id, req.params.id, req.params.linkId ?? req.body, reply);
      } catch (err) {
        if (!(err instanceof IotcError) || err.code === 'E_INTERNAL') throw err;
        return sendPage(reply, messagePage(signed.viewer, 'Sharing not changed', err.message, { href: `/devices/${req.params.id}`, label: 'Back to the device' }), err.status);
      }
      return reply.redirect(`/devices/${req.params.id}?shared`, 303);
    });
  sharingPost('/devices/:id/shares', async (userId, id, body) => void (await hub.sharing.share(userId, id, { email: str(body, 'email'), role: str(body, 'role') })));
  sharingPost('/devices/:id/shares/remove', (userId, id, body) => hub.sharing.unshare(userId, id, { email: str(body, 'email') }));
  sharingPost('/devices/:id/links', async (userId, id, _body, reply) => {
    const link = await hub.sharing.createDeviceLink(userId, id);
    // Shown once on the next page, like a new key: a short-lived cookie for that page only.
    reply.header('Set-Cookie', serializeCookie(NEW_LINK_COOKIE, link.token, { secure: secure(reply.request), maxAgeSeconds: 120, path: `/devices/${id}` }));
  });
  sharingPost('/devices/:id/links/:linkId/revoke', (userId, id, linkId) => hub.sharing.revokeDeviceLink(userId, id, Number(linkId)));

  for (const action of ['rotate', 'delete'] as const) {
    app.get<{ Params: { id: string } }>(`/devices/:id/${action}`, async (req, reply) => {
      const signed = await needUser(req, reply);
      if (!signed) return reply;
      const device = await ownDevice(signed, req.params.id, reply);
      if (!device) return reply;
      return sendPage(reply, confirmPage(signed.viewer, device, action));
    });
  }

  app.post<{ Params: { id: string } }>('/devices/:id/rotate', async (req, reply) => {
    const signed = await guarded(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply);
    if (!device) return reply;
    const rotated = await accounts.rotateKey(signed.user.id, device.id);
    log.info({ userId: signed.user.id, deviceId: device.id }, 'device key rotated');
    return showKeyOnce(req, reply, device.id, rotated.key, 'rotated');
  });

  app.post<{ Params: { id: string } }>('/devices/:id/delete', async (req, reply) => {
    const signed = await guarded(req, reply);
    if (!signed) return reply;
    const device = await ownDevice(signed, req.params.id, reply);
    if (!device) return reply;
    const typed = str(req.body, 'confirm');
    if (typed.trim() !== device.name) return sendPage(reply, confirmPage(signed.viewer, device, 'delete', `Type “${device.name}” to confirm.`, typed), 400);
    await accounts.deleteDevice(signed.user.id, device.id);
    log.info({ userId: signed.user.id, deviceId: device.id }, 'device deleted');
    return reply.redirect('/devices?deleted', 303);
  });
}
