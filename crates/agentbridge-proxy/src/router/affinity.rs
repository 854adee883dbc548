//! Session affinity without shared state: weighted rendezvous hashing of the session id over
//! a group's configured deployments. Every instance with the same config maps a session to
//! the same deployment, whatever it knows of their health; a fresh session gets an id that
//! maps to the deployment the strategy chose, so its later turns land there too.

use agentbridge::canonical::AgentRequest;
use agentbridge::return_control::ToolCallRef;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// The session a request continues: a pinned one (`session_id`, `sessionID`, `sessionId`,
/// `runtimeSessionId`; a Responses `previous_response_id` arrives as `session_id`), or the
/// session carried by the tool call ids of its trailing `tool` messages.
pub fn session_of(req: &AgentRequest) -> Option<Cow<'_, str>> {
    if let Some(s) = req.pinned_session() {
        return Some(Cow::Borrowed(s));
    }
    req.messages
        .iter()
        .rev()
        .take_while(|m| m.role == "tool")
        .filter_map(|m| m.tool_call_id.as_deref())
        .find_map(|id| ToolCallRef::decode(id).ok())
        .map(|r| Cow::Owned(r.session_id))
}

/// A group's deployments as rendezvous-hashing seeds.
#[derive(Clone)]
pub struct Ring {
    seeds: Vec<(Sha256, f64)>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("deployments", &self.seeds.len())
            .finish()
    }
}

/// The most tries at finding a session id for a chosen deployment (each succeeds with
/// probability weight / total weight, so this is never reached in practice).
const MAX_TRIES: usize = 4096;

impl Ring {
    /// A ring over deployments `(id, weight)`, in config order.
    pub fn new<'a>(deployments: impl IntoIterator<Item = (&'a str, f64)>) -> Self {
        let seeds = deployments
            .into_iter()
            .map(|(id, w)| {
                let mut h = Sha256::new();
                h.update(id.as_bytes());
                h.update([0u8]);
                (h, w)
            })
            .collect();
        Self { seeds }
    }

    /// The deployment's score for `session` (weighted rendezvous: `w / -ln(u)`).
    fn score(&self, i: usize, session: &str) -> f64 {
        let (seed, w) = &self.seeds[i];
        let digest = seed.clone().chain_update(session.as_bytes()).finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&digest[..8]);
        // u in (0, 1): 53 random bits, never 0.
        let u = ((u64::from_be_bytes(b) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        w / -u.ln()
    }

    /// The deployment holding `session` among those `skip` leaves in (`None` if it leaves
    /// none). With nothing skipped, this is the session's home.
    pub fn owner(&self, session: &str, skip: impl Fn(usize) -> bool) -> Option<usize> {
        (0..self.seeds.len())
            .filter(|&i| !skip(i))
            .map(|i| (i, self.score(i, session)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    /// A fresh session id (a UUID) whose home is deployment `target`.
    pub fn session_for(&self, target: usize) -> String {
        let mut id = uuid::Uuid::new_v4().to_string();
        for _ in 0..MAX_TRIES {
            if self.owner(&id, |_| false) == Some(target) {
                break;
            }
            id = uuid::Uuid::new_v4().to_string();
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentbridge::Message;
    use serde_json::json;

    fn ring(ws: &[f64]) -> Ring {
        let ids: Vec<String> = (0..ws.len()).map(|i| format!("agents/{i}")).collect();
        Ring::new(ids.iter().map(String::as_str).zip(ws.iter().copied()))
    }

    #[test]
    fn a_session_has_one_home_on_every_instance() {
        let (a, b) = (ring(&[1.0, 1.0, 1.0]), ring(&[1.0, 1.0, 1.0]));
        for i in 0..500 {
            let s = format!("session-{i}");
            assert_eq!(a.owner(&s, |_| false), b.owner(&s, |_| false));
        }
    }

    #[test]
    fn sessions_spread_by_weight() {
        let r = ring(&[1.0, 1.0, 2.0]);
        let mut counts = [0u32; 3];
        for i in 0..8000 {
            if let Some(o) = r.owner(&format!("s{i}"), |_| false) {
                counts[o] += 1;
            }
        }
        // Expected 2000, 2000, 4000; binomial spread is about 45.
        assert!((1800..2200).contains(&counts[0]), "{counts:?}");
        assert!((1800..2200).contains(&counts[1]), "{counts:?}");
        assert!((3700..4300).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn skipping_the_home_moves_only_its_sessions() {
        let r = ring(&[1.0, 1.0, 1.0]);
        for i in 0..300 {
            let s = format!("s{i}");
            let home = r.owner(&s, |_| false);
            let without_1 = r.owner(&s, |i| i == 1);
            if home != Some(1) {
                assert_eq!(home, without_1, "a session not on 1 stays put");
            } else {
                assert_ne!(without_1, Some(1));
            }
        }
        assert_eq!(r.owner("s", |_| true), None);
    }

    #[test]
    fn fresh_sessions_are_made_for_the_chosen_deployment() {
        let r = ring(&[5.0, 1.0, 1.0]);
        for target in 0..3 {
            for _ in 0..20 {
                let s = r.session_for(target);
                assert_eq!(r.owner(&s, |_| false), Some(target));
                assert!(uuid::Uuid::parse_str(&s).is_ok());
            }
        }
    }

    #[test]
    fn the_session_comes_from_params_or_from_trailing_tool_calls() {
        let mut req = AgentRequest::new(vec![Message::new("user", "hi")]);
        assert!(session_of(&req).is_none());
        req.params.insert("sessionId".into(), json!("pinned-1"));
        assert_eq!(session_of(&req).as_deref(), Some("pinned-1"));
        let id = ToolCallRef {
            session_id: "from-tool".into(),
            invocation_id: "inv".into(),
            action_group: "g".into(),
            function: Some("f".into()),
            api_path: None,
            http_method: None,
            agent_id: None,
        }
        .encode();
        let mut tool = Message::new("tool", "sunny");
        tool.tool_call_id = Some(id);
        let req = AgentRequest::new(vec![Message::new("user", "weather?"), tool]);
        assert_eq!(session_of(&req).as_deref(), Some("from-tool"));
    }
}
