//! Each deployment's state as this instance sees it: calls in flight, latency, usage this
//! minute, failures, cooldown and last error. Atomics on the request path; the one lock is
//! the last error's, taken only on failures and by `GET /health`.

use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Milliseconds since the Unix epoch (cooldowns are shared between instances as wall time).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The last failure seen.
#[derive(Debug, Clone)]
pub struct LastError {
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// The error's code (`ThrottlingException`, `upstream_unreachable`, ...).
    pub code: String,
    /// Its message.
    pub message: String,
}

/// One deployment's counters.
#[derive(Debug, Default)]
pub struct Health {
    in_flight: AtomicU64,
    latency_us: AtomicU64,
    /// The minute (since the epoch) the usage and failure counts below belong to.
    minute: AtomicU64,
    requests: AtomicU64,
    tokens: AtomicU64,
    fails: AtomicU64,
    /// Every instance's usage this minute, as last read from Redis.
    shared_minute: AtomicU64,
    shared_requests: AtomicU64,
    shared_tokens: AtomicU64,
    cooldown_until_ms: AtomicU64,
    last_error: Mutex<Option<LastError>>,
}

impl Health {
    fn roll(&self, now_ms: u64) {
        let minute = now_ms / 60_000;
        let seen = self.minute.load(Relaxed);
        if seen != minute
            && self
                .minute
                .compare_exchange(seen, minute, Relaxed, Relaxed)
                .is_ok()
        {
            self.requests.store(0, Relaxed);
            self.tokens.store(0, Relaxed);
            self.fails.store(0, Relaxed);
        }
    }

    /// Whether the deployment takes requests (not cooling down) at `now_ms`.
    pub fn available(&self, now_ms: u64) -> bool {
        self.cooldown_until_ms.load(Relaxed) <= now_ms
    }

    /// Cooling down until (ms since the epoch), if it is.
    pub fn cooling_until(&self, now_ms: u64) -> Option<u64> {
        let t = self.cooldown_until_ms.load(Relaxed);
        (t > now_ms).then_some(t)
    }

    /// A call is sent: counts it this minute (and in flight when `tracked`).
    pub fn begin(&self, now_ms: u64, tracked: bool) {
        self.roll(now_ms);
        self.requests.fetch_add(1, Relaxed);
        if tracked {
            self.in_flight.fetch_add(1, Relaxed);
        }
    }

