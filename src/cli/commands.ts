import { parseArgs } from 'node:util';
import { OPTIONS, formatDuration, isDurationOption } from '../config.js';
import type { OptionSpec } from '../config.js';
import { UsageError } from './io.js';

/** The command's own options (every command also takes every setting, such as --data-dir). */
const COMMAND_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  markdown: { type: 'boolean' },
  email: { type: 'string' },
  name: { type: 'string' },
  password: { type: 'string' },
  device: { type: 'string' },
  key: { type: 'string' },
  url: { type: 'string' },
  // iotc rule add (src/cli/rules.ts): a rule's trigger and actions; actions may be given more than once.
  when: { type: 'string' },
  for: { type: 'string' },
  every: { type: 'string' },
  tz: { type: 'string' },
  webhook: { type: 'string', multiple: true },
  set: { type: 'string', multiple: true },
  preset: { type: 'string' },
  body: { type: 'string' },
  cooldown: { type: 'string' },
  notify: { type: 'boolean' },
  // backup, restore, export, import, device ha (src/cli/data-commands.ts)
  force: { type: 'boolean' },
  on: { type: 'boolean' },
  off: { type: 'boolean' },
  role: { type: 'string' },
} as const;
type CommandOption = keyof typeof COMMAND_OPTIONS;

export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  /** More than the summary: shown by `iotc NAME --help`. */
  details: string;
  options: CommandOption[];
  example?: string;
}

