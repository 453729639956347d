/**
 * Numbered SQLite migrations. Append only: a released migration is never edited.
 * The database's PRAGMA user_version holds the number of the last one applied.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  // 1: accounts, devices, readings, latest values, sync cursors, presence, web sessions, API tokens, device events
  `
  CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen INTEGER
  );
  CREATE INDEX devices_by_user ON devices(user_id, created_at);
  CREATE TABLE readings (
    seq INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    sensor TEXT NOT NULL,
    side TEXT NOT NULL,
    value TEXT NOT NULL,
    time INTEGER NOT NULL
  );
  CREATE INDEX readings_by_sensor ON readings(device_id, sensor, time);
  CREATE INDEX readings_by_device ON readings(device_id, seq);
  CREATE TABLE latest (
    device_id TEXT NOT NULL,
    sensor TEXT NOT NULL,
    side TEXT NOT NULL,
    seq INTEGER NOT NULL,
    value TEXT NOT NULL,
    time INTEGER NOT NULL,
    PRIMARY KEY (device_id, sensor, side)
  ) WITHOUT ROWID;
  CREATE TABLE cursors (
    device_id TEXT NOT NULL,
    side TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (device_id, side)
  ) WITHOUT ROWID;
  CREATE TABLE presence (
    node_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    side TEXT NOT NULL,
    connections INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, side, node_id)
  ) WITHOUT ROWID;
  CREATE INDEX presence_by_node ON presence(node_id);
  -- Key rotations and deletions, so every node (and a server beside a CLI that made the change) can close the
  -- device's live connections by polling this table, whatever bus it has.
  -- Web sessions and personal API tokens: only hashes of the secrets are kept.
  CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX web_sessions_by_user ON web_sessions(user_id);
  CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used INTEGER
  );
  CREATE INDEX api_tokens_by_user ON api_tokens(user_id);
  -- AUTOINCREMENT: numbers are never reused, even after pruning empties the table, so a node that read up to N
  -- never misses the next event.
  CREATE TABLE device_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL
  );
  `,
  // 2: new readings are appended to a journal without secondary indexes, so a commit writes a few pages
  // however many devices it touches; the store moves them into readings (and its indexes) in bulk.
  // AUTOINCREMENT, started above every existing reading, keeps seq unique once the journal empties.
  `
  CREATE TABLE readings_journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    sensor TEXT NOT NULL,
    side TEXT NOT NULL,
    value TEXT NOT NULL,
    time INTEGER NOT NULL
  );
  INSERT INTO sqlite_sequence (name, seq) SELECT 'readings_journal', COALESCE(MAX(seq), 0) FROM readings;
  `,
  // 3: persistent calls to devices (commands that wait while the device is offline), with their state and answer.
  `
  CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL,
    method TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    result TEXT,
    error TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX calls_by_device ON calls(device_id, state, created_at);
  CREATE INDEX calls_by_user ON calls(user_id, state);
  CREATE INDEX calls_by_expiry ON calls(state, expires_at);
  `,
  // Dashboards: pages of widgets a user arranges; the widgets are one JSON text, written whole.
  `
  CREATE TABLE dashboards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    widgets TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX dashboards_by_user ON dashboards(user_id, id);
  `,
];