    /// A tracked call ended (its answer finished, failed or was dropped).
    pub fn end(&self) {
        let _ = self
            .in_flight
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// Adds tokens an answer used.
    pub fn add_tokens(&self, n: u64) {
        self.tokens.fetch_add(n, Relaxed);
    }

    /// Records how long the agent took to start answering (moving average).
    pub fn note_latency(&self, us: u64) {
        let us = us.max(1);
        let old = self.latency_us.load(Relaxed);
        let new = if old == 0 { us } else { (old * 7 + us) / 8 };
        self.latency_us.store(new, Relaxed);
    }

    /// Records a failure; returns the end of a cooldown it starts, when this failure is one
    /// more than `allowed_fails` this minute (`cooldown_ms` 0: never).
    pub fn fail(
        &self,
        now_ms: u64,
        e: &agentbridge::Error,
        allowed_fails: u32,
        cooldown_ms: u64,
    ) -> Option<u64> {
        self.note_error(now_ms, e);
        if cooldown_ms == 0 {
            return None;
        }
        self.roll(now_ms);
        let n = self.fails.fetch_add(1, Relaxed) + 1;
        if n > allowed_fails as u64 {
            self.fails.store(0, Relaxed);
            let until = now_ms + cooldown_ms;
            self.cool_until(until);
            return Some(until);
        }
        None
    }

    /// Records the last error without counting it towards a cooldown.
    pub fn note_error(&self, now_ms: u64, e: &agentbridge::Error) {
        if let Ok(mut l) = self.last_error.lock() {
            *l = Some(LastError {
                at_ms: now_ms,
                code: e.code(),
                message: e.to_string(),
            });
        }
    }

    /// Takes the deployment out until `until_ms` (a cooldown seen here or on another
    /// instance); an earlier end never shortens one in force.
    pub fn cool_until(&self, until_ms: u64) {
        self.cooldown_until_ms.fetch_max(until_ms, Relaxed);
    }

    /// Stores every instance's usage in `minute`, as read from (or counted in) Redis.
    pub fn set_shared(&self, minute: u64, requests: u64, tokens: u64) {
        if self.shared_minute.swap(minute, Relaxed) != minute {
            self.shared_requests.store(requests, Relaxed);
            self.shared_tokens.store(tokens, Relaxed);
        } else {
            self.shared_requests.fetch_max(requests, Relaxed);
            self.shared_tokens.fetch_max(tokens, Relaxed);
        }
    }

    /// Requests and tokens this minute: this instance's, or every instance's when Redis
    /// reported more.
    pub fn usage(&self, now_ms: u64) -> (u64, u64) {
        self.roll(now_ms);
        let minute = now_ms / 60_000;
        let (mut r, mut t) = (self.requests.load(Relaxed), self.tokens.load(Relaxed));
        if self.shared_minute.load(Relaxed) == minute {
            r = r.max(self.shared_requests.load(Relaxed));
            t = t.max(self.shared_tokens.load(Relaxed));
        }
        (r, t)
    }

    /// Calls in flight on this instance.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    /// Average microseconds until the agent started answering (0: not measured).
    pub fn latency_us(&self) -> u64 {
        self.latency_us.load(Relaxed)
    }

    /// The state for `GET /health`.
    pub fn report(&self, now_ms: u64) -> Value {
        let (requests, tokens) = self.usage(now_ms);
        let last = self.last_error.lock().ok().and_then(|l| l.clone());
        let cooling = self.cooling_until(now_ms);
        json!({
            "state": if cooling.is_some() { "cooling_down" } else { "healthy" },
            "cooldown_until": cooling.map(rfc3339),
            "last_error": last.map(|l| json!({"at": rfc3339(l.at_ms), "code": l.code, "message": l.message})),
            "in_flight": self.in_flight(),
            "requests_this_minute": requests,
            "tokens_this_minute": tokens,
            "latency_ms": (self.latency_us() > 0).then(|| self.latency_us() as f64 / 1000.0),
        })
    }
}

/// `ms` since the epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> agentbridge::Error {
        agentbridge::Error::Aws {
            kind: agentbridge::error::AwsErrorKind::Throttling,
            code: "ThrottlingException".into(),
            message: "slow down".into(),
            retry_after: None,
        }
    }

    #[test]
    fn more_fails_than_allowed_in_a_minute_cool_the_deployment_down() {
        let h = Health::default();
        let t = 1_800_000_000_000;
        assert_eq!(h.fail(t, &throttle(), 2, 5000), None);
        assert_eq!(h.fail(t, &throttle(), 2, 5000), None);
        assert!(h.available(t));
        assert_eq!(h.fail(t + 1, &throttle(), 2, 5000), Some(t + 5001));
        assert!(!h.available(t + 5000));
        assert!(h.available(t + 5001), "back after the cooldown");
        assert_eq!(h.report(t + 10)["state"], "cooling_down");
        assert_eq!(
            h.report(t + 10)["last_error"]["code"],
            "ThrottlingException"
        );
    }

    #[test]
    fn fails_of_an_earlier_minute_do_not_count() {
        let h = Health::default();
        let t = 1_800_000_000_000; // a whole minute
        assert_eq!(h.fail(t, &throttle(), 1, 5000), None);
        assert_eq!(h.fail(t + 60_000, &throttle(), 1, 5000), None);
    }

    #[test]
    fn usage_is_the_larger_of_local_and_shared_counts() {
        let h = Health::default();
        let t = 1_800_000_000_000;
        h.begin(t, false);
        h.add_tokens(40);
        assert_eq!(h.usage(t), (1, 40));
        h.set_shared(t / 60_000, 7, 10);
        assert_eq!(h.usage(t), (7, 40));
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
    }
}
