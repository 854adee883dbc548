//! What the router tells about its deployments: `GET /health`, and the error when none can
//! take a request.

use super::health::{self, now_ms};
use super::{Group, Router};
use crate::error::ProxyError;
use serde_json::{Value, json};

impl Router {
    pub(super) fn unavailable(&self, g: &Group, now: u64) -> ProxyError {
        let until = g
            .members
            .iter()
            .filter_map(|m| m.health.cooling_until(now))
            .min();
        ProxyError::Unavailable(match until {
            Some(t) => format!(
                "no deployment of model {} can take the request: all are cooling down or at their rpm/tpm limits (the first back at {})",
                g.name,
                health::rfc3339(t)
            ),
            None => format!(
                "no deployment of model {} can take the request: all are at their rpm/tpm limits for this minute",
                g.name
            ),
        })
    }

    /// `GET /health`: every deployment's state, without calling any agent.
    pub fn report(&self, groups: &[(String, Group)]) -> Value {
        let now = now_ms();
        let mut healthy = Vec::new();
        let mut unhealthy = Vec::new();
        for (_, g) in groups {
            for m in &g.members {
                let mut r = m.health.report(now);
                if let Some(o) = r.as_object_mut() {
                    o.insert("model_name".into(), json!(g.name));
                    o.insert("model_id".into(), json!(&*m.id));
                    o.insert("model".into(), json!(m.deployment.settings.target.model()));
                    o.insert("api_base".into(), json!(m.deployment.endpoint));
                }
                if r["state"] == "healthy" {
                    healthy.push(r)
                } else {
                    unhealthy.push(r)
                }
            }
        }
        json!({
            "healthy_count": healthy.len(),
            "unhealthy_count": unhealthy.len(),
            "healthy_endpoints": healthy,
            "unhealthy_endpoints": unhealthy,
            "routing_strategy": self.settings.strategy.name(),
            "shared_state": match &self.shared {
                None => "none",
                Some(s) if s.healthy() => "redis",
                Some(_) => "redis unreachable: per instance",
            },
        })
    }
}