export const COMMANDS: CommandSpec[] = [
  { name: 'serve', usage: 'iotc serve [settings]', summary: 'run the server (what npm start runs)', options: [], example: 'npm start -- --port 9000 --mqtt-port 1884',
    details: 'Runs the hub and prints where each door listens (web app, WebSocket, HTTP API, MQTT, MQTT over WebSocket),\nor why a door is off. SIGTERM or Ctrl-C stops it after committing every acknowledged write.\nOne server per SQLite database: a second one on the same data dir is refused.' },
  { name: 'user add', usage: 'iotc user add --email E --name N [--password P] [--json]', summary: 'create an account', options: ['email', 'name', 'password', 'json'], example: "npm run iotc -- user add --email me@example.com --name Me",
    details: 'Without --password it asks for the password (hidden as you type) or reads it from the first line of stdin\nwhen stdin is not a terminal, so it stays out of the shell history. 8 characters or more.' },
  { name: 'device add', usage: 'iotc device add --email E --name N [--json]', summary: 'create a device; prints its id, its key (shown once) and its URLs', options: ['email', 'name', 'json'], example: 'npm run iotc -- device add --email me@example.com --name "Desk lamp"',
    details: "The URLs use the port the running server really listens on (read from its data dir); with no server\nrunning, the ports it would use, and it says so. --json prints {\"id\":…,\"key\":…}." },
  { name: 'device list', usage: 'iotc device list --email E [--json]', summary: "list a user's devices", options: ['email', 'json'],
    details: 'One line a device: id, online now, last seen, created, name; then (on stderr) where the server listens.' },
  { name: 'device rotate', usage: 'iotc device rotate ID [--json]', summary: 'give a device a new key; the old one stops at once', options: ['json'],
    details: 'Prints the new key (shown once) and the device URL with it. Connections using the old key are closed.' },
  { name: 'device share', usage: 'iotc device share ID --email E --role viewer|operator [--json]', summary: 'share a device with another account (or invite an email with none yet)', options: ['email', 'role', 'json'],
    example: 'npm run iotc -- device share ID --email partner@example.com --role operator',
    details: 'A viewer sees values, history and charts; an operator may also write values and call the device.\nSharing again changes the role. An email without an account gets an invitation, accepted when it signs up.\nThe shared account connects with its own login or API token, never the device key.' },
  { name: 'device unshare', usage: 'iotc device unshare ID --email E [--json]', summary: 'stop sharing a device (or withdraw the invitation)', options: ['email', 'json'],
    details: "The account's open connections to the device close at once, on every node." },
  { name: 'device delete', usage: 'iotc device delete ID', summary: 'delete a device and everything stored for it', options: [], details: 'There is no undo.' },
  { name: 'token add', usage: 'iotc token add --email E --name N [--json]', summary: 'create a personal API token for the HTTP API (shown once)', options: ['email', 'name', 'json'],
    details: 'Send it as "Authorization: Bearer TOKEN" to the account side of the HTTP API.' },
  { name: 'token list', usage: 'iotc token list --email E [--json]', summary: "list a user's API tokens (never their text)", options: ['email', 'json'], details: 'Id, created, last used and name of each token.' },
  { name: 'token revoke', usage: 'iotc token revoke --email E ID', summary: 'revoke an API token', options: ['email'], details: 'ID is the number `iotc token list` shows.' },
  { name: 'rule add', usage: 'iotc rule add --device ID (--when "temp > 30" [--for 1m] | --when offline [--for 30s] | --every "0 7 * * *" [--tz ZONE]) (--webhook URL | --set SENSOR=VALUE | --email ADDR | --notify) [--name N] [--cooldown 10m] [--preset ntfy|gotify] [--body JSON] [--json]',
    summary: 'a rule: when a condition holds (for a while), or on a schedule, act', options: ['device', 'when', 'for', 'every', 'tz', 'webhook', 'set', 'email', 'notify', 'name', 'cooldown', 'preset', 'body', 'json'],
    example: 'npm run iotc -- rule add --device ID --when "temp < 2" --for 10m --set heater=true',
    details: "Triggers: SENSOR OP VALUE (>, >=, <, <=, ==, !=, changed), offline, online, or a cron schedule in the given time zone.\nActions (each may be given more than once): a webhook (signed, retried), a value written to the device, an email\nto the account's own address, an in-app notification. See docs/automations.md." },
  { name: 'rule list', usage: 'iotc rule list --device ID [--json]', summary: "list a device's rules", options: ['device', 'json'], details: 'Id, state, trigger and actions of each rule, with its last run.' },
  { name: 'rule delete', usage: 'iotc rule delete RULE_ID', summary: 'delete a rule', options: [], details: 'RULE_ID is the id `iotc rule list` shows.' },
  { name: 'device ha', usage: 'iotc device ha ID --on|--off', summary: 'show the device in Home Assistant (the bridge\'s opt-in), or stop', options: ['on', 'off'],
    details: 'With IOTC_HA_BROKER set, the hub publishes MQTT discovery for opted-in devices (see docs/home-assistant.md).' },
  { name: 'backup', usage: 'iotc backup FILE [--force]', summary: 'a consistent copy of the SQLite database, while the server runs', options: ['force'],
    details: 'SQLite\'s online backup: one self-contained file (mode 600). --force replaces an existing FILE. With PostgreSQL, use pg_dump (docs/deploy.md).' },
  { name: 'restore', usage: 'iotc restore FILE [--force]', summary: 'put a backup in place (no server running on the data dir)', options: ['force'],
    details: 'Refused while a server runs on the database; refused over a database holding data unless --force. An older backup is upgraded.' },
  { name: 'export', usage: 'iotc export FILE [--force]', summary: 'everything in the store as JSON Lines (SQLite or PostgreSQL)', options: ['force'],
    details: 'Users, devices with their key hashes, readings, tokens, rules and the rest, from one consistent snapshot.' },
  { name: 'import', usage: 'iotc import FILE [--force]', summary: 'an export into the store, in one transaction (empty store unless --force)', options: ['force'],
    details: 'Every table\'s row count is checked: a damaged or cut-short file imports nothing.' },
  { name: 'invite add', usage: 'iotc invite add [--email E] [--json]', summary: 'an invitation code for sign-up (IOTC_SIGNUP=invite), shown once', options: ['email', 'json'], details: 'Only the code\'s hash is kept; a code is used once, within IOTC_INVITE_TTL (7d) of being made.' },
  { name: 'invite list', usage: 'iotc invite list [--json]', summary: 'invitations made, who used them and which expired', options: ['json'], details: '' },
  { name: 'device run', usage: 'iotc device run --device ID --key KEY [--url URL]', summary: 'interactive device simulator', options: ['device', 'key', 'url'], details: '' },
  { name: 'client run', usage: 'iotc client run --device ID --key KEY [--url URL]', summary: 'interactive client (app) simulator', options: ['device', 'key', 'url'], details: '' },
  { name: 'config', usage: 'iotc config [--markdown]', summary: 'show the settings in force and where each comes from', options: ['markdown'],
    details: 'Each setting with its value and its source: a flag, an environment variable, or the default.\n--markdown prints the README table of every setting instead.' },
];

