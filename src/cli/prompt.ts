import type { ReadStream } from 'node:tty';
import type { CliIo } from './io.js';
import { UsageError } from './io.js';

/** Ctrl-C at a prompt: the command stops, exit 130 as shells expect. */
export class Interrupted extends Error {
  override name = 'Interrupted';
}

const isTerminal = (stream: unknown): stream is ReadStream => Boolean((stream as ReadStream).isTTY && typeof (stream as ReadStream).setRawMode === 'function');

/** Reads one line typed at the terminal without showing it. */
function readHidden(io: CliIo, prompt: string): Promise<string> {
  const input = io.stdin as ReadStream;
  io.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let typed = '';
    const finish = (err: Error | null) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      io.stderr.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(null);
        if (ch === '\u0003') return finish(new Interrupted('interrupted'));
        if (ch === '\u0004' && typed === '') return finish(new UsageError('no password given'));
        if (ch === '\u007f' || ch === '\b') typed = [...typed].slice(0, -1).join('');
        else if (ch >= ' ') typed += ch;
      }
    };
    input.setRawMode(true);
    input.resume();
    input.on('data', onData);
  });
}

/** The first line of a stdin that is not a terminal (a pipe, a file), as `echo "$PW" | iotc user add …` gives it. */
async function readFirstLine(io: CliIo): Promise<string | null> {
  let text = '';
  for await (const chunk of io.stdin) {
    text += chunk.toString();
    const end = text.indexOf('\n');
    if (end >= 0) return text.slice(0, end).replace(/\r$/, '');
  }
  return text === '' ? null : text.replace(/\r$/, '');
}

/**
 * A new password without putting it on the command line (where shell history and `ps` would keep it):
 * asked twice, hidden, at a terminal; otherwise read from stdin's first line.
 */
export async function askNewPassword(io: CliIo, forWhom: string): Promise<string> {
  if (isTerminal(io.stdin)) {
    const first = await readHidden(io, `Password for ${forWhom} (8 characters or more; not shown): `);
    const again = await readHidden(io, 'Same password again: ');
    if (first !== again) throw new UsageError('the two passwords differ; nothing was created');
    return first;
  }
  const line = await readFirstLine(io);
  if (line === null || line === '') {
    throw new UsageError('give the password: type it when asked (in a terminal), pipe it on stdin, or use --password P');
  }
  return line;
}
