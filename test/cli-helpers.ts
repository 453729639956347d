/** The iotc command line in-process, as tests beside a running hub use it (on the hub's data dir, as on a real machine). */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before } from 'node:test';
import { run } from '../src/cli/main.js';
import type { Config } from '../src/config.js';
import { startTestServer } from './helpers.js';
import type { TestServer } from './helpers.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command in-process with its own stdin (`input`, then end), stdout, stderr and environment; logs silent. */
export async function iotc(argv: string[], env: NodeJS.ProcessEnv = {}, input = ''): Promise<CliResult> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  stdin.end(input);
  const code = await run(argv, { stdin, stdout, stderr, env: { IOTC_LOG_LEVEL: 'silent', ...env } });
  return { code, stdout: out, stderr: err };
}

/** Runs a command that must succeed (its stderr is the failure's message); returns its stdout. */
export async function iotcOk(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await iotc(argv, env);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** `iotc user add` with a password long enough. */
export async function cliUser(env: NodeJS.ProcessEnv, email: string, name: string): Promise<void> {
  await iotcOk(['user', 'add', '--email', email, '--name', name, '--password', 'long enough pw'], env);
}

/** `iotc device add --json`: the new device's id and key. */
export async function cliDevice(env: NodeJS.ProcessEnv, email: string, name: string): Promise<{ id: string; key: string }> {
  return JSON.parse(await iotcOk(['device', 'add', '--email', email, '--name', name, '--json'], env));
}

/**
 * Registers the hooks of a hub started before the calling file's (or describe's) tests and stopped after them;
 * `env` points the CLI at its data dir, beside it as on a real machine (plus `extraEnv`), filled in place so it
 * may be taken out of the returned object at once. A file's own top-level `before` awaits `ready()` first: Node 20
 * runs a file's top-level hooks side by side.
 */
export function cliHub(overrides: Partial<Config> = {}, extraEnv: NodeJS.ProcessEnv = {}): { readonly server: TestServer; readonly env: NodeJS.ProcessEnv; ready(): Promise<void> } {
  let server: TestServer | null = null;
  let starting: Promise<void> | null = null;
  const env: NodeJS.ProcessEnv = {};
  const ready = () =>
    (starting ??= (async () => {
      server = await startTestServer(overrides);
      Object.assign(env, { IOTC_DATA_DIR: server.dataDir, ...extraEnv });
    })());
  before(ready);
  after(() => server?.stop());
  return {
    get server() {
      return server!;
    },
    env,
    ready,
  };
}
