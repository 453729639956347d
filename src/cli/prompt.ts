import type { ReadStream } from 'node:tty';
import type { CliIo } from './io.js';
import { UsageError } from './io.js';

/** Ctrl-C at a prompt: the command stops, exit 130 as shells expect. */
export class Interrupted extends Error {
  override name = 'Interrupted';
}

const isTerminal = (stream: unknown): stream is ReadStream => Boolean((stream as ReadStream).isTTY && typeof (stream as ReadStream).setRawMode === 'function');

/**
 * Lines typed at the terminal, not shown: raw mode turns the echo off. Keys typed ahead of a prompt (both
 * passwords at once) are kept for the next one, not lost with the rest of their chunk.
 */
class HiddenInput {
  private pending = '';
  private waiting: ((line: string | Error) => void) | null = null;
  private readonly onData = (chunk: Buffer) => {
    for (const ch of chunk.toString('utf8')) {
      if (ch === '\u0003') this.deliver(new Interrupted('interrupted'));
      else if (ch === '\u0004' && this.pending === '') this.deliver(new UsageError('no password given'));
      else if (ch === '\r' || ch === '\n') this.deliver(this.pending);
      else if (ch === '\u007f' || ch === '\b') this.pending = [...this.pending].slice(0, -1).join('');
      else if (ch >= ' ') this.pending += ch;
    }
  };
  private readonly lines: (string | Error)[] = [];

  constructor(private readonly io: CliIo, private readonly input: ReadStream) {
    input.setRawMode(true);
    input.resume();
    input.on('data', this.onData);
  }

  private deliver(line: string | Error): void {
    if (typeof line === 'string') this.pending = '';
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w(line);
    } else this.lines.push(line);
  }

  async ask(prompt: string): Promise<string> {
    this.io.stderr.write(prompt);
    const line = this.lines.shift() ?? (await new Promise<string | Error>((resolve) => (this.waiting = resolve)));
    this.io.stderr.write('\n');
    if (line instanceof Error) throw line;
    return line;
  }

  close(): void {
    this.input.off('data', this.onData);
    this.input.setRawMode(false);
    this.input.pause();
  }
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
    const input = new HiddenInput(io, io.stdin);
    try {
      const first = await input.ask(`Password for ${forWhom} (8 characters or more; not shown): `);
      const again = await input.ask('Same password again: ');
      if (first !== again) throw new UsageError('the two passwords differ; nothing was created');
      return first;
    } finally {
      input.close();
    }
  }
  const line = await readFirstLine(io);
  if (line === null || line === '') {
    throw new UsageError('give the password: type it when asked (in a terminal), pipe it on stdin, or use --password P');
  }
  return line;
}
