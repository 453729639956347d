import type { Config } from '../config.js';
import { Invites } from '../core/invites.js';
import { createStore } from '../store/index.js';
import type { Invite } from '../store/types.js';
import { backup, BackupError, restore } from './backup.js';
import { describeCounts, exportStore, importStore, TransferError } from '../store/transfer.js';
import { UsageError } from './io.js';
import type { CliIo } from './io.js';

import type { Flags } from './commands.js';

/** Commands that move a hub's data as a whole, and the production settings kept in the store. */
export const DATA_COMMANDS = new Set(['backup', 'restore', 'export', 'import', 'invite']);

export function isDataCommand(positionals: string[]): boolean {
  return DATA_COMMANDS.has(positionals[0]) || (positionals[0] === 'device' && positionals[1] === 'ha');
}

export const DATA_HELP = `  iotc backup FILE [--force]                           consistent copy of the SQLite database, while the server runs
  iotc restore FILE [--force]                          put a backup in place (empty data dir, no server running)
  iotc export FILE [--force]                           everything in the store, as JSON Lines (SQLite or PostgreSQL)
  iotc import FILE [--force]                           an export into the store (empty unless --force), in one transaction
  iotc invite add [--email E] [--json]                 an invitation code for sign-up (IOTC_SIGNUP=invite), shown once
  iotc invite list [--json]                            invitations made, who used them and which expired
  iotc device ha ID --on|--off                         show the device in Home Assistant (the bridge's opt-in), or stop`;

/** Runs one of DATA_COMMANDS; resolves to the exit code. */
export async function runDataCommand(positionals: string[], flags: Flags, config: Config, io: CliIo): Promise<number> {
  const [cmd, file] = positionals;
  const out = (s: string) => io.stdout.write(s + '\n');
  if (cmd === 'invite') return invite(file, flags, config, out);
  if (cmd === 'device') return homeAssistantOptIn(positionals[2], flags, config, out);
  if (!file) throw new UsageError(`give the file: iotc ${cmd} FILE`);
  try {
    switch (cmd) {
      case 'backup':
        out(await backup(config, file, { force: flags.force === true }));
        return 0;
      case 'restore':
        out(await restore(config, file, { force: flags.force === true }));
        return 0;
      case 'export':
        out(`exported to ${file}: ${describeCounts(await exportStore(config, file, { force: flags.force === true }))}`);
        return 0;
      case 'import':
        out(`imported ${file}: ${describeCounts(await importStore(config, file, { force: flags.force === true }))}`);
        return 0;
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (err) {
    if (err instanceof BackupError || err instanceof TransferError) {
      io.stderr.write(`iotc: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function invite(sub: string | undefined, flags: Flags, config: Config, out: (s: string) => void): Promise<number> {
  if (sub !== 'add' && sub !== 'list') throw new UsageError('use iotc invite add [--email E] or iotc invite list');
  const store = await createStore(config);
  try {
    const invites = new Invites(store, config.inviteTtl);
    if (sub === 'add') {
      const email = typeof flags.email === 'string' && flags.email !== '' ? flags.email : null;
      if (email !== null && !/^[^@\s]+@[^@\s]+$/.test(email)) throw new UsageError(`--email ${email} is not an email address`);
      const { code, invite } = await invites.create(email);
      const expiresAt = invites.expiresAt(invite);
      if (flags.json) out(JSON.stringify({ code, email: invite.email, expiresAt }));
      else {
        const until = expiresAt === null ? '' : `, valid until ${new Date(expiresAt).toISOString()}`;
        out(`invitation code: ${code}   (shown only now; used once${invite.email ? `, by ${invite.email} only` : ''}${until})`);
        if (config.signup !== 'invite') out(`note: sign-up is "${config.signup}" here; codes are asked for with IOTC_SIGNUP=invite`);
      }
      return 0;
    }
    const list = await invites.list();
    const now = Date.now();
    const expired = (i: Omit<Invite, 'codeHash'>): boolean => i.usedAt === null && (invites.expiresAt(i) ?? Infinity) < now;
    if (flags.json) out(JSON.stringify(list.map(({ codeHash: _hash, ...rest }) => ({ ...rest, expiresAt: invites.expiresAt(rest), expired: expired(rest) }))));
    else if (list.length === 0) out('no invitations');
    else {
      for (const i of list) {
        const used = i.usedAt ? `used ${new Date(i.usedAt).toISOString()} by ${i.usedEmail}` : expired(i) ? 'expired' : 'unused';
        out(`created ${new Date(i.createdAt).toISOString()}  ${i.email ? `for ${i.email}` : 'for anyone'}  ${used}`);
      }
    }
    return 0;
  } finally {
    await store.close();
  }
}

async function homeAssistantOptIn(id: string | undefined, flags: Flags, config: Config, out: (s: string) => void): Promise<number> {
  if (!id) throw new UsageError('give the device id: iotc device ha ID --on (or --off)');
  if (flags.on === flags.off) throw new UsageError('say --on (show it in Home Assistant) or --off (stop)');
  const store = await createStore(config);
  try {
    if (!(await store.setHomeAssistant(id, flags.on === true))) {
      out(`no device ${id}`);
      return 1;
    }
    out(flags.on ? `device ${id} is shown in Home Assistant` : `device ${id} is no longer shown in Home Assistant`);
    if (!config.haBroker) out('note: the bridge is off here; set IOTC_HA_BROKER (see docs/home-assistant.md)');
    else if (config.haDevices !== '') out(`note: IOTC_HA_DEVICES=${config.haDevices} decides which devices are shown, not the opt-in`);
    return 0;
  } finally {
    await store.close();
  }
}
