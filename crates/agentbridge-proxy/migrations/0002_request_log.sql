-- The request log behind the admin UI (/ui): one row per finished request, never a prompt or
-- an answer; hourly rollups for the overview's charts; the UI's sign-in sessions.
-- Portable between SQLite and PostgreSQL (one schema, one code path).
CREATE TABLE IF NOT EXISTS request_log (
    id            TEXT PRIMARY KEY,
    time_ms       BIGINT NOT NULL,
    key_hash      TEXT NOT NULL,
    key_alias     TEXT,
    model         TEXT NOT NULL,
    door          TEXT NOT NULL,
    deployment    TEXT,
    status        BIGINT NOT NULL,
    latency_ms    DOUBLE PRECISION NOT NULL,
    ttft_ms       DOUBLE PRECISION,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost          DOUBLE PRECISION NOT NULL,
    session       TEXT,
    error_class   TEXT
);

-- Newest first, and newest first within each filter (keyset pagination on (time_ms, id)).
CREATE INDEX IF NOT EXISTS request_log_time ON request_log (time_ms, id);
CREATE INDEX IF NOT EXISTS request_log_key ON request_log (key_hash, time_ms, id);
CREATE INDEX IF NOT EXISTS request_log_model ON request_log (model, time_ms, id);
CREATE INDEX IF NOT EXISTS request_log_status ON request_log (status, time_ms, id);

-- Per hour, key and model: what the overview draws (a day of a busy gateway is a few
-- hundred rows here instead of millions in request_log).
CREATE TABLE IF NOT EXISTS request_rollup (
    hour          BIGINT NOT NULL,
    key_hash      TEXT NOT NULL,
    model         TEXT NOT NULL,
    requests      BIGINT NOT NULL,
    errors        BIGINT NOT NULL,
    spend         DOUBLE PRECISION NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    PRIMARY KEY (hour, key_hash, model)
);

-- Signed-in UI sessions: the SHA-256 of the cookie's value, never the value itself.
CREATE TABLE IF NOT EXISTS ui_sessions (
    id_hash    TEXT PRIMARY KEY,
    csrf       TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
