#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import { ConfigError, configFlags, configTable, loadConfig } from '../config.js';
import type { Config } from '../config.js';
import { Accounts } from '../core/accounts.js';
import { IotcError } from '../core/errors.js';
import { ApiTokens } from '../core/tokens.js';
import { createLogger } from '../log.js';
import { startServer } from '../server.js';
import { createStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { processIo, UsageError } from './io.js';
import type { CliIo } from './io.js';
import { runSimulator, SIMULATOR_HELP } from './simulator.js';
import { DATA_HELP, isDataCommand, runDataCommand } from './data-commands.js';

const HELP = `iotc — IOTcommunicate, a self-hosted hub for IoT devices and their apps

Usage:
  iotc serve [options]                                 run the server (what npm start runs)
  iotc user add --email E --name N --password P        create an account
  iotc device add --email E --name N [--json]          create a device; prints its id and key (shown once)
  iotc device list --email E [--json]                  list a user's devices
  iotc device rotate ID [--json]                       give a device a new key; the old one stops at once
  iotc device delete ID                                delete a device and everything stored for it
  iotc token add --email E --name N [--json]           create a personal API token for the HTTP API (shown once)
  iotc token list --email E [--json]                   list a user's API tokens (never their text)
  iotc token revoke --email E ID                       revoke an API token
  iotc device run --device ID --key KEY [--url URL]    interactive device simulator
  iotc client run --device ID --key KEY [--url URL]    interactive client (app) simulator
  iotc config [--markdown]                             show the settings and where they come from
${DATA_HELP}

Options for every command (flag, environment variable, default):
${configTable()}

Examples:
  npm start
  npm run iotc -- user add --email me@example.com --name Me --password 'correct horse'
  npm run iotc -- device add --email me@example.com --name "Desk lamp"
  npm run iotc -- device run --device ID --key KEY
`;

type Flags = Record<string, string | boolean | undefined>;

function parse(argv: string[]): { positionals: string[]; flags: Flags } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...configFlags(),
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      markdown: { type: 'boolean' },
      email: { type: 'string' },
      name: { type: 'string' },
      password: { type: 'string' },
      device: { type: 'string' },
      key: { type: 'string' },
      url: { type: 'string' },
      force: { type: 'boolean' },
      on: { type: 'boolean' },
      off: { type: 'boolean' },
    },
  });
  return { positionals, flags: values as Flags };
}

