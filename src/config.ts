import { z } from 'zod';

/**
 * Every setting is declared once here: its flag, its environment variable, its default and its check.
 * The server, the CLI and the README's config table all read this list.
 */
export interface OptionSpec<T> {
  flag: string;
  env: string;
  default: T;
  description: string;
  parse: z.ZodType<T>;
  /** Shown in docs in place of the default where the default depends on other settings. */
  defaultText?: string;
}

/** A whole number from a flag, a variable or code, refused with a message that quotes what was given. */
export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER, what = 'a whole number') {
  return z.union([z.number(), z.string()]).transform((input, ctx) => {
    const n = typeof input === 'number' ? input : /^\s*-?\d+\s*$/.test(input) ? Number(input) : NaN;
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `${min}–${max}`;
    if (!Number.isSafeInteger(n)) ctx.addIssue({ code: 'custom', message: `"${input}" is not ${what} (${range})` });
    else if (n < min || n > max) ctx.addIssue({ code: 'custom', message: `"${input}" is out of range: use ${range}` });
    else return n;
    return z.NEVER;
  });
}

const port = wholeNumber(0, 65535, 'a port number');
const positiveInt = wholeNumber(1);
const nonNegativeInt = wholeNumber(0);

/** "30d", "12h", "15m", "45s", "500ms" or a number of milliseconds; 0 means off. */
export const duration = z.union([z.number(), z.string()]).transform((input, ctx) => {
  if (typeof input === 'number') return input;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(input);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `"${input}" is not a duration; use e.g. 500ms, 30s, 15m, 12h or 30d` });
    return z.NEVER;
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return Math.round(Number(m[1]) * unit);
});

const store = z.string().refine((s) => s === 'sqlite' || /^sqlite:/.test(s) || /^postgres(ql)?:\/\//.test(s), {
  message: 'use "sqlite" (a file under the data dir), "sqlite:/path/to/file.db" or "postgres://user@host:5432/db"',
});
const bus = z.string().refine((s) => s === 'memory' || /^(nats|tls):\/\//.test(s), {
  message: 'use "memory" (one node) or "nats://host:4222" (several nodes; tls://host:4222 for TLS)',
});
/** true/false, yes/no, on/off or 1/0, as environment variables spell them. */
export const flag = z.union([z.boolean(), z.string()]).transform((input, ctx) => {
  if (typeof input === 'boolean') return input;
  const v = input.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  ctx.addIssue({ code: 'custom', message: `"${input}" is not a yes/no value; use true or false` });
  return z.NEVER;
});
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const logFormat = z.enum(['auto', 'pretty', 'json']);
/** Smaller than this, a message cannot hold a put with its envelope. */
const MIN_FRAME_BYTES = 256;
/** Below this, pings are traffic rather than a keep-alive. */
const MIN_PING_MS = 100;

