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
  // 3: automations: rules per device, their alerts, schedule occurrences fired, the delivery queue and log, notifications
  `
  CREATE TABLE rules (
    id TEXT COLLATE "C" PRIMARY KEY,
    device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    trigger_json TEXT NOT NULL,
    actions_json TEXT NOT NULL,
    cooldown_ms BIGINT NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_run_at BIGINT,
    last_error TEXT
  );
  CREATE INDEX rules_by_device ON rules(device_id, created_at);
  CREATE INDEX rules_by_user ON rules(user_id);
  CREATE TABLE alerts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id TEXT COLLATE "C" NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    device_id TEXT COLLATE "C" NOT NULL,
    user_id BIGINT NOT NULL,
    detail TEXT NOT NULL,
    raised_at BIGINT NOT NULL,
    cleared_at BIGINT,
    acknowledged_at BIGINT
  );
  -- At most one open alert per rule: raising twice (two nodes, two readings) inserts once.
  CREATE UNIQUE INDEX alerts_open ON alerts(rule_id) WHERE cleared_at IS NULL;
  CREATE INDEX alerts_by_device ON alerts(device_id, id);
  CREATE TABLE rule_occurrences (
    rule_id TEXT COLLATE "C" NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    occurrence BIGINT NOT NULL,
    PRIMARY KEY (rule_id, occurrence)
  );
  CREATE TABLE deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL,
    rule_id TEXT COLLATE "C" NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    device_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at);
  CREATE INDEX deliveries_by_user ON deliveries(user_id, state);
  CREATE INDEX deliveries_by_device ON deliveries(device_id, id);
  CREATE TABLE notifications (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_id TEXT COLLATE "C" NOT NULL,
    rule_id TEXT,
    text TEXT NOT NULL,
    time BIGINT NOT NULL,
    read BOOLEAN NOT NULL DEFAULT false
  );
  CREATE INDEX notifications_by_user ON notifications(user_id, id);
  `,
  // 4: binary chunks (camera frames, files), bytes kept in the database beside their index (see docs/performance.md)
  `
  CREATE TABLE blobs (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id TEXT COLLATE "C" NOT NULL,
    sensor TEXT COLLATE "C" NOT NULL,
    side TEXT COLLATE "C" NOT NULL,
    type TEXT NOT NULL,
    size INTEGER NOT NULL,
    time BIGINT NOT NULL,
    data BYTEA NOT NULL
  );
  -- Frames are already compressed (JPEG): no TOAST compression attempts.
  ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;
  CREATE INDEX blobs_by_sensor ON blobs (device_id, sensor, seq);
  CREATE INDEX blobs_by_device ON blobs (device_id, seq);
  `,
  // 5: invitation codes for IOTC_SIGNUP=invite: only their hash is kept; an invite is used once.
  `
  CREATE TABLE invites (
    code_hash TEXT PRIMARY KEY,
    email TEXT,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    used_email TEXT
  );
  `,
  // 6: devices shown in Home Assistant by the bridge (iotc device ha ID --on).
  `
  CREATE TABLE ha_devices (
    device_id TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE
  );
  `,
  // 7: devices shared with other accounts (viewer/operator), invitations for emails without an account, public links.
  `
  CREATE TABLE device_shares (
    device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, user_id)
  );
  CREATE INDEX device_shares_by_user ON device_shares (user_id, created_at);
  CREATE TABLE device_invitations (
    device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, email)
  );
  CREATE INDEX device_invitations_by_email ON device_invitations (email);
  CREATE TABLE public_links (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    target TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
  );
  CREATE INDEX public_links_by_target ON public_links (scope, target);
  `,
  // 8: Dashboards: pages of widgets a user arranges; the widgets are one JSON text, written whole.
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
  // 9: The hourly rollup (src/store/rollup.ts): a cache of complete hours filled when charted, and the spans filled.
  // side '' holds both sides together. Rows go with their device (ON DELETE CASCADE); retention forgets hours itself.
  `
  CREATE TABLE reading_hours (
    device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    sensor TEXT COLLATE "C" NOT NULL,
    side TEXT NOT NULL,
    hour BIGINT NOT NULL,
    min DOUBLE PRECISION NOT NULL,
    max DOUBLE PRECISION NOT NULL,
    sum DOUBLE PRECISION NOT NULL,
    count BIGINT NOT NULL,
    last DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (device_id, sensor, side, hour)
  );
  CREATE INDEX reading_hours_by_hour ON reading_hours (hour);
  CREATE TABLE reading_hour_spans (
    device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    sensor TEXT COLLATE "C" NOT NULL,
    side TEXT NOT NULL,
    lo BIGINT NOT NULL,
    hi BIGINT NOT NULL,
    PRIMARY KEY (device_id, sensor, side, lo)
  );
  `,
  // 10: Sync on connect also sends the newest chunk of each sensor: how far each side was served in chunks.
  `
  ALTER TABLE cursors ADD COLUMN blob_seq BIGINT NOT NULL DEFAULT 0;
  `,
  // 11: Indexes for the foreign keys that had none: deleting a rule (or the device or account holding it)
  // deletes its alerts and webhook deliveries, and deleting an account its public links; without an index
  // leading with the key, each such delete read the whole hub's table (every account's alerts and deliveries).
  `
  CREATE INDEX alerts_by_rule ON alerts(rule_id);
  CREATE INDEX deliveries_by_rule ON deliveries(rule_id);
  CREATE INDEX public_links_by_user ON public_links(user_id);
  `,
  // 12: A counter of rule changes, kept by triggers, so a node reloads the rules only when one changed (a
  // full reload every second read every rule of the hub). A rule's runs (last_run_at, last_error) do not count.
  // One bump per statement: a device's deletion takes all its rules in one.
  `
  CREATE TABLE rule_changes (id INT PRIMARY KEY CHECK (id = 1), n BIGINT NOT NULL);
  INSERT INTO rule_changes (id, n) VALUES (1, 0);
  -- SET search_path FROM CURRENT: the counter of this schema, whichever session changes its rules.
  CREATE FUNCTION count_rule_change() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN UPDATE rule_changes SET n = n + 1; RETURN NULL; END $$;
  CREATE TRIGGER rule_added AFTER INSERT ON rules FOR EACH STATEMENT EXECUTE FUNCTION count_rule_change();
  CREATE TRIGGER rule_changed AFTER UPDATE OF id, device_id, user_id, name, enabled, trigger_json, actions_json, cooldown_ms, secret, created_at, updated_at ON rules
    FOR EACH STATEMENT EXECUTE FUNCTION count_rule_change();
  CREATE TRIGGER rule_removed AFTER DELETE ON rules FOR EACH STATEMENT EXECUTE FUNCTION count_rule_change();
  `,
  // 13: Log-in attempts per account, kept in the store so that every node counts against the same bucket: a
  // guesser who reaches several nodes gets no more tries than one. A row lives until its bucket is full again
  // (full_at), when it holds nothing a new bucket would not, and is pruned.
  `
  CREATE TABLE attempt_buckets (
    key TEXT COLLATE "C" PRIMARY KEY,
    level DOUBLE PRECISION NOT NULL,
    at BIGINT NOT NULL,
    full_at BIGINT NOT NULL
  );
  CREATE INDEX attempt_buckets_by_full_at ON attempt_buckets(full_at);
  `,
];
