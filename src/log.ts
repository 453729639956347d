import { createRequire } from 'node:module';
import pino from 'pino';
import type PinoPretty from 'pino-pretty';

export type Logger = pino.Logger;

/** Query parameters that carry a secret: the one-line update's key, a token, a password, a CSRF token. */
const SECRET_QUERY = /([?&](?:key|token|access_token|password|_csrf)=)[^&#\s"]*/gi;

/** URLs (one or several, comma-separated) with the passwords in them hidden, for messages and `iotc config`. */
export function hideUrlPasswords(url: string): string {
  // Up to the authority's last `@`, as URL parsers read it: a password written with an `@` in it is hidden whole.
  return url.replace(/\/\/([^:@/?#,]+):[^/?#,]*@/g, '//$1:***@');
}

/** Words standing for a secret in documented URLs; a real key, token or password is never one of them. */
const PLACEHOLDERS = new Set(['KEY', 'TOKEN', 'PASSWORD']);

/** A URL with the values of its secret query parameters replaced. */
export function redactUrlSecrets(url: string): string {
  // The placeholders of a documented URL (the start-up banner's `key=KEY`) are no secret, and no real one.
  return url.replace(SECRET_QUERY, (all, name: string) => (PLACEHOLDERS.has(all.slice(name.length)) ? all : `${name}[redacted]`));
}

/**
 * Errors without the raw bytes some carry: node's HTTP parser puts the whole request (its key in the query,
 * its cookie and Authorization headers) in `rawPacket`, which fastify logs at trace on a malformed request.
 */
function serializeError(err: unknown): unknown {
  const out = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  const scrub = (o: Record<string, unknown>, depth: number) => {
    delete o.rawPacket;
    for (const [k, v] of Object.entries(o)) {
      if (k === 'raw' && typeof v === 'object') delete o[k];
      else if (typeof v === 'string' && k !== 'stack') o[k] = redactUrlSecrets(v);
      else if (v && typeof v === 'object' && depth < 3) scrub(v as Record<string, unknown>, depth + 1);
    }
  };
  if (out && typeof out === 'object') scrub(out, 0);
  return out;
}

const SECRET_FIELDS = ['key', 'password', 'token', 'cookie', 'authorization', 'csrf', '_csrf', 'csrfToken', 'passwordHash', 'keyHash', 'tokenHash', 'rawPacket'];
const SECRET_HEADERS = ['cookie', 'authorization', '["x-device-key"]', '["set-cookie"]'];

/** How log lines look: one JSON object each (for collectors), or readable lines (for a person at a terminal). */
export type LogFormat = 'json' | 'pretty';

/** "auto" is pretty when the output is a terminal, JSON otherwise (a file, a pipe, journald, docker logs). */
export function resolveLogFormat(setting: string, output: { isTTY?: boolean } = process.stdout): LogFormat {
  if (setting === 'pretty' || setting === 'json') return setting;
  return output.isTTY ? 'pretty' : 'json';
}

/** Readable lines on stdout: local time, level, [component], message, then the other fields. */
export function prettyDestination(colorize?: boolean): pino.DestinationStream {
  // Required on first use: a hub logging JSON (a service, a container) never loads the formatter.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pretty({
    // Left unset, colours follow the terminal (and NO_COLOR / FORCE_COLOR).
    ...(colorize === undefined ? {} : { colorize }),
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname,component',
    messageFormat: '{if component}[{component}] {end}{msg}',
    singleLine: true,
    sync: true,
  });
}

/**
 * Structured logs to stdout (JSON unless `format` is pretty). Secrets are redacted wherever they appear under
 * these names, at every level down to trace: keys, passwords, tokens, cookies and CSRF tokens as fields (top level
 * or one down), request and response headers, secret query parameters in any `url`, and the raw request bytes
 * some errors carry.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, format: LogFormat = 'json'): Logger {
  const paths = [
    ...SECRET_FIELDS.flatMap((f) => [f, `*.${f}`]),
    ...SECRET_HEADERS.flatMap((h) => [`req.headers.${h}`.replace('.[', '['), `headers.${h}`.replace('.[', '['), `*.headers.${h}`.replace('.[', '[')]),
  ];
  return pino(
    {
      level,
      base: undefined,
      serializers: { err: serializeError, error: serializeError, url: (u: unknown) => (typeof u === 'string' ? redactUrlSecrets(u) : u) },
      redact: { paths, censor: '[redacted]' },
    },
    destination ?? (format === 'pretty' ? prettyDestination() : undefined),
  );
}
