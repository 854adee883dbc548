//! A virtual key as stored, and LiteLLM's duration strings (`30s`, `10m`, `1h`, `7d`, `1mo`).

use serde::Serialize;
use serde_json::Value;

/// One virtual key. Only the SHA-256 of the key is stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRecord {
    /// Hex SHA-256 of the key; its id in the admin API (`token`).
    pub token: String,
    /// `key_alias`.
    pub key_alias: Option<String>,
    /// First and last characters of the key, for display.
    pub key_name: String,
    /// Allowed model names; empty allows all.
    pub models: Vec<String>,
    /// USD budget; `None` is unlimited.
    pub max_budget: Option<f64>,
    /// Budget period (`30d`, ...); spend resets at its end.
    pub budget_duration: Option<String>,
    /// Unix seconds of the next budget reset.
    pub budget_reset_at: Option<i64>,
    /// Unix seconds of the last budget reset: the current period's start (`None` before the
    /// first reset). Spend charged before it counts in the period that ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_period_start: Option<i64>,
    /// Requests per minute.
    pub rpm_limit: Option<i64>,
    /// Tokens per minute.
    pub tpm_limit: Option<i64>,
    /// Unix seconds after which the key is refused.
    pub expires: Option<i64>,
    /// Free-form metadata.
    pub metadata: Value,
    /// USD spent (as of the last read from the database).
    pub spend: f64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of deletion, if deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
}

impl KeyRecord {
    /// A key with no limits, nothing spent and no metadata, created at `created_at`.
    pub fn unlimited(token: String, key_name: String, created_at: i64) -> Self {
        Self {
            token,
            key_alias: None,
            key_name,
            models: vec![],
            max_budget: None,
            budget_duration: None,
            budget_reset_at: None,
            budget_period_start: None,
            rpm_limit: None,
            tpm_limit: None,
            expires: None,
            metadata: Value::Object(Default::default()),
            spend: 0.0,
            created_at,
            deleted_at: None,
        }
    }
}

/// Seconds in a LiteLLM duration string (`30s`, `10m`, `1h`, `7d`, `1mo`).
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "mo" => 30 * 86_400,
        _ => return None,
    };
    n.checked_mul(mult).filter(|v| *v > 0)
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_litellm() {
        assert_eq!(parse_duration("30s"), Some(30));
        assert_eq!(parse_duration("10m"), Some(600));
        assert_eq!(parse_duration("1h"), Some(3600));
        assert_eq!(parse_duration("7d"), Some(604_800));
        assert_eq!(parse_duration("1mo"), Some(2_592_000));
        for bad in ["", "d", "10", "10x", "-1d", "0s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
