-- When a key's current budget period began (Unix seconds of its last reset; NULL before the
-- first). A call's spend counts in the period it was charged in: a batch of spend logs
-- written after a reset adds only the logs charged since the reset to the key's spend (the
-- older ones were charged in the period that ended; their logs are kept).
ALTER TABLE virtual_keys ADD COLUMN budget_period_start BIGINT;
