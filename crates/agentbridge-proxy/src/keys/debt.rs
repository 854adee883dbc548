//! What an instance counted while Redis was away (its debt to Redis), and the one atomic
//! transaction that pays it when Redis answers again.

use std::collections::HashMap;

/// Seconds a minute window is kept in Redis.
pub const WINDOW_TTL: i64 = 120;

/// Redis key of a key's request count in one minute.
pub fn rpm_key(token: &str, minute: i64) -> String {
    format!("agentbridge:rpm:{token}:{minute}")
}

/// Redis key of a key's token count in one minute.
pub fn tpm_key(token: &str, minute: i64) -> String {
    format!("agentbridge:tpm:{token}:{minute}")
}

/// Redis key of a key's shared spend.
pub fn spend_key(token: &str) -> String {
    format!("agentbridge:spend:{token}")
}

/// Spend counted here while Redis was away.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OwedSpend {
    /// The key's spend as this instance knew it before the first charge owed: the value to
    /// seed Redis with if it has none.
    pub seed: f64,
    /// USD charged meanwhile.
    pub amount: f64,
    /// Whether the budget period was reset meanwhile (the shared spend then becomes `amount`).
    pub reset: bool,
}

/// What was counted here while Redis was away, to be added to it.
#[derive(Debug, Default, PartialEq)]
pub struct Owed {
    /// Requests per (token, minute).
    pub requests: HashMap<(String, i64), i64>,
    /// Tokens per (token, minute).
    pub tokens: HashMap<(String, i64), i64>,
    /// Spend per token.
    pub spend: HashMap<String, OwedSpend>,
}

impl Owed {
    /// Whether nothing is owed.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.tokens.is_empty() && self.spend.is_empty()
    }

    /// Owes `amount` of spend; `seed` is the key's spend as known before it.
    pub fn add_spend(&mut self, token: &str, amount: f64, seed: f64) {
        self.spend
            .entry(token.to_string())
            .or_insert(OwedSpend {
                seed,
                ..OwedSpend::default()
            })
            .amount += amount;
    }

    /// Puts back a debt that could not be paid, merged with what was owed since.
    pub fn merge(&mut self, older: Owed) {
        for (k, n) in older.requests {
            *self.requests.entry(k).or_default() += n;
        }
        for (k, n) in older.tokens {
            *self.tokens.entry(k).or_default() += n;
        }
        for (k, old) in older.spend {
            match self.spend.get_mut(&k) {
                // A reset since the older debt wipes it out.
                Some(newer) if newer.reset => {}
                Some(newer) => {
                    newer.seed = old.seed;
                    newer.amount += old.amount;
                    newer.reset = old.reset;
                }
                None => {
                    self.spend.insert(k, old);
                }
            }
        }
    }

    /// One atomic transaction that adds the debt to Redis. Windows older than the previous
    /// minute are dropped (they no longer limit anything); spend is left out when Redis lost
    /// its data (`data_lost`), since it is then seeded from the database, which has it.
    pub fn transaction(&self, current_minute: i64, data_lost: bool) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for ((token, m), n) in &self.requests {
            if *m >= current_minute - 1 {
                let key = rpm_key(token, *m);
                pipe.incr(&key, *n)
                    .ignore()
                    .expire(&key, WINDOW_TTL)
                    .ignore();
            }
        }
        for ((token, m), n) in &self.tokens {
            if *m >= current_minute - 1 {
                let key = tpm_key(token, *m);
                pipe.incr(&key, *n)
                    .ignore()
                    .expire(&key, WINDOW_TTL)
                    .ignore();
            }
        }
        for (token, s) in &self.spend {
            let key = spend_key(token);
            if s.reset {
                pipe.set(&key, s.amount).ignore();
            } else if !data_lost {
                pipe.set_nx(&key, s.seed)
                    .ignore()
                    .incr(&key, s.amount)
                    .ignore();
            }
        }
        pipe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owed(requests: i64, amount: f64, reset: bool) -> Owed {
        let mut o = Owed::default();
        o.requests.insert(("k".into(), 7), requests);
        o.spend.insert(
            "k".into(),
            OwedSpend {
                seed: 1.0,
                amount,
                reset,
            },
        );
        o
    }

    #[test]
    fn a_debt_put_back_adds_to_what_was_owed_since() {
        let mut now = owed(2, 0.5, false);
        now.merge(owed(3, 0.25, false));
        assert_eq!(now.requests[&("k".to_string(), 7)], 5);
        assert_eq!(now.spend["k"].amount, 0.75);
    }

    #[test]
    fn a_reset_since_wipes_out_older_owed_spend() {
        let mut now = owed(2, 0.5, true);
        now.merge(owed(3, 0.25, false));
        assert_eq!(now.spend["k"].amount, 0.5);
        assert!(now.spend["k"].reset);
    }

    #[test]
    fn the_transaction_leaves_out_expired_windows_and_lost_spend() {
        let mut o = owed(2, 0.5, false);
        o.requests.insert(("old".into(), 3), 9);
        let packed =
            |p: redis::Pipeline| String::from_utf8_lossy(&p.get_packed_pipeline()).to_string();
        let kept = packed(o.transaction(8, false));
        assert!(
            kept.contains("agentbridge:rpm:k:7") && !kept.contains("rpm:old"),
            "{kept}"
        );
        assert!(kept.contains("agentbridge:spend:k"), "{kept}");
        let lost = packed(o.transaction(8, true));
        assert!(!lost.contains("agentbridge:spend:k"), "{lost}");
    }
}