const byName = new Map(COMMANDS.map((c) => [c.name, c]));
const GROUPS = new Set(COMMANDS.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0]));

/** "device", "token", …: a word that only names a group of commands. */
export const isGroup = (name: string) => GROUPS.has(name) && !byName.has(name);

/** Edit distance (insertions, deletions, substitutions, adjacent swaps), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest candidate, if close enough to be a typo. */
export function closest(word: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const distance = editDistance(word, c);
    if (distance < bestDistance) [best, bestDistance] = [c, distance];
  }
  return best !== null && bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : null;
}

export type Flags = Record<string, string | boolean | string[] | undefined>;

export interface Invocation {
  /** The command's name ("device add"), "help", a group ("device") when asking for its help, or null for none. */
  command: string | null;
  /** Positionals after the command's name. */
  args: string[];
  flags: Flags;
}

const CONFIG_FLAGS = new Set(Object.values(OPTIONS).map((o) => o.flag));

const isMultiple = (name: string) => (COMMAND_OPTIONS as Record<string, { multiple?: boolean }>)[name]?.multiple === true;

function optionType(name: string): 'string' | 'boolean' | null {
  if (CONFIG_FLAGS.has(name)) return 'string';
  return (COMMAND_OPTIONS as Record<string, { type: 'string' | 'boolean' }>)[name]?.type ?? null;
}

/** Reads argv: the command, its arguments and its options, each checked against what that command takes. */
export function parseInvocation(argv: string[]): Invocation {
  // Not strict: an unknown option is answered below with a suggestion instead of parseArgs' own text.
  const options = { ...Object.fromEntries([...CONFIG_FLAGS].map((f) => [f, { type: 'string' as const }])), ...COMMAND_OPTIONS };
  const { tokens } = parseArgs({ args: argv, strict: false, allowPositionals: true, tokens: true, options });
  const positionals = tokens.filter((t) => t.kind === 'positional').map((t) => t.value);
  const [first, second] = positionals;
  let command: string | null = null;
  let args: string[] = [];
  if (first === undefined) command = null;
  else if (first === 'help') [command, args] = ['help', positionals.slice(1)];
  else if (byName.has(first)) [command, args] = [first, positionals.slice(1)];
  else if (second !== undefined && byName.has(`${first} ${second}`)) [command, args] = [`${first} ${second}`, positionals.slice(2)];
  else if (GROUPS.has(first) && (second === undefined || argv.includes('--help') || argv.includes('-h'))) [command, args] = [first, positionals.slice(1)];
  else {
    // "devcie add" → "device add", "sevre" → "serve": the two words against two-word commands, one against the rest.
    const guess =
      (second !== undefined ? closest(`${first} ${second}`, byName.keys()) : null) ??
      (GROUPS.has(first) ? null : closest(first, [...byName.keys(), ...GROUPS].filter((n) => !n.includes(' '))));
    throw new UsageError(`unknown command "${positionals.join(' ')}"${guess ? ` (did you mean "${guess}"?)` : ''}`);
  }
  const allowed = new Set<string>(['help', ...CONFIG_FLAGS, ...(byName.get(command ?? '')?.options ?? [])]);
  if (command === null || command === 'help' || GROUPS.has(command)) for (const o of Object.keys(COMMAND_OPTIONS)) allowed.add(o);
  const flags: Flags = {};
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    const type = optionType(t.name);
    if (!allowed.has(t.name) || type === null) {
      const guess = closest(t.name, allowed);
      const elsewhere = type !== null && command ? ` (iotc ${command} does not take it; see iotc ${command} --help)` : '';
      throw new UsageError(`unknown option ${t.rawName}${guess ? ` (did you mean --${guess}?)` : elsewhere}`);
    }
    if (type === 'string' && t.value === undefined) throw new UsageError(`${t.rawName} needs a value, e.g. ${t.rawName} ${placeholder(t.name)}`);
    if (type === 'boolean' && t.value !== undefined) throw new UsageError(`${t.rawName} takes no value`);
    if (isMultiple(t.name)) flags[t.name] = [...((flags[t.name] as string[] | undefined) ?? []), t.value!];
    else flags[t.name] = t.value ?? true;
  }
  return { command, args, flags };
}

