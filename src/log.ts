import pino from 'pino';

export type Logger = pino.Logger;

/** Structured logs to stdout. Keys and passwords are redacted wherever they appear under these names. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: { paths: ['key', '*.key', 'password', '*.password', 'token', '*.token', 'req.headers.cookie', 'req.headers["x-device-key"]', 'req.headers.authorization'], censor: '[redacted]' },
    },
    destination,
  );
}
