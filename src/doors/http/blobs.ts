import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { blobUrl } from '../../core/blobs.js';
import { IotcError } from '../../core/errors.js';
import type { Hub } from '../../core/hub.js';
import { sideName } from '../../core/messages.js';
import type { BlobInfo, StoredBlob } from '../../store/types.js';
import type { CallerAuth } from './credentials.js';
import { check, deviceIdParam, sensorParams } from './schemas.js';

export interface BlobRouteOptions {
  hub: Hub;
  auth: CallerAuth;
}

const latestQuery = z.object({ write: sideName.optional() });
const listQuery = z.object({ limit: z.coerce.number().int().min(1, 'limit must be at least 1').max(1000, 'limit must be at most 1000').optional() });
const seqParams = sensorParams.extend({ seq: z.coerce.number({ error: 'seq must be a number' }).int().positive('seq must be positive') });

/** Types a browser shows as a picture without running anything (SVG can hold scripts, so it is not one). */
export const INLINE_IMAGE = /^image\/(jpeg|png|gif|webp|bmp)$/i;

const infoView = (b: BlobInfo) => ({ seq: b.seq, type: b.type, size: b.size, time: b.time, write: b.side, url: `${blobUrl(b.deviceId, b.sensor)}/${b.seq}` });

/** The chunk's bytes with its own content type; `"seq"` is its ETag (a chunk never changes once stored). */
function sendBlob(req: FastifyRequest, reply: FastifyReply, blob: StoredBlob, immutable: boolean): FastifyReply {
  const etag = `"${blob.seq}"`;
  reply
    .header('etag', etag)
    .header('cache-control', immutable ? 'private, max-age=31536000, immutable' : 'private, no-cache')
    .header('last-modified', new Date(blob.time).toUTCString())
    .header('x-blob-seq', String(blob.seq))
    .header('x-blob-time', String(blob.time))
    .header('x-blob-write', blob.side)
    .header('access-control-expose-headers', 'ETag, X-Blob-Seq, X-Blob-Time, X-Blob-Write')
    // Bytes a device sent must never run as a page of this site (a device could send text/html with a script):
    // no sniffing, a sandbox without scripts, and anything but a plain image is a download.
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', "default-src 'none'; sandbox");
  if (!INLINE_IMAGE.test(blob.type)) reply.header('content-disposition', `attachment; filename="${blob.sensor.replace(/[^A-Za-z0-9_.-]/g, '_')}-${blob.seq}"`);
  const match = req.headers['if-none-match'];
  if (typeof match === 'string' && match.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) return reply.code(304).send();
  return reply.type(blob.type).send(blob.data);
}

/**
 * Binary chunks over HTTP: `PUT /devices/ID/blobs/SENSOR` with the bytes as the body (any content type, kept),
 * `GET` the latest, one by seq, or a listing. Registered in its own scope: here every body is raw bytes up to
 * --max-blob, while the rest of the API keeps reading JSON up to --max-frame.
 */
export async function blobRoutes(app: FastifyInstance, opts: BlobRouteOptions): Promise<void> {
  const { hub, auth } = opts;
  const blobs = hub.blobs;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: blobs.maxBytes }, (_req, body, done) => done(null, body));

  app.put('/devices/:id/blobs/:sensor', {
    bodyLimit: blobs.maxBytes,
    // Refused from its Content-Length before a byte of the body is read, with the setting to change named.
    preParsing: async (req) => {
      const length = Number(req.headers['content-length']);
      if (Number.isFinite(length)) blobs.checkSize(length);
    },
  }, async (req, reply) => {
    const { id, sensor } = check(sensorParams, req.params);
    const caller = await auth.caller(req, id);
    const body = req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) throw new IotcError('E_VALIDATION', "The body is empty: send the chunk's bytes");
    const info = await blobs.put(caller.device.id, caller.side, sensor, String(req.headers['content-type'] ?? ''), body);
    return reply.code(201).send({ ok: true, sensor, ...infoView(info) });
  });

  // Reads take the web app's login cookie too (auth.reader): a dashboard's image tile is an <img> of these URLs.
  app.get('/devices/:id/blobs', async (req) => {
    const { id } = check(deviceIdParam, req.params);
    const caller = await auth.reader(req, id);
    const rows = await hub.store.latestBlobs(caller.device.id);
    return { blobs: rows.map((b) => ({ sensor: b.sensor, ...infoView(b) })) };
  });

  app.get('/devices/:id/blobs/:sensor', async (req, reply) => {
    const { id, sensor } = check(sensorParams, req.params);
    const caller = await auth.reader(req, id);
    const { write } = check(latestQuery, req.query);
    const blob = await hub.store.latestBlob(caller.device.id, sensor, write);
    if (!blob) throw new IotcError('E_NOT_FOUND', `No chunk stored for sensor "${sensor}"`);
    return sendBlob(req, reply, blob, false);
  });

  app.get('/devices/:id/blobs/:sensor/history', async (req) => {
    const { id, sensor } = check(sensorParams, req.params);
    const caller = await auth.reader(req, id);
    const { limit } = check(listQuery, req.query);
    return { sensor, blobs: (await hub.store.listBlobs(caller.device.id, sensor, limit ?? 50)).map(infoView) };
  });

  app.get('/devices/:id/blobs/:sensor/:seq', async (req, reply) => {
    const { id, sensor, seq } = check(seqParams, req.params);
    const caller = await auth.reader(req, id);
    const blob = await hub.store.getBlob(caller.device.id, sensor, seq);
    if (!blob) throw new IotcError('E_NOT_FOUND', `No chunk ${seq} of sensor "${sensor}" (it may have been pruned: see --blob-budget)`);
    return sendBlob(req, reply, blob, true);
  });
}
