import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { IotcError, toIotcError } from '../../core/errors.js';
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
    return new IotcError(err.statusCode === 413 ? 'E_TOO_LARGE' : 'E_BAD_MESSAGE', err.message);
  }
  return null;
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
    const err = raw instanceof IotcError ? raw : (fromFastify(raw, bodyLimit) ?? toIotcError(raw));
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
