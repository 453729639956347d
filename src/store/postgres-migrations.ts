/**
 * Numbered PostgreSQL migrations. Append only: a released migration is never edited.
 * The schema_migrations table records each one applied; all run in one transaction under an advisory lock,
 * so nodes starting together apply them once.
 *
 * Text columns that are compared or sorted use the "C" collation: byte order, the same as SQLite's,
 * and independent of the database's locale.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  // 1: accounts, devices, readings, latest values, sync cursors, presence, web sessions, API tokens, device events
  `
  CREATE TABLE users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
  );
  CREATE UNIQUE INDEX users_by_email ON users (lower(email));
  CREATE TABLE devices (
    id TEXT COLLATE "C" PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT
  );
  CREATE INDEX devices_by_user ON devices (user_id, created_at, id);
  -- No foreign key to devices: it would cost a lookup per inserted reading; deleteDevice removes them itself.
  CREATE TABLE readings (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id TEXT COLLATE "C" NOT NULL,
    sensor TEXT COLLATE "C" NOT NULL,
    side TEXT COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    time BIGINT NOT NULL
  );
  -- History: one sensor's readings by time, newest or oldest first.
  CREATE INDEX readings_by_sensor ON readings (device_id, sensor, time, seq);
  -- Count-based retention: a device's readings by sequence.
  CREATE INDEX readings_by_device ON readings (device_id, seq);
  -- Latest value per sensor and writer side: gets, sensors and sync-on-connect read only this small table.
  CREATE TABLE latest (
    device_id TEXT COLLATE "C" NOT NULL,
    sensor TEXT COLLATE "C" NOT NULL,
    side TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    value TEXT NOT NULL,
    time BIGINT NOT NULL,
    PRIMARY KEY (device_id, sensor, side)
  );
  CREATE TABLE cursors (
    device_id TEXT COLLATE "C" NOT NULL,
    side TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (device_id, side)
  );
  CREATE TABLE presence (
    node_id TEXT COLLATE "C" NOT NULL,
    device_id TEXT COLLATE "C" NOT NULL,
    side TEXT COLLATE "C" NOT NULL,
    connections INTEGER NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, side, node_id)
  );
  CREATE INDEX presence_by_node ON presence (node_id);
  CREATE INDEX presence_by_expiry ON presence (expires_at);
  CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
  );
  CREATE INDEX web_sessions_by_user ON web_sessions (user_id);
  CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
  CREATE TABLE api_tokens (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used BIGINT
  );
  CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
  -- Key rotations and deletions, polled by every node (and seen by a server beside a CLI that made the change).
  CREATE TABLE device_events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL
  );
  CREATE INDEX device_events_by_time ON device_events (at);
  `,
  // 2: persistent calls to devices (commands that wait while the device is offline), with their state and answer.
  `
  CREATE TABLE calls (
    id TEXT COLLATE "C" PRIMARY KEY,
    device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL,
    method TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    result TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  CREATE INDEX calls_by_device ON calls (device_id, state, created_at);
  CREATE INDEX calls_by_user ON calls (user_id, state);
  CREATE INDEX calls_by_expiry ON calls (state, expires_at);
  `,
  // Dashboards: pages of widgets a user arranges; the widgets are one JSON text, written whole.
  `
  CREATE TABLE dashboards (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    widgets TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  CREATE INDEX dashboards_by_user ON dashboards (user_id, id);
  `,
];
