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
  // 4: automations: rules per device, their alerts, schedule occurrences fired, the delivery queue and log, notifications
  `
  CREATE TABLE rules (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    trigger_json TEXT NOT NULL,
    actions_json TEXT NOT NULL,
    cooldown_ms INTEGER NOT NULL,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_run_at INTEGER,
    last_error TEXT
  );
  CREATE INDEX rules_by_device ON rules(device_id, created_at);
  CREATE INDEX rules_by_user ON rules(user_id);
  CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    rule_id TEXT NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    detail TEXT NOT NULL,
    raised_at INTEGER NOT NULL,
    cleared_at INTEGER,
    acknowledged_at INTEGER
  );
  -- At most one open alert per rule: raising twice (two nodes, two readings) inserts once.
  CREATE UNIQUE INDEX alerts_open ON alerts(rule_id) WHERE cleared_at IS NULL;
  CREATE INDEX alerts_by_device ON alerts(device_id, id);
  CREATE TABLE rule_occurrences (
    rule_id TEXT NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    occurrence INTEGER NOT NULL,
    PRIMARY KEY (rule_id, occurrence)
  ) WITHOUT ROWID;
  CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    rule_id TEXT NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at);
  CREATE INDEX deliveries_by_user ON deliveries(user_id, state);
  CREATE INDEX deliveries_by_device ON deliveries(device_id, id);
  CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    rule_id TEXT,
    text TEXT NOT NULL,
    time INTEGER NOT NULL,
    read INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX notifications_by_user ON notifications(user_id, id);
  `,
  // 5: binary chunks (camera frames, files), bytes kept in the database beside their index (see docs/performance.md)
  `
  CREATE TABLE blobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    sensor TEXT NOT NULL,
    side TEXT NOT NULL,
    type TEXT NOT NULL,
    size INTEGER NOT NULL,
    time INTEGER NOT NULL,
    data BLOB NOT NULL
  );
  CREATE INDEX blobs_by_sensor ON blobs(device_id, sensor, seq);
  CREATE INDEX blobs_by_device ON blobs(device_id, seq);
  `,
  // 6: invitation codes for IOTC_SIGNUP=invite: only their hash is kept; an invite is used once.
  `
  CREATE TABLE invites (
    code_hash TEXT PRIMARY KEY,
    email TEXT COLLATE NOCASE,
    created_at INTEGER NOT NULL,
    used_at INTEGER,
    used_email TEXT
  );
  `,
  // 7: devices shown in Home Assistant by the bridge (iotc device ha ID --on).
  `
  CREATE TABLE ha_devices (
    device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE
  ) WITHOUT ROWID;
  `,
  // 8: devices shared with other accounts (viewer/operator), invitations for emails without an account, public links.
  `
  CREATE TABLE device_shares (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, user_id)
  ) WITHOUT ROWID;
  CREATE INDEX device_shares_by_user ON device_shares(user_id, created_at);
  CREATE TABLE device_invitations (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    email TEXT NOT NULL COLLATE NOCASE,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, email)
  ) WITHOUT ROWID;
  CREATE INDEX device_invitations_by_email ON device_invitations(email);
  CREATE TABLE public_links (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    target TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX public_links_by_target ON public_links(scope, target);
  `,
  // 9: Dashboards: pages of widgets a user arranges; the widgets are one JSON text, written whole.
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
  // 10: The hourly rollup (src/store/rollup.ts): a cache of complete hours filled when charted, and the spans filled.
  // side '' holds both sides together. Rows go with their device (ON DELETE CASCADE); retention forgets hours itself.
  `
  CREATE TABLE reading_hours (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    sensor TEXT NOT NULL,
    side TEXT NOT NULL,
    hour INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    count INTEGER NOT NULL,
    last REAL NOT NULL,
    PRIMARY KEY (device_id, sensor, side, hour)
  ) WITHOUT ROWID;
  CREATE INDEX reading_hours_by_hour ON reading_hours(hour);
  CREATE TABLE reading_hour_spans (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    sensor TEXT NOT NULL,
    side TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    PRIMARY KEY (device_id, sensor, side, lo)
  ) WITHOUT ROWID;
  `,
  // 11: Sync on connect also sends the newest chunk of each sensor: how far each side was served in chunks.
  `
  ALTER TABLE cursors ADD COLUMN blob_seq INTEGER NOT NULL DEFAULT 0;
  `,
  // 12: readings in chunks: one row per device, sensor and side per commit, holding its readings as JSON
  // [[seq,time,value],…] (the value's text as stored). A commit appends its chunks to the journal, which the
  // store moves into reading_chunks; a reading is written once instead of three times (journal insert,
  // readings insert, journal delete). Existing readings become chunks of at most a minute, 1 000 readings and
  // about 4 000 characters.
  // seq is numbered from reading_seq, started above every existing reading. The view readings shows every
  // reading as a row, as the table did (export, backup and ad-hoc queries read it).
  `
  CREATE TABLE reading_chunks (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    sensor TEXT NOT NULL,
    side TEXT NOT NULL,
    seq_from INTEGER NOT NULL,
    seq_to INTEGER NOT NULL,
    time_from INTEGER NOT NULL,
    time_to INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data TEXT NOT NULL
  );
  CREATE TABLE reading_seq (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
  );
  INSERT INTO reading_seq (id, seq) SELECT 1, MAX(
    COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'readings_journal'), 0),
    COALESCE((SELECT MAX(seq) FROM readings), 0),
    COALESCE((SELECT MAX(seq) FROM readings_journal), 0),
    COALESCE((SELECT MAX(seq) FROM latest), 0));
  INSERT INTO reading_chunks (device_id, sensor, side, seq_from, seq_to, time_from, time_to, n, data)
    SELECT device_id, sensor, side, MIN(seq), MAX(seq), MIN(time), MAX(time), COUNT(*),
      '[' || group_concat('[' || seq || ',' || time || ',' || value || ']', ',' ORDER BY seq) || ']'
    FROM (SELECT *, SUM(length(value) + 30) OVER (PARTITION BY device_id, sensor, side ORDER BY seq) / 4000 AS part
      FROM (SELECT seq, device_id, sensor, side, value, time FROM readings
        UNION ALL SELECT seq, device_id, sensor, side, value, time FROM readings_journal))
    GROUP BY device_id, sensor, side, time / 60000, seq / 1000, part;
  DROP TABLE readings;
  DROP TABLE readings_journal;
  CREATE TABLE readings_journal (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    sensor TEXT NOT NULL,
    side TEXT NOT NULL,
    seq_from INTEGER NOT NULL,
    seq_to INTEGER NOT NULL,
    time_from INTEGER NOT NULL,
    time_to INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data TEXT NOT NULL
  );
  CREATE INDEX reading_chunks_by_sensor ON reading_chunks(device_id, sensor, time_from, time_to, side, n);
  CREATE INDEX reading_chunks_by_device ON reading_chunks(device_id, seq_to, seq_from, n);
  CREATE VIEW readings AS
    SELECT e.value ->> 0 AS seq, c.device_id AS device_id, c.sensor AS sensor, c.side AS side, e.value -> 2 AS value, e.value ->> 1 AS time
      FROM reading_chunks c, json_each(c.data) e
    UNION ALL
    SELECT e.value ->> 0 AS seq, c.device_id AS device_id, c.sensor AS sensor, c.side AS side, e.value -> 2 AS value, e.value ->> 1 AS time
      FROM readings_journal c, json_each(c.data) e;
  `,
  // 13: Indexes for the foreign keys that had none: deleting a rule (or the device or account holding it)
  // deletes its alerts and webhook deliveries, and deleting an account its public links; without an index
  // leading with the key, each such delete read the whole hub's table (every account's alerts and deliveries).
  `
  CREATE INDEX alerts_by_rule ON alerts(rule_id);
  CREATE INDEX deliveries_by_rule ON deliveries(rule_id);
  CREATE INDEX public_links_by_user ON public_links(user_id);
  `,
  // 14: A counter of rule changes, kept by triggers, so a node reloads the rules only when one changed (a
  // full reload every second read every rule of the hub: ~0.1 s of the event loop per 10 000 rules). A rule's
  // runs (last_run_at, last_error) do not count: they change nothing a node evaluates.
  `
  CREATE TABLE rule_changes (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
  INSERT INTO rule_changes (id, n) VALUES (1, 0);
  CREATE TRIGGER rule_added AFTER INSERT ON rules BEGIN UPDATE rule_changes SET n = n + 1; END;
  CREATE TRIGGER rule_changed AFTER UPDATE OF id, device_id, user_id, name, enabled, trigger_json, actions_json, cooldown_ms, secret, created_at, updated_at ON rules
    BEGIN UPDATE rule_changes SET n = n + 1; END;
  CREATE TRIGGER rule_removed AFTER DELETE ON rules BEGIN UPDATE rule_changes SET n = n + 1; END;
  `,
  // 15: Log-in attempts per account, kept in the store so that every node (and the CLI) counts against the same
  // bucket: a guesser who reaches several nodes gets no more tries than one. A row lives until its bucket is full
  // again (full_at), when it holds nothing a new bucket would not, and is pruned.
  `
  CREATE TABLE attempt_buckets (
    key TEXT PRIMARY KEY,
    level REAL NOT NULL,
    at INTEGER NOT NULL,
    full_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX attempt_buckets_by_full_at ON attempt_buckets(full_at);
  `,
  // 16: A chunk's weight as byte retention counts it (sqlite-retention.ts: its readings' values' JSON and 24
  // bytes each, from the chunk's text length), computed by SQLite and kept in the device index, so that
  // weighing a device reads the index alone: iterating its chunks' rows held the event loop 100–200 ms for a
  // device at a 64 MiB budget of small readings.
  `
  ALTER TABLE reading_chunks ADD COLUMN weight INTEGER GENERATED ALWAYS AS (octet_length(data) + n * (6 - length(seq_to)) - 1) VIRTUAL;
  DROP INDEX reading_chunks_by_device;
  CREATE INDEX reading_chunks_by_device ON reading_chunks(device_id, seq_to, seq_from, n, weight);
  `,
];
