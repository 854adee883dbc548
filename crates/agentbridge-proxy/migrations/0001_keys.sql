-- Virtual keys and spend. Portable between SQLite and PostgreSQL (one schema, one code path).
CREATE TABLE IF NOT EXISTS virtual_keys (
    key_hash        TEXT PRIMARY KEY,
    key_alias       TEXT,
    key_prefix      TEXT NOT NULL,
    models          TEXT NOT NULL,
    max_budget      DOUBLE PRECISION,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    rpm_limit       BIGINT,
    tpm_limit       BIGINT,
    expires_at      BIGINT,
    metadata        TEXT NOT NULL,
    spend           DOUBLE PRECISION NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    deleted_at      BIGINT
);

CREATE TABLE IF NOT EXISTS spend_logs (
    request_id        TEXT PRIMARY KEY,
    key_hash          TEXT NOT NULL,
    model             TEXT NOT NULL,
    spend             DOUBLE PRECISION NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    created_at        BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS spend_logs_key ON spend_logs (key_hash);
CREATE INDEX IF NOT EXISTS spend_logs_model ON spend_logs (model);