function need(flags: Flags, name: string): string {
  const v = flags[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

async function withStore<T>(config: Config, fn: (store: Store, accounts: Accounts) => Promise<T>): Promise<T> {
  const store = await createStore(config);
  try {
    // No relay here: a server running beside the CLI sees rotations and deletions in the store's device events.
    return await fn(store, new Accounts(store, null, config));
  } finally {
    await store.close();
  }
}

/** Runs one command; resolves to the process exit code. Never calls process.exit, so tests can call it. */
export async function run(argv: string[], io: CliIo = processIo()): Promise<number> {
  const out = (s: string) => io.stdout.write(s + '\n');
  try {
    const { positionals, flags } = parse(argv);
    const [cmd, sub, arg] = positionals;
    if (flags.help || cmd === 'help' || cmd === undefined) {
      out((cmd === 'device' || cmd === 'client') && sub === 'run' ? SIMULATOR_HELP : HELP);
      return cmd === undefined && !flags.help ? 2 : 0;
    }
    const config = loadConfig(flags, io.env);
    if (isDataCommand(positionals)) return await runDataCommand(positionals, flags, config, io);
    const key = `${cmd} ${sub ?? ''}`.trim();
    switch (key) {
      case 'serve':
        return await serve(config);
      case 'config':
        if (flags.markdown) out(configTable());
        else for (const [k, v] of Object.entries(config)) out(`${k} = ${JSON.stringify(k === 'store' || k === 'bus' ? String(v).replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@') : v)}`);
        return 0;
      case 'user add':
        return await withStore(config, async (_s, accounts) => {
          const user = await accounts.signUp({ email: need(flags, 'email'), name: need(flags, 'name'), password: need(flags, 'password') });
          out(flags.json ? JSON.stringify({ id: user.id, email: user.email, name: user.name }) : `created user ${user.email}`);
          return 0;
        });
      case 'device add':
        return await withStore(config, async (_s, accounts) => {
          const user = await accounts.userByEmail(need(flags, 'email'));
          const d = await accounts.createDevice(user.id, need(flags, 'name'));
          if (flags.json) out(JSON.stringify({ id: d.id, key: d.key }));
          else {
            out(`device "${d.name}" created`);
            out(`  id:  ${d.id}`);
            out(`  key: ${d.key}   (shown only now: keep it)`);
            out(`  url: ws://HOST:${config.port}/ws?device=${d.id}&key=${d.key}`);
            out(`  http: curl 'http://HOST:${config.port}/api/v1/update?device=${d.id}&key=${d.key}&temp=21.5'`);
            if (config.mqttPort !== 0) out(`  mqtt: host HOST port ${config.mqttPort}, username ${d.id}, password the key, topics devices/${d.id}/SENSOR`);
          }
          return 0;
        });
      case 'device list':
        return await withStore(config, async (_s, accounts) => {
          const user = await accounts.userByEmail(need(flags, 'email'));
          const devices = await accounts.listDevices(user.id);
          if (flags.json) out(JSON.stringify(devices));
          else if (devices.length === 0) out('no devices');
          else {
            for (const d of devices) {
              const seen = d.lastSeen ? new Date(d.lastSeen).toISOString() : 'never';
              out(`${d.id}  ${d.online ? 'online ' : 'offline'}  last seen ${seen}  created ${new Date(d.createdAt).toISOString()}  ${d.name}`);
            }
          }
          return 0;
        });
      case 'device rotate':
        return await withStore(config, async (_s, accounts) => {
          if (!arg) throw new UsageError('give the device id: iotc device rotate ID');
          const d = await accounts.rotateKey(null, arg);
          out(flags.json ? JSON.stringify({ id: d.id, key: d.key }) : `new key for ${d.id}: ${d.key}   (shown only now; the old key no longer works)`);
          return 0;
        });
      case 'device delete':
        return await withStore(config, async (_s, accounts) => {
          if (!arg) throw new UsageError('give the device id: iotc device delete ID');
          await accounts.deleteDevice(null, arg);
          out(`deleted device ${arg}`);
          return 0;
        });
      case 'token add':
        return await withStore(config, async (store, accounts) => {
          const user = await accounts.userByEmail(need(flags, 'email'));
          const t = await new ApiTokens(store, config).create(user.id, need(flags, 'name'));
          if (flags.json) out(JSON.stringify({ id: t.id, name: t.name, token: t.token }));
          else {
            out(`token "${t.name}" created (id ${t.id})`);
            out(`  ${t.token}   (shown only now: keep it)`);
            out(`  use: curl -H "Authorization: Bearer ${t.token}" http://HOST:${config.port}/api/v1/devices`);
          }
          return 0;
        });
      case 'token list':
        return await withStore(config, async (store, accounts) => {
          const user = await accounts.userByEmail(need(flags, 'email'));
          const list = await new ApiTokens(store, config).list(user.id);
          if (flags.json) out(JSON.stringify(list));
          else if (list.length === 0) out('no tokens');
          else {
            for (const t of list) {
              const used = t.lastUsed ? new Date(t.lastUsed).toISOString() : 'never';
              out(`${String(t.id).padStart(4)}  created ${new Date(t.createdAt).toISOString()}  last used ${used}  ${t.name}`);
            }
          }
          return 0;
        });
      case 'token revoke':
        return await withStore(config, async (store, accounts) => {
          const user = await accounts.userByEmail(need(flags, 'email'));
          if (!arg || !/^\d+$/.test(arg)) throw new UsageError('give the token id: iotc token revoke --email E ID (see iotc token list)');
          await new ApiTokens(store, config).revoke(user.id, Number(arg));
          out(`revoked token ${arg}`);
          return 0;
        });
      case 'device run':
      case 'client run':
        return await runSimulator(
          {
            url: typeof flags.url === 'string' ? flags.url : `ws://127.0.0.1:${config.port}`,
            deviceId: typeof flags.device === 'string' ? flags.device : undefined,
            key: typeof flags.key === 'string' ? flags.key : undefined,
            side: cmd === 'device' ? 'device' : 'client',
          },
          io,
        );
      default:
        throw new UsageError(`unknown command "${positionals.join(' ')}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`iotc: ${(err as Error).message}\nRun "iotc --help" for usage.\n`);
      return 2;
    }
    if (err instanceof ConfigError || err instanceof IotcError) {
      io.stderr.write(`iotc: ${err.message}\n`);
      return 1;
    }
    io.stderr.write(`iotc: ${(err as Error).message ?? err}\n`);
    return 1;
  }
}

/** Runs until SIGTERM or SIGINT, then drains: every acknowledged write is committed before exit. */
async function serve(config: Config): Promise<number> {
  const log = createLogger(config.logLevel);
  const server = await startServer(config, log);
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down: draining connections and writes');
      server.close().then(
        () => resolve(0),
        (err) => {
          log.error({ err }, 'unclean shutdown');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => server.reloadTls());
  });
}

const invokedDirectly = process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
