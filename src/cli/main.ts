#!/usr/bin/env node
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import { ConfigError, OPTIONS, configTable, formatDuration, isDurationOption, loadConfig, sourceOf } from '../config.js';
import type { Config, OptionSpec } from '../config.js';
import { Accounts } from '../core/accounts.js';
import { IotcError } from '../core/errors.js';
import { ApiTokens } from '../core/tokens.js';
import { ServerAlreadyRunning } from '../instance.js';
import { createLogger, hideUrlPasswords, resolveLogFormat } from '../log.js';
import { startServer } from '../server.js';
import { DataDirError } from '../store/data-dir.js';
import { createStore, describeStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { bannerText, logBanner } from './banner.js';
import { commandHelp, isGroup, globalHelp, parseInvocation } from './commands.js';
import type { Flags } from './commands.js';
import { processIo, UsageError } from './io.js';
import type { CliIo } from './io.js';
import { askNewPassword, Interrupted } from './prompt.js';
import { shareCommand } from './share.js';
import { runSimulator, SIMULATOR_HELP } from './simulator.js';
import { deviceLines, serverLine, whereIsServer } from './where.js';
import { ruleCommand } from './rules.js';
import { isDataCommand, runDataCommand } from './data-commands.js';

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

/** A setting's value as it would be typed: durations as 25s, never a database password. */
function showValue(spec: OptionSpec<unknown>, key: string, value: unknown): string {
  if (key === 'store' || key === 'bus') return hideUrlPasswords(String(value));
  if (typeof value === 'number' && isDurationOption(spec)) return formatDuration(value);
  if (value === '') return spec.defaultText ? `(${spec.defaultText})` : '""';
  return String(value);
}

function configLines(config: Config): string[] {
  const entries = Object.entries(OPTIONS) as [keyof Config, OptionSpec<unknown>][];
  const rows = entries.map(([key, spec]) => [spec.flag, showValue(spec, key, config[key]), sourceOf(config, key)]);
  const w0 = Math.max(...rows.map((r) => r[0].length)) + 2;
  const w1 = Math.max(...rows.map((r) => r[1].length)) + 2;
  return rows.map(([flag, value, source]) => `${flag.padEnd(w0)}${value.padEnd(w1)}${source === 'default' ? 'default' : `from ${source}`}`);
}

/** Runs one command; resolves to the process exit code. Never calls process.exit, so tests can call it. */
export async function run(argv: string[], io: CliIo = processIo()): Promise<number> {
  const out = (s: string) => io.stdout.write(s + '\n');
  const note = (s: string) => io.stderr.write(s + '\n');
  try {
    const { command, args, flags } = parseInvocation(argv);
    const [arg] = args;
    if (command === null) {
      out(globalHelp());
      return flags.help ? 0 : 2;
    }
    if (command === 'help' || flags.help) {
      const topic = command === 'help' ? args.join(' ') : command;
      if (topic === 'device run' || topic === 'client run') out(SIMULATOR_HELP);
      else out(topic ? commandHelp(topic) ?? globalHelp() : globalHelp());
      return 0;
    }
    const help = commandHelp(command);
    if (isGroup(command) && help) {
      // "iotc device": a group without its subcommand.
      io.stderr.write(`iotc: which ${command} command?\n${help}`);
      return 2;
    }
    const config = loadConfig(flags, io.env);
    const words = [...command.split(' '), ...args];
    if (isDataCommand(words)) return await runDataCommand(words, flags, config, io);
    switch (command) {
      case 'serve':
        return await serve(config, io);
      case 'config':
        if (flags.markdown) out(configTable());
        else for (const line of configLines(config)) out(line);
        return 0;
      case 'user add': {
        const email = need(flags, 'email');
        const name = need(flags, 'name');
        const password = typeof flags.password === 'string' ? flags.password : await askNewPassword(io, email);
        return await withStore(config, async (_s, accounts) => {
          const user = await accounts.signUp({ email, name, password });
          out(flags.json ? JSON.stringify({ id: user.id, email: user.email, name: user.name }) : `created user ${user.email}`);
          return 0;
        });
      }
      case 'device add':
        return await withStore(config, async (_s, accounts) => {
          const user = await accounts.userByEmail(need(flags, 'email'));
          const d = await accounts.createDevice(user.id, need(flags, 'name'));
          if (flags.json) {
            out(JSON.stringify({ id: d.id, key: d.key }));
            return 0;
          }
          const where = await whereIsServer(config);
          out(`device "${d.name}" created`);
          out(`  id:   ${d.id}`);
          out(`  key:  ${d.key}   (shown only now: keep it)`);
          for (const line of deviceLines(where.addresses, d.id, d.key)) out(line);
          if (where.note) note(`note: ${where.note}.`);
          return 0;
        });
      case 'device list':
        return await withStore(config, async (_s, accounts) => {
          const user = await accounts.userByEmail(need(flags, 'email'));
          const devices = await accounts.listDevices(user.id);
          if (flags.json) {
            out(JSON.stringify(devices));
            return 0;
          }
          if (devices.length === 0) out('no devices');
          for (const d of devices) {
            const seen = d.lastSeen ? new Date(d.lastSeen).toISOString() : 'never';
            const shared = d.shared ? `  (shared by ${d.shared.owner} as ${d.shared.role})` : '';
            out(`${d.id}  ${d.online ? 'online ' : 'offline'}  last seen ${seen}  created ${new Date(d.createdAt).toISOString()}  ${d.name}${shared}`);
          }
          note(serverLine(await whereIsServer(config)));
          return 0;
        });
      case 'device rotate':
        return await withStore(config, async (_s, accounts) => {
          if (!arg) throw new UsageError('give the device id: iotc device rotate ID');
          const d = await accounts.rotateKey(null, arg);
          if (flags.json) {
            out(JSON.stringify({ id: d.id, key: d.key }));
            return 0;
          }
          const where = await whereIsServer(config);
          out(`new key for ${d.id}: ${d.key}   (shown only now; the old key no longer works)`);
          for (const line of deviceLines(where.addresses, d.id, d.key)) out(line);
          if (where.note) note(`note: ${where.note}.`);
          return 0;
        });
      case 'device share':
      case 'device unshare':
        return await withStore(config, (store) => shareCommand(command, arg, flags, store, out));
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
          if (flags.json) {
            out(JSON.stringify({ id: t.id, name: t.name, token: t.token }));
            return 0;
          }
          const where = await whereIsServer(config);
          out(`token "${t.name}" created (id ${t.id})`);
          out(`  ${t.token}   (shown only now: keep it)`);
          out(`  use: curl -H "Authorization: Bearer ${t.token}" ${where.addresses.api}/devices`);
          if (where.note) note(`note: ${where.note}.`);
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
      case 'rule add':
      case 'rule list':
      case 'rule delete':
        return await withStore(config, (store) => ruleCommand(command.split(' ')[1], arg, flags, config, store, out));
      case 'device run':
      case 'client run': {
        // Without --url, the simulator goes where the server really listens (this machine).
        const url = typeof flags.url === 'string' ? flags.url : `ws://127.0.0.1:${(await whereIsServer(config)).addresses.port}`;
        const text = (name: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
        return await runSimulator({ url, deviceId: text('device'), key: text('key'), side: command === 'device run' ? 'device' : 'client' }, io);
      }
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`iotc: ${err.message}\nRun "iotc --help" for usage.\n`);
      return 2;
    }
    if (err instanceof Interrupted) return 130;
    if (err instanceof ConfigError || err instanceof IotcError || err instanceof DataDirError || err instanceof ServerAlreadyRunning) {
      io.stderr.write(`iotc: ${err.message}\n`);
      return 1;
    }
    io.stderr.write(`iotc: ${(err as Error).message ?? err}\n`);
    return 1;
  }
}

/** Set once `iotc serve` runs: a closed stdout must not stop a server (its logs are then lost, its data is not). */
let serving = false;

/** Runs until SIGTERM or SIGINT, then drains: every acknowledged write is committed before exit. */
async function serve(config: Config, io: CliIo): Promise<number> {
  const format = resolveLogFormat(config.logFormat, io.stdout as { isTTY?: boolean });
  const log = createLogger(config.logLevel, undefined, format);
  const server = await startServer(config, log);
  serving = true;
  // A person at a terminal gets a block to read; a program reading JSON logs gets one record per door.
  const colour = Boolean((io.stdout as { isTTY?: boolean }).isTTY) && !io.env.NO_COLOR;
  if (format === 'pretty') io.stdout.write(bannerText(server.addresses, describeStore(config), colour));
  else logBanner(log, server.addresses);
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
  // `iotc config | head`: the reader left, so there is nobody to tell; stop quietly as Unix tools do.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (!serving) process.exit(process.exitCode ?? 0);
  });
  run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
