import pino from 'pino';
import pretty from 'pino-pretty';

export type Logger = pino.Logger;

/** How log lines look: one JSON object each (for collectors), or readable lines (for a person at a terminal). */
export type LogFormat = 'json' | 'pretty';

/** "auto" is pretty when the output is a terminal, JSON otherwise (a file, a pipe, journald, docker logs). */
export function resolveLogFormat(setting: string, output: { isTTY?: boolean } = process.stdout): LogFormat {
  if (setting === 'pretty' || setting === 'json') return setting;
  return output.isTTY ? 'pretty' : 'json';
}

/** Readable lines on stdout: local time, level, [component], message, then the other fields. */
export function prettyDestination(colorize?: boolean): pino.DestinationStream {
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
 * Structured logs to stdout (JSON unless `format` is pretty). Keys and passwords are redacted wherever they
 * appear under these names.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, format: LogFormat = 'json'): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: { paths: ['key', '*.key', 'password', '*.password', 'token', '*.token', 'req.headers.cookie', 'req.headers["x-device-key"]', 'req.headers.authorization'], censor: '[redacted]' },
    },
    destination ?? (format === 'pretty' ? prettyDestination() : undefined),
  );
}
