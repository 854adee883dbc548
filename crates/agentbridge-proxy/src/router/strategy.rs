//! LiteLLM's routing strategies, as pure choices over a snapshot of the candidates: which
//! deployment of a group takes a fresh session. (Pinned sessions never get here: they go to
//! the deployment that holds them, see [`super::affinity`].)

/// `routing_strategy`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// `simple-shuffle` (default): random, weighted by `weight` (else `rpm`, else `tpm`).
    SimpleShuffle,
    /// `least-busy`: the fewest requests in flight on this instance.
    LeastBusy,
    /// `latency-based-routing`: the lowest average time until the agent starts answering;
    /// deployments within `lowest_latency_buffer` (a fraction) of the best share the load.
    LatencyBased {
        /// `routing_strategy_args.lowest_latency_buffer` (default 0).
        buffer: f64,
    },
    /// `usage-based-routing` (and `-v2`): deployments at their `rpm`/`tpm` cap for this
    /// minute are left out; of the others, the lowest token usage this minute.
    UsageBased,
}

impl Strategy {
    /// Reads LiteLLM's strategy name.
    pub fn from_name(name: &str) -> Result<Self, String> {
        Ok(match name {
            "simple-shuffle" => Self::SimpleShuffle,
            "least-busy" => Self::LeastBusy,
            "latency-based-routing" => Self::LatencyBased { buffer: 0.0 },
            "usage-based-routing" | "usage-based-routing-v2" => Self::UsageBased,
            other => {
                return Err(format!(
                    "{other:?} is not supported; expected simple-shuffle, least-busy, latency-based-routing or usage-based-routing"
                ));
            }
        })
    }

    /// The name in LiteLLM's terms.
    pub fn name(self) -> &'static str {
        match self {
            Self::SimpleShuffle => "simple-shuffle",
            Self::LeastBusy => "least-busy",
            Self::LatencyBased { .. } => "latency-based-routing",
            Self::UsageBased => "usage-based-routing",
        }
    }

    /// Sets the latency buffer (only meaningful for latency-based routing).
    pub fn set_buffer(&mut self, b: f64) {
        if let Self::LatencyBased { buffer } = self {
            *buffer = b;
        }
    }

    /// Whether the strategy reads in-flight counts and usage (so calls must be tracked to
    /// their end).
    pub fn tracks_calls(self) -> bool {
        matches!(self, Self::LeastBusy | Self::UsageBased)
    }
}

/// What a strategy knows about one eligible deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Candidate {
    /// Index of the deployment in its group.
    pub index: usize,
    /// Share for `simple-shuffle` (positive).
    pub weight: f64,
    /// Requests in flight on this instance.
    pub in_flight: u64,
    /// Average microseconds until the agent started answering; 0 when not yet measured.
    pub latency_us: u64,
    /// Requests this minute (every instance's, when shared through Redis).
    pub rpm_used: u64,
    /// Tokens this minute.
    pub tpm_used: u64,
    /// `rpm` cap.
    pub rpm: Option<u64>,
    /// `tpm` cap.
    pub tpm: Option<u64>,
}

impl Candidate {
    /// Whether the deployment is below its caps for this minute.
    pub fn under_caps(&self) -> bool {
        self.rpm.is_none_or(|cap| self.rpm_used < cap)
            && self.tpm.is_none_or(|cap| self.tpm_used < cap)
    }
}

/// Chooses one of `cands` (all eligible: available, not yet tried) for a fresh session;
/// `r` is uniform in `[0, 1)` and breaks ties. `None` when no candidate may take it.
pub fn choose(strategy: Strategy, cands: &[Candidate], r: f64) -> Option<usize> {
    match strategy {
        Strategy::SimpleShuffle => weighted(cands, r),
        Strategy::LeastBusy => {
            let least = cands.iter().map(|c| c.in_flight).min()?;
            pick_among(cands, r, |c| c.in_flight == least)
        }
        Strategy::LatencyBased { buffer } => {
            if cands.iter().any(|c| c.latency_us == 0) {
                // Measure every deployment before comparing them.
                return pick_among(cands, r, |c| c.latency_us == 0);
            }
            let best = cands.iter().map(|c| c.latency_us).min()? as f64;
            let limit = best * (1.0 + buffer);
            pick_among(cands, r, |c| c.latency_us as f64 <= limit)
        }
        Strategy::UsageBased => {
            let open: Vec<Candidate> = cands
                .iter()
                .copied()
                .filter(Candidate::under_caps)
                .collect();
            let least = open.iter().map(|c| (c.tpm_used, c.rpm_used)).min()?;
            pick_among(&open, r, |c| (c.tpm_used, c.rpm_used) == least)
        }
    }
}

