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

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().min(0);

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
  maxFrameBytes: { flag: 'max-frame', env: 'IOTC_MAX_FRAME', default: 65536, parse: positiveInt, description: 'Largest accepted message in bytes' },
  rateLimit: { flag: 'rate-limit', env: 'IOTC_RATE_LIMIT', default: 200, parse: nonNegativeInt, description: 'Messages per second one connection may send (0 = unlimited)' },
  rateBurst: { flag: 'rate-burst', env: 'IOTC_RATE_BURST', default: 400, parse: positiveInt, description: 'Messages a connection may send at once above the rate' },
  apiRateLimit: { flag: 'api-rate-limit', env: 'IOTC_API_RATE_LIMIT', default: 20, parse: nonNegativeInt, description: 'HTTP API requests per second per device key, API token or (for log-in) address (0 = unlimited)' },
  apiRateBurst: { flag: 'api-rate-burst', env: 'IOTC_API_RATE_BURST', default: 60, parse: positiveInt, description: 'HTTP API requests allowed at once above the rate' },
  maxConnectionsPerDevice: { flag: 'max-connections-per-device', env: 'IOTC_MAX_CONNECTIONS_PER_DEVICE', default: 32, parse: positiveInt, description: 'Open connections allowed per device and side' },
  sendQueueBytes: { flag: 'send-queue', env: 'IOTC_SEND_QUEUE', default: 1_048_576, parse: positiveInt, description: 'Bytes queued to a slow receiver before it is disconnected' },
  pingInterval: { flag: 'ping-interval', env: 'IOTC_PING_INTERVAL', default: 25_000, parse: duration, description: 'Keep-alive ping period; a peer silent for two periods is dropped', defaultText: '25s' },
  retentionCount: { flag: 'retention-count', env: 'IOTC_RETENTION_COUNT', default: 10_000, parse: nonNegativeInt, description: 'Readings kept per device; the latest of each sensor is always kept (0 = no limit)' },
  retentionAge: { flag: 'retention-age', env: 'IOTC_RETENTION_AGE', default: 30 * 86_400_000, parse: duration, description: 'Age after which readings are pruned (0 = keep forever)', defaultText: '30d' },
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
  flags: Record<string, string | boolean | undefined> = {},
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Config> = {},
): Config {
  const out: Record<string, unknown> = {};
  const defaulted: Record<string, true> = {};
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
    const parsed = spec.parse.safeParse(raw);
    if (parsed.success) out[key] = parsed.data;
    else problems.push(`${source}=${JSON.stringify(raw)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  const config = out as Config;
  explicitKeys.set(config, new Set(Object.keys(OPTIONS).filter((k) => !(k in defaulted)) as (keyof Config)[]));
  return config;
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