function placeholder(name: string): string {
  const examples: Record<string, string> = { email: 'me@example.com', name: '"Desk lamp"', password: "'correct horse battery'", url: 'ws://192.168.1.20:8888' };
  if (examples[name]) return examples[name];
  const spec = Object.values(OPTIONS).find((o) => o.flag === name) as OptionSpec<unknown> | undefined;
  return spec ? showDefault(spec) || 'VALUE' : name.toUpperCase();
}

/** A default as a person would type it: 25s, not 25000. */
export function showDefault(spec: OptionSpec<unknown>): string {
  if (spec.defaultText) return spec.defaultText;
  if (typeof spec.default === 'number' && isDurationOption(spec)) return formatDuration(spec.default);
  return String(spec.default);
}

/** Every setting, readable in a terminal: flag, variable and default on one line, what it does below. */
export function settingsHelp(): string {
  const rows = Object.values(OPTIONS).map((o: OptionSpec<unknown>) => {
    const def = showDefault(o);
    return `  --${o.flag.padEnd(30)} ${o.env.padEnd(34)} ${def === '' ? '' : `default ${def}`}`.trimEnd() + `\n      ${o.description}`;
  });
  return ['Settings, for every command (a flag, or its environment variable; flags win):', ...rows].join('\n');
}

/** The widest usage that still gets its summary beside it; a longer one (rule add) has it on the next line. */
const USAGE_COLUMN = 56;

/** Usages in one column and their summaries in the next, so a terminal's width is not set by the longest usage. */
function usageList(commands: readonly CommandSpec[]): string {
  const width = Math.min(USAGE_COLUMN, Math.max(...commands.map((c) => c.usage.length))) + 2;
  return commands
    .map((c) => (c.usage.length + 2 <= width ? `  ${c.usage.padEnd(width)}${c.summary}` : `  ${c.usage}\n  ${' '.repeat(width)}${c.summary}`))
    .join('\n');
}

export function globalHelp(): string {
  return `iotc — IOTcommunicate, a self-hosted hub for IoT devices and their apps

Usage:
${usageList(COMMANDS)}

Run "iotc COMMAND --help" (e.g. iotc device add --help) for one command.

${settingsHelp()}

Examples:
  npm start
  npm run iotc -- user add --email me@example.com --name Me
  npm run iotc -- device add --email me@example.com --name "Desk lamp"
  npm run iotc -- device run --device ID --key KEY
`;
}

/** Help for one command, or for the commands of a group ("device"). */
export function commandHelp(name: string): string | null {
  const spec = byName.get(name);
  if (spec) {
    const parts = [`Usage: ${spec.usage}`, '', `${spec.summary[0].toUpperCase()}${spec.summary.slice(1)}.`];
    if (spec.details) parts.push(spec.details);
    if (spec.example) parts.push('', `Example: ${spec.example}`);
    parts.push('', name === 'serve' || name === 'config' ? settingsHelp() : 'Every setting is accepted too, e.g. --data-dir DIR (see iotc serve --help).');
    return parts.join('\n') + '\n';
  }
  if (GROUPS.has(name)) {
    const members = COMMANDS.filter((c) => c.name.startsWith(`${name} `));
    return `Usage:\n${usageList(members)}\n\nRun "iotc ${name} SUBCOMMAND --help" for one of them.\n`;
  }
  return null;
}