export const OPTIONS = {
  port: { flag: 'port', env: 'PORT', default: 8888, parse: port, description: 'HTTP and WebSocket port (0 picks a free one)' },
  mqttPort: { flag: 'mqtt-port', env: 'IOTC_MQTT_PORT', default: 1883, parse: port, description: 'MQTT port (0 turns the MQTT listener off; MQTT over WebSocket at /mqtt stays on the HTTP port)' },
  mqttsPort: { flag: 'mqtts-port', env: 'IOTC_MQTTS_PORT', default: 8883, parse: port, description: 'MQTT over TLS port, used when --tls-cert is set (0 = off)' },
  tlsCert: { flag: 'tls-cert', env: 'IOTC_TLS_CERT', default: '', parse: z.string(), description: 'Certificate chain (PEM): serve https and wss on the HTTP port and mqtts on the MQTTS port; reloaded on SIGHUP or when the file changes' },
  tlsKey: { flag: 'tls-key', env: 'IOTC_TLS_KEY', default: '', parse: z.string(), description: 'Private key (PEM) of the TLS certificate' },
  host: { flag: 'host', env: 'IOTC_HOST', default: '0.0.0.0', parse: z.string().min(1), description: 'Address to listen on' },
  dataDir: { flag: 'data-dir', env: 'IOTC_DATA_DIR', default: './data', parse: z.string().min(1), description: 'Folder for the embedded SQLite database' },
  store: { flag: 'store', env: 'IOTC_STORE', default: 'sqlite', parse: store, description: 'Where data is kept: sqlite (under the data dir), sqlite:FILE, or a postgres:// URL' },
  storePool: { flag: 'store-pool', env: 'IOTC_STORE_POOL', default: 10, parse: positiveInt, description: 'Most connections one node opens to PostgreSQL' },
  bus: { flag: 'bus', env: 'IOTC_BUS', default: 'memory', parse: bus, description: 'How nodes route readings: memory (one node) or a nats:// URL' },
  natsCreds: { flag: 'nats-creds', env: 'IOTC_NATS_CREDS', default: '', parse: z.string(), description: 'NATS credentials file (JWT + NKey seed) for the bus; a user and password or a token can go in the bus URL instead' },
  natsTlsCa: { flag: 'nats-tls-ca', env: 'IOTC_NATS_TLS_CA', default: '', parse: z.string(), description: 'CA certificate (PEM) to verify the NATS server with; turns TLS on' },
  natsTlsCert: { flag: 'nats-tls-cert', env: 'IOTC_NATS_TLS_CERT', default: '', parse: z.string(), description: 'This node\'s client certificate (PEM) for NATS mutual TLS' },
  natsTlsKey: { flag: 'nats-tls-key', env: 'IOTC_NATS_TLS_KEY', default: '', parse: z.string(), description: 'The key (PEM) of the NATS client certificate' },
  nodeId: { flag: 'node-id', env: 'IOTC_NODE_ID', default: '', parse: z.string().regex(/^[A-Za-z0-9_-]{0,64}$/, 'letters, digits, _ and - only'), description: 'Name of this node in a cluster', defaultText: 'random' },
  logLevel: { flag: 'log-level', env: 'IOTC_LOG_LEVEL', default: 'info', parse: logLevel, description: 'fatal, error, warn, info, debug, trace or silent' },
  logFormat: { flag: 'log-format', env: 'IOTC_LOG_FORMAT', default: 'auto', parse: logFormat, description: 'pretty (readable lines), json (one object a line) or auto: pretty when output is a terminal' },
  maxFrameBytes: { flag: 'max-frame', env: 'IOTC_MAX_FRAME', default: 65536, parse: wholeNumber(MIN_FRAME_BYTES), description: 'Largest accepted message in bytes' },
  rateLimit: { flag: 'rate-limit', env: 'IOTC_RATE_LIMIT', default: 200, parse: nonNegativeInt, description: 'Messages per second one connection may send (0 = unlimited)' },
  rateBurst: { flag: 'rate-burst', env: 'IOTC_RATE_BURST', default: 400, parse: positiveInt, description: 'Messages a connection may send at once above the rate' },
  apiRateLimit: { flag: 'api-rate-limit', env: 'IOTC_API_RATE_LIMIT', default: 20, parse: nonNegativeInt, description: 'HTTP API requests per second per device key, API token or (for log-in) address (0 = unlimited)' },
  apiRateBurst: { flag: 'api-rate-burst', env: 'IOTC_API_RATE_BURST', default: 60, parse: positiveInt, description: 'HTTP API requests allowed at once above the rate' },
  maxConnectionsPerDevice: { flag: 'max-connections-per-device', env: 'IOTC_MAX_CONNECTIONS_PER_DEVICE', default: 32, parse: positiveInt, description: 'Open connections allowed per device and side' },
  maxCallsPerDevice: { flag: 'max-calls-per-device', env: 'IOTC_MAX_CALLS_PER_DEVICE', default: 100, parse: positiveInt, description: 'Open calls (commands awaiting an answer, in flight or queued) allowed per device' },
  maxCallsPerUser: { flag: 'max-calls-per-user', env: 'IOTC_MAX_CALLS_PER_USER', default: 1000, parse: positiveInt, description: "Open calls allowed across all of a user's devices" },
  sendQueueBytes: { flag: 'send-queue', env: 'IOTC_SEND_QUEUE', default: 1_048_576, parse: positiveInt, description: 'Bytes queued to a slow receiver before it is disconnected' },
  maxBlobBytes: { flag: 'max-blob', env: 'IOTC_MAX_BLOB', default: 262_144, parse: positiveInt, description: 'Largest binary chunk (camera frame, file) in bytes, on every door; text messages keep --max-frame' },
  blobBudgetBytes: { flag: 'blob-budget', env: 'IOTC_BLOB_BUDGET', default: 8_388_608, parse: positiveInt, description: 'Bytes of binary chunks kept per device; the oldest chunks go first' },
  maxValueDepth: { flag: 'max-value-depth', env: 'IOTC_MAX_VALUE_DEPTH', default: 32, parse: positiveInt, description: 'Deepest nesting of arrays and objects in a value' },
  maxValueBytes: { flag: 'max-value-bytes', env: 'IOTC_MAX_VALUE_BYTES', default: 65_536, parse: positiveInt, description: 'Longest value, in characters of its JSON' },
  maxSensors: { flag: 'max-sensors', env: 'IOTC_MAX_SENSORS', default: 1000, parse: nonNegativeInt, description: 'Distinct sensors one device may have (0 = no limit); sensors not written for the retention age no longer count' },
  maxReplyBytes: { flag: 'max-reply', env: 'IOTC_MAX_REPLY_BYTES', default: 1_048_576, parse: wholeNumber(4096), description: 'Largest history or sensors reply in bytes; a longer one is cut there and says where to continue' },
  pingInterval: { flag: 'ping-interval', env: 'IOTC_PING_INTERVAL', default: 25_000, parse: duration.pipe(z.number().min(MIN_PING_MS, `keep-alive cannot be turned off; use at least ${MIN_PING_MS}ms (the default is 25s)`)), description: 'Keep-alive ping period; a peer silent for two periods is dropped', defaultText: '25s' },
  retentionCount: { flag: 'retention-count', env: 'IOTC_RETENTION_COUNT', default: 10_000, parse: nonNegativeInt, description: 'Readings kept per device; the latest of each sensor is always kept (0 = no limit)' },
  retentionBytes: { flag: 'retention-bytes', env: 'IOTC_RETENTION_BYTES', default: 67_108_864, parse: nonNegativeInt, description: 'Bytes of readings kept per device, each its value\'s JSON and 24 bytes: the oldest go first, as the device is written; the latest of each sensor is always kept (0 = no limit)' },
  maxLatestBytes: { flag: 'max-latest-bytes', env: 'IOTC_MAX_LATEST_BYTES', default: 16_777_216, parse: nonNegativeInt, description: 'What the latest values of a device\'s sensors may weigh together, both sides, each its JSON and 24 bytes: a put that would make them heavier is refused (0 = no limit)' },
  retentionAge: { flag: 'retention-age', env: 'IOTC_RETENTION_AGE', default: 30 * 86_400_000, parse: duration, description: 'Age after which readings are pruned, and sensors not written since are forgotten (0 = keep forever)', defaultText: '30d' },
  rollupFill: { flag: 'rollup-fill', env: 'IOTC_ROLLUP_FILL', default: true, parse: flag, description: 'Fill the hourly rollup of charts in the background, a few hours of a sensor at a time, so the first chart of a long range is fast too (off: the first chart fills it)' },
  pruneInterval: { flag: 'prune-interval', env: 'IOTC_PRUNE_INTERVAL', default: 60_000, parse: duration, description: 'How often retention pruning runs', defaultText: '1m' },
  trustProxy: { flag: 'trust-proxy', env: 'IOTC_TRUST_PROXY', default: false, parse: flag, description: 'Behind a reverse proxy: believe its X-Forwarded-For/-Proto/-Host headers (client IP, Secure cookies)' },
  sessionTtl: { flag: 'session-ttl', env: 'IOTC_SESSION_TTL', default: 30 * 86_400_000, parse: duration.pipe(z.number().min(60_000, 'a session must last at least 1m')), description: 'How long a web app login lasts', defaultText: '30d' },
  mqttMaxSubscriptions: { flag: 'mqtt-max-subscriptions', env: 'IOTC_MQTT_MAX_SUBSCRIPTIONS', default: 100, parse: positiveInt, description: 'Subscription filters one MQTT connection may hold; filters over it are refused in the SUBACK (MQTT 5: quota exceeded)' },
  mqttMaxKeepalive: { flag: 'mqtt-max-keepalive', env: 'IOTC_MQTT_MAX_KEEPALIVE', default: 300_000, parse: duration.pipe(z.number().min(1000, 'at least 1s')), description: 'Longest MQTT keep-alive granted: a client asking for more (or 0 = none) is dropped after 1.5 × this of silence; MQTT 5 clients are told', defaultText: '5m' },
  handshakeTimeout: { flag: 'handshake-timeout', env: 'IOTC_HANDSHAKE_TIMEOUT', default: 10_000, parse: duration.pipe(z.number().min(100, 'at least 100ms')), description: 'Time a new connection has to send its HTTP request, WebSocket upgrade or MQTT CONNECT and be authenticated', defaultText: '10s' },
  maxUnauthPerAddress: { flag: 'max-unauth-per-address', env: 'IOTC_MAX_UNAUTH_PER_ADDRESS', default: 64, parse: positiveInt, description: 'Connections from one address still in their handshake, across doors; a newer one closes the oldest (the address is the proxy\'s X-Forwarded-For on the HTTP port with --trust-proxy)' },
  maxDevicesPerUser: { flag: 'max-devices-per-user', env: 'IOTC_MAX_DEVICES_PER_USER', default: 100, parse: nonNegativeInt, description: 'Devices one account may have; then E_LIMIT (0 = unlimited)' },
  maxTokensPerUser: { flag: 'max-tokens-per-user', env: 'IOTC_MAX_TOKENS_PER_USER', default: 50, parse: nonNegativeInt, description: 'API tokens one account may have (each API log-in makes one); then E_LIMIT (0 = unlimited)' },
  loginFailuresPerAccount: { flag: 'login-failures-per-account', env: 'IOTC_LOGIN_FAILURES_PER_ACCOUNT', default: 10, parse: nonNegativeInt, description: 'Failed log-ins (and sign-ups of a taken email) per account in 10 minutes, from any address; then E_RATE_LIMITED / 429 (0 = unlimited)' },
  keyFailuresPerAddress: { flag: 'key-failures-per-address', env: 'IOTC_KEY_FAILURES_PER_ADDRESS', default: 10, parse: nonNegativeInt, description: 'Wrong keys per device and address in a minute; then that address gets E_RATE_LIMITED for that device (0 = unlimited)' },
  keyFailuresPerDevice: { flag: 'key-failures-per-device', env: 'IOTC_KEY_FAILURES_PER_DEVICE', default: 100, parse: nonNegativeInt, description: 'Wrong keys per device in a minute from all addresses; then each attempt on it waits 1 s (the right key still connects; 0 = never)' },
  authFailuresPerAddress: { flag: 'auth-failures-per-address', env: 'IOTC_AUTH_FAILURES_PER_ADDRESS', default: 60, parse: nonNegativeInt, description: 'Wrong API tokens per address in a minute, then E_RATE_LIMITED; wrong device keys per address in a minute across all devices, then each key attempt from there waits 1 s (0 = unlimited)' },
  rulesPerDevice: { flag: 'rules-per-device', env: 'IOTC_RULES_PER_DEVICE', default: 20, parse: positiveInt, description: 'Automation rules one device may have' },
  rulesPerUser: { flag: 'rules-per-user', env: 'IOTC_RULES_PER_USER', default: 100, parse: positiveInt, description: 'Automation rules one account may have across its devices' },
  rulesTick: { flag: 'rules-tick', env: 'IOTC_RULES_TICK', default: 1000, parse: duration.pipe(z.number().min(10, 'at least 10ms')), description: 'How often schedules, offline/online rules and the delivery queue are looked at, and rules changed on other nodes reloaded', defaultText: '1s' },
  deliveryQueue: { flag: 'delivery-queue', env: 'IOTC_DELIVERY_QUEUE', default: 100, parse: positiveInt, description: 'Webhooks and emails one account may have waiting to be sent; more are refused (E_LIMIT) and shown in the rule\'s last run' },
  webhookTimeout: { flag: 'webhook-timeout', env: 'IOTC_WEBHOOK_TIMEOUT', default: 10_000, parse: duration.pipe(z.number().min(100, 'at least 100ms')), description: 'Longest wait for a webhook (or SMTP server) to answer one attempt', defaultText: '10s' },
  webhookRetries: { flag: 'webhook-retries', env: 'IOTC_WEBHOOK_RETRIES', default: 5, parse: nonNegativeInt, description: 'Retries of a failed webhook or email (timeouts, 5xx, 408, 429), with backoff doubling each time' },
  webhookBackoff: { flag: 'webhook-backoff', env: 'IOTC_WEBHOOK_BACKOFF', default: 10_000, parse: duration.pipe(z.number().min(10, 'at least 10ms')), description: 'Wait before the first retry; each next retry waits twice as long', defaultText: '10s' },
  webhookAllowPrivate: { flag: 'webhook-allow-private', env: 'IOTC_WEBHOOK_ALLOW_PRIVATE', default: false, parse: flag, description: 'Allow webhooks to loopback, private and link-local addresses (off: a hub with open sign-up must not be a door into its own network)' },
  smtpUrl: { flag: 'smtp-url', env: 'IOTC_SMTP_URL', default: '', parse: z.string().refine((s) => s === '' || /^smtps?:\/\//.test(s), 'use smtp://user:pass@host:587 or smtps://user:pass@host:465'), description: 'SMTP server for email actions, e.g. smtp://user:pass@mail.example.com:587 (empty: email actions are refused)' },
  smtpFrom: { flag: 'smtp-from', env: 'IOTC_SMTP_FROM', default: 'IOTcommunicate <iotc@localhost>', parse: z.string().min(3), description: 'Sender of automation emails' },
  inviteTtl: { flag: 'invite-ttl', env: 'IOTC_INVITE_TTL', default: 7 * 86_400_000, parse: duration, description: 'How long an invitation stays valid: a sign-up code (iotc invite add), or a device shared with an email that has no account yet (0 = until used or withdrawn)', defaultText: '7d' },
  signup: { flag: 'signup', env: 'IOTC_SIGNUP', default: 'open' as 'open' | 'invite' | 'closed', parse: z.enum(['open', 'invite', 'closed']), description: 'Who may create an account on the web app and the API: open (anyone), invite (with a code from iotc invite add) or closed; iotc user add always works' },
  haBroker: { flag: 'ha-broker', env: 'IOTC_HA_BROKER', default: '', parse: z.string().refine((s) => s === '' || /^(mqtts?|wss?):\/\//.test(s), { message: 'use mqtt://host:1883 or mqtts://host:8883' }), description: 'Home Assistant bridge: the MQTT broker Home Assistant uses (mqtt://host:1883); the hub publishes discovery, states and availability there and takes commands (off when empty)' },
  haUsername: { flag: 'ha-username', env: 'IOTC_HA_USERNAME', default: '', parse: z.string(), description: 'User name on the Home Assistant broker' },
  haPassword: { flag: 'ha-password', env: 'IOTC_HA_PASSWORD', default: '', parse: z.string(), description: 'Password on the Home Assistant broker' },
  haDiscoveryPrefix: { flag: 'ha-discovery-prefix', env: 'IOTC_HA_DISCOVERY_PREFIX', default: 'homeassistant', parse: z.string().regex(/^[^#+]+$/, 'no MQTT wildcards'), description: "Home Assistant's MQTT discovery prefix" },
  haBaseTopic: { flag: 'ha-base-topic', env: 'IOTC_HA_BASE_TOPIC', default: 'iotc', parse: z.string().regex(/^[^#+]+$/, 'no MQTT wildcards'), description: 'Topic prefix for the bridged states, commands and availability on the Home Assistant broker' },
  haDevices: { flag: 'ha-devices', env: 'IOTC_HA_DEVICES', default: '', parse: z.string().regex(/^(all|[A-Z0-9]{20}(,[A-Z0-9]{20})*)?$/, 'all, or a comma-separated list of device ids'), description: 'Devices shown in Home Assistant: those opted in with iotc device ha ID --on (empty), all, or a comma-separated list of device ids', defaultText: 'opted in' },
  shutdownTimeout: { flag: 'shutdown-timeout', env: 'IOTC_SHUTDOWN_TIMEOUT', default: 10_000, parse: duration, description: 'Longest wait for connections to drain on SIGTERM', defaultText: '10s' },
} satisfies Record<string, OptionSpec<any>>;

type Options = typeof OPTIONS;
export type Config = { [K in keyof Options]: Options[K]['default'] };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Builds the config from flags (highest), then environment, then defaults, and checks every value.
 * `flags` holds raw strings keyed by flag name, as util.parseArgs gives them.
 */
export function loadConfig(
  flags: Record<string, string | boolean | string[] | undefined> = {},
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Config> = {},
): Config {
  const out: Record<string, unknown> = {};
  const defaulted: Record<string, true> = {};
  const sources: Record<string, string> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(OPTIONS) as [string, OptionSpec<unknown>][]) {
    let raw: unknown;
    let source: string;
    if (key in overrides && (overrides as Record<string, unknown>)[key] !== undefined) {
      raw = (overrides as Record<string, unknown>)[key];
      source = key;
    } else if (flags[spec.flag] !== undefined && typeof flags[spec.flag] === 'string') {
      raw = flags[spec.flag];
      source = `--${spec.flag}`;
    } else if (env[spec.env] !== undefined && env[spec.env] !== '') {
      raw = env[spec.env];
      source = spec.env;
    } else {
      out[key] = spec.default;
      defaulted[key] = true;
      continue;
    }
    sources[key] = source;
    const parsed = spec.parse.safeParse(raw);
    if (parsed.success) out[key] = parsed.data;
    else {
      const message = parsed.error.issues.map((i) => i.message).join('; ');
      // Messages that quote the value need it only once: `--port: "abc" is not a port number (0–65535)`.
      problems.push(message.includes(JSON.stringify(String(raw))) ? `${source}: ${message}` : `${source}=${JSON.stringify(raw)}: ${message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  const config = out as Config;
  explicitKeys.set(config, new Set(Object.keys(OPTIONS).filter((k) => !(k in defaulted)) as (keyof Config)[]));
  configSources.set(config, sources);
  return config;
}

const configSources = new WeakMap<Config, Record<string, string>>();

/** Where a setting came from: its flag (`--port`), its environment variable (`PORT`), `default`, or `code`. */
export function sourceOf(config: Config, key: keyof Config): string {
  const source = configSources.get(config)?.[key];
  if (source === undefined) return isExplicit(config, key) ? 'code' : 'default';
  return source === key ? 'code' : source;
}

const HOUR = 3_600_000;
/** Whether an option takes a duration ("30s", "12h"): it reads "1h" as an hour. */
export function isDurationOption(spec: OptionSpec<unknown>): boolean {
  const parsed = spec.parse.safeParse('1h');
  return parsed.success && parsed.data === HOUR;
}

/** Milliseconds as the largest whole unit that states them exactly: 25000 → "25s", 2592000000 → "30d", 1500 → "1500ms". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  for (const [unit, size] of [['d', 24 * HOUR], ['h', HOUR], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const explicitKeys = new WeakMap<Config, Set<keyof Config>>();

/** Whether the user chose this setting (flag, environment or override) rather than leaving the default. */
export function isExplicit(config: Config, key: keyof Config): boolean {
  return explicitKeys.get(config)?.has(key) ?? true;
}

/** parseArgs option table for every config flag, so each command accepts them all. */
export function configFlags(): Record<string, { type: 'string' }> {
  return Object.fromEntries(Object.values(OPTIONS).map((o) => [o.flag, { type: 'string' as const }]));
}

/** Markdown table of every option, for the README. */
export function configTable(): string {
  const rows = Object.values(OPTIONS).map((o: OptionSpec<unknown>) => {
    const def = o.defaultText ?? (o.default === '' ? '' : String(o.default));
    return `| \`--${o.flag}\` | \`${o.env}\` | ${def === '' ? '' : `\`${def}\``} | ${o.description} |`;
  });
  return ['| Flag | Environment | Default | Meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