fn weighted(cands: &[Candidate], r: f64) -> Option<usize> {
    let total: f64 = cands.iter().map(|c| c.weight).sum();
    let mut point = r * total;
    for c in cands {
        if point < c.weight {
            return Some(c.index);
        }
        point -= c.weight;
    }
    cands.last().map(|c| c.index)
}

fn pick_among(cands: &[Candidate], r: f64, keep: impl Fn(&Candidate) -> bool) -> Option<usize> {
    let n = cands.iter().filter(|c| keep(c)).count();
    if n == 0 {
        return None;
    }
    let k = ((r * n as f64) as usize).min(n - 1);
    cands.iter().filter(|c| keep(c)).nth(k).map(|c| c.index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(index: usize) -> Candidate {
        Candidate {
            index,
            weight: 1.0,
            ..Default::default()
        }
    }

    #[test]
    fn simple_shuffle_follows_the_weights() {
        let mut c = vec![cand(0), cand(1)];
        c[0].weight = 9.0;
        c[1].weight = 1.0;
        let picks: Vec<usize> = (0..1000)
            .filter_map(|i| choose(Strategy::SimpleShuffle, &c, i as f64 / 1000.0))
            .collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 900);
        assert_eq!(picks.iter().filter(|&&i| i == 1).count(), 100);
    }

    #[test]
    fn least_busy_takes_the_fewest_in_flight() {
        let mut c = vec![cand(0), cand(1), cand(2)];
        c[0].in_flight = 4;
        c[1].in_flight = 1;
        c[2].in_flight = 3;
        for r in [0.0, 0.5, 0.99] {
            assert_eq!(choose(Strategy::LeastBusy, &c, r), Some(1));
        }
        c[2].in_flight = 1;
        assert_eq!(choose(Strategy::LeastBusy, &c, 0.0), Some(1));
        assert_eq!(choose(Strategy::LeastBusy, &c, 0.9), Some(2));
    }

    #[test]
    fn latency_measures_everyone_then_prefers_the_fastest_within_the_buffer() {
        let mut c = vec![cand(0), cand(1), cand(2)];
        c[0].latency_us = 100;
        c[1].latency_us = 0;
        c[2].latency_us = 130;
        let fast = Strategy::LatencyBased { buffer: 0.0 };
        assert_eq!(choose(fast, &c, 0.7), Some(1), "the unmeasured one first");
        c[1].latency_us = 500;
        assert_eq!(choose(fast, &c, 0.99), Some(0));
        let buffered = Strategy::LatencyBased { buffer: 0.5 };
        assert_eq!(choose(buffered, &c, 0.0), Some(0));
        assert_eq!(choose(buffered, &c, 0.99), Some(2));
    }

    #[test]
    fn usage_based_skips_capped_deployments_and_takes_the_least_used() {
        let mut c = vec![cand(0), cand(1), cand(2)];
        c[0].rpm = Some(10);
        c[0].rpm_used = 10;
        c[1].tpm_used = 500;
        c[2].tpm_used = 200;
        c[2].tpm = Some(200);
        assert_eq!(choose(Strategy::UsageBased, &c, 0.3), Some(1));
        c[2].tpm = Some(1000);
        assert_eq!(choose(Strategy::UsageBased, &c, 0.3), Some(2));
        c[1].rpm = Some(1);
        c[1].rpm_used = 1;
        c[2].tpm_used = 1000;
        assert_eq!(choose(Strategy::UsageBased, &c, 0.3), None, "all capped");
    }

    #[test]
    fn names_are_litellms() {
        for n in [
            "simple-shuffle",
            "least-busy",
            "latency-based-routing",
            "usage-based-routing",
        ] {
            assert_eq!(Strategy::from_name(n).map(Strategy::name), Ok(n));
        }
        assert!(Strategy::from_name("cost-based-routing").is_err());
    }
}
