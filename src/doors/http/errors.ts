import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { IotcError, toIotcError } from '../../core/errors.js';
import type { ErrorCode } from '../../core/errors.js';
import type { Logger } from '../../log.js';

/** Fastify's own failures, named by the catalogue: the client sees the same codes as for ours. */
function fromFastify(err: FastifyError, bodyLimit: number): IotcError | null {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new IotcError('E_TOO_LARGE', `The body is larger than the limit of ${bodyLimit} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new IotcError('E_BAD_MESSAGE', 'Send the body as JSON (Content-Type: application/json)');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new IotcError('E_BAD_MESSAGE', 'The body is empty; send JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new IotcError('E_BAD_MESSAGE', 'Content-Length does not match the body');
  }
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return new IotcError('E_BAD_MESSAGE', 'The body is not valid JSON');
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    const byStatus: Record<number, ErrorCode> = { 401: 'E_AUTH', 403: 'E_FORBIDDEN', 404: 'E_NOT_FOUND', 413: 'E_TOO_LARGE', 429: 'E_RATE_LIMITED' };
    return new IotcError(byStatus[err.statusCode] ?? 'E_BAD_MESSAGE', err.message);
  }
  return null;
}

/** Any error thrown while serving HTTP, as a catalogue error: ours as they are, fastify's by their meaning. */
export function httpError(raw: unknown, bodyLimit: number): IotcError {
  if (raw instanceof IotcError) return raw;
  return fromFastify(raw as FastifyError, bodyLimit) ?? toIotcError(raw);
}

export function sendError(reply: FastifyReply, err: IotcError): FastifyReply {
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  return reply.code(err.status).type('application/json; charset=utf-8').send({ error: err.code, message: err.message });
}

/**
 * Every error of the API leaves as `{"error": CODE, "message": "…"}` with the catalogue's status.
 * The log names the route pattern, never the URL: the one-line update carries its key in the query.
 */
export function installErrorHandling(app: FastifyInstance, log: Logger, bodyLimit: number): void {
  app.setErrorHandler((raw: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const err = httpError(raw, bodyLimit);
    const route = `${req.method} ${req.routeOptions.url ?? '?'}`;
    if (err.status >= 500) log.error({ err: raw, route }, 'api request failed');
    else if (err.status === 401 || err.status === 403) log.info({ route, code: err.code, remote: req.ip }, 'api request refused');
    return sendError(reply, err);
  });
  app.setNotFoundHandler((req, reply) => {
    const path = (req.url.split('?')[0] ?? '').slice(0, 200);
    return sendError(reply, new IotcError('E_NOT_FOUND', `No API route ${req.method} ${path}; see /api/openapi.json`));
  });
}
