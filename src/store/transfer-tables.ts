/**
 * What `iotc export` / `iotc import` move, table by table, in an order that satisfies foreign keys.
 * A migration that adds a table or a column must add it here (or to NOT_MOVED, saying why): export and import
 * refuse a table or a column they do not know, rather than leave it behind.
 */
export interface TableSpec {
  name: string;
  columns: readonly string[];
  /** Primary key, for reading in a stable order in batches. */
  key: readonly string[];
  /** Columns filled by the database's own counter (PostgreSQL identity, SQLite AUTOINCREMENT). */
  identity?: string;
}

export const MOVED_TABLES: readonly TableSpec[] = [
  { name: 'users', columns: ['id', 'email', 'name', 'password_hash', 'created_at'], key: ['id'], identity: 'id' },
  { name: 'devices', columns: ['id', 'user_id', 'name', 'key_hash', 'created_at', 'last_seen'], key: ['id'] },
  { name: 'api_tokens', columns: ['id', 'user_id', 'name', 'token_hash', 'created_at', 'last_used'], key: ['id'], identity: 'id' },
  { name: 'invites', columns: ['code_hash', 'email', 'created_at', 'used_at', 'used_email'], key: ['code_hash'] },
  { name: 'ha_devices', columns: ['device_id'], key: ['device_id'] },
  { name: 'web_sessions', columns: ['id_hash', 'user_id', 'csrf_token', 'created_at', 'expires_at'], key: ['id_hash'] },
  // In SQLite, readings is a view over reading_chunks and readings_journal (readings not yet moved): exported
  // one reading a row, and imported into chunks again.
  { name: 'readings', columns: ['seq', 'device_id', 'sensor', 'side', 'value', 'time'], key: ['seq'], identity: 'seq' },
  { name: 'latest', columns: ['device_id', 'sensor', 'side', 'seq', 'value', 'time'], key: ['device_id', 'sensor', 'side'] },
  { name: 'cursors', columns: ['device_id', 'side', 'seq', 'blob_seq'], key: ['device_id', 'side'] },
  { name: 'calls', columns: ['id', 'device_id', 'user_id', 'method', 'params', 'state', 'result', 'error', 'created_at', 'expires_at', 'updated_at'], key: ['id'] },
  { name: 'blobs', columns: ['seq', 'device_id', 'sensor', 'side', 'type', 'size', 'time', 'data'], key: ['seq'], identity: 'seq' },
  { name: 'rules', columns: ['id', 'device_id', 'user_id', 'name', 'enabled', 'trigger_json', 'actions_json', 'cooldown_ms', 'secret', 'created_at', 'updated_at', 'last_run_at', 'last_error'], key: ['id'] },
  { name: 'alerts', columns: ['id', 'rule_id', 'device_id', 'user_id', 'detail', 'raised_at', 'cleared_at', 'acknowledged_at'], key: ['id'], identity: 'id' },
  { name: 'rule_occurrences', columns: ['rule_id', 'occurrence'], key: ['rule_id', 'occurrence'] },
  { name: 'deliveries', columns: ['id', 'user_id', 'rule_id', 'device_id', 'kind', 'target', 'payload', 'state', 'attempts', 'next_attempt_at', 'lease_until', 'last_status', 'last_error', 'created_at', 'updated_at'], key: ['id'], identity: 'id' },
  { name: 'notifications', columns: ['id', 'user_id', 'device_id', 'rule_id', 'text', 'time', 'read'], key: ['id'], identity: 'id' },
  { name: 'device_shares', columns: ['device_id', 'user_id', 'role', 'created_at'], key: ['device_id', 'user_id'] },
  { name: 'device_invitations', columns: ['device_id', 'email', 'role', 'created_at'], key: ['device_id', 'email'] },
  { name: 'public_links', columns: ['id', 'token_hash', 'scope', 'target', 'user_id', 'created_at'], key: ['id'], identity: 'id' },
  { name: 'dashboards', columns: ['id', 'user_id', 'name', 'widgets', 'created_at', 'updated_at'], key: ['id'], identity: 'id' },
];

/** Tables deliberately left behind, and why. */
export const NOT_MOVED: Readonly<Record<string, string>> = {
  presence: 'who is connected now: the running nodes rebuild it',
  attempt_buckets: 'log-in attempts of the last minutes: left behind, each account starts again with its full allowance',
  device_events: 'tells running nodes to close connections; nothing to replay in another store',
  readings_journal: 'exported as part of readings',
  reading_hours: 'a cache of the readings by hour, filled again from them when next charted',
  reading_hour_spans: 'which hours that cache holds: empty with it',
  reading_chunks: 'exported as readings, one reading a row',
  reading_seq: 'set again from the imported readings',
  sqlite_sequence: "SQLite's own counters: set again from the imported rows",
  schema_migrations: "each store's own record of its migrations",
  rule_changes: 'a counter of rule changes that tells running nodes to reload their rules; the imported rules move it',
};

/** The tables of a store that export and import do not know: each one is an error naming it. */
export function unknownTables(present: readonly string[]): string[] {
  return present.filter((t) => !MOVED_TABLES.some((s) => s.name === t) && !(t in NOT_MOVED));
}
