/** Real receivers for automation tests: an HTTP webhook receiver that checks signatures, and an SMTP server. */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import type { ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { waitFor } from './helpers.js';

export interface Hook {
  body: any;
  raw: string;
  headers: http.IncomingHttpHeaders;
  /** Whether X-IOTC-Signature matched HMAC-SHA256(secret, timestamp + "." + body) for the secret given to check(). */
  signed(secret: string): boolean;
}

export interface Receiver {
  url: string;
  hooks: Hook[];
  /** Status codes to answer with, in turn; 200 once they run out. */
  answers: number[];
  /** Paths of hooks received, e.g. "/a". */
  waitForHooks(n: number, timeoutMs?: number): Promise<Hook[]>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const hooks: Hook[] = [];
  const answers: number[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      let body: unknown = raw;
      try {
        body = JSON.parse(raw);
      } catch {
        // ntfy's body is plain text
      }
      const status = answers.shift() ?? 200;
      if (status === 200) {
        hooks.push({
          body, raw, headers: req.headers,
          signed(secret: string) {
            const expected = 'sha256=' + crypto.createHmac('sha256', secret).update(`${req.headers['x-iotc-timestamp']}.${raw}`).digest('hex');
            const got = String(req.headers['x-iotc-signature'] ?? '');
            return got.length === expected.length && crypto.timingSafeEqual(Buffer.from(got), Buffer.from(expected));
          },
        });
      }
      res.writeHead(status).end(status === 200 ? 'ok' : 'try later');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    hooks,
    answers,
    waitForHooks: async (n, timeoutMs = 5000) => (await waitFor(() => (hooks.length >= n ? hooks.slice(0, n) : null), timeoutMs, `${n} webhook(s)`))!,
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

export interface Smtp {
  url: string;
  mails: ParsedMail[];
  close(): Promise<void>;
}

export async function startSmtp(): Promise<Smtp> {
  const mails: ParsedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      simpleParser(stream).then((mail) => {
        mails.push(mail);
        callback();
      }, callback);
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.server.address() as AddressInfo).port;
  return { url: `smtp://127.0.0.1:${port}`, mails, close: () => new Promise((r) => server.close(() => r())) };
}
