//! One access line per request (`target: agentbridge::access`, message `completed`), with
//! the [`RequestRecord`]'s fields; as JSON when the log is JSON (see [`crate::observe`]).
//!
//! The session id is here (logs only); prompts, answers and keys never are: the record holds
//! none of them.

use super::RequestRecord;

/// The access lines' log target (filter it with `RUST_LOG=agentbridge::access=off`).
pub const TARGET: &str = "agentbridge::access";

/// Whether access lines are written under the current log filter.
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

/// Writes `rec`'s access line.
pub fn write(rec: &RequestRecord) {
    if !enabled() {
        return;
    }
    tracing::info!(
        target: TARGET,
        time = rec.time,
        request_id = %rec.request_id,
        door = rec.door,
        route = rec.route,
        requested_model = rec.requested_model.as_deref(),
        deployment_id = rec.deployment_id.as_deref(),
        model = rec.litellm_model.as_deref(),
        key_alias = rec.key_alias.as_deref(),
        hashed_key = rec.hashed_key.as_deref(),
        status = rec.status,
        latency = rec.latency,
        api_latency = rec.api_latency,
        time_to_first_token = rec.time_to_first_token,
        input_tokens = rec.input_tokens,
        output_tokens = rec.output_tokens,
        cost = rec.cost,
        session = rec.session.as_deref(),
        stream = rec.stream,
        error_class = rec.error_class.as_deref(),
        "completed"
    );
}
