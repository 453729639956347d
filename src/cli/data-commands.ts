import type { Config } from '../config.js';
import { backup, BackupError, restore } from './backup.js';
import { describeCounts, exportStore, importStore, TransferError } from '../store/transfer.js';
import { UsageError } from './io.js';
import type { CliIo } from './io.js';

type Flags = Record<string, string | boolean | undefined>;

/** Commands that move a hub's data as a whole. */
export const DATA_COMMANDS = new Set(['backup', 'restore', 'export', 'import']);

export const DATA_HELP = `  iotc backup FILE [--force]                           consistent copy of the SQLite database, while the server runs
  iotc restore FILE [--force]                          put a backup in place (empty data dir, no server running)
  iotc export FILE [--force]                           everything in the store, as JSON Lines (SQLite or PostgreSQL)
  iotc import FILE [--force]                           an export into the store (empty unless --force), in one transaction`;

/** Runs one of DATA_COMMANDS; resolves to the exit code. */
export async function runDataCommand(positionals: string[], flags: Flags, config: Config, io: CliIo): Promise<number> {
  const [cmd, file] = positionals;
  const out = (s: string) => io.stdout.write(s + '\n');
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
