//! Agent model names: `bedrock/agent/{AGENT_ID}/{ALIAS_ID}`.

use crate::error::{Error, Result};
use std::fmt;

const EXPECTED: &str =
    "bedrock/agent/{AGENT_ID}/{ALIAS_ID} with IDs of 1-10 ASCII letters or digits";

/// A parsed agent model name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentModel {
    /// The agent ID (`[0-9a-zA-Z]{1,10}`).
    pub agent_id: String,
    /// The agent alias ID (`[0-9a-zA-Z]{1,10}`).
    pub alias_id: String,
}

impl AgentModel {
    /// Parses `bedrock/agent/ID/ALIAS` or, with the provider prefix stripped, `agent/ID/ALIAS`.
    ///
    /// ```
    /// let m = agentbridge::AgentModel::parse("bedrock/agent/L1RT58GYRW/MFPSBCXYTW").unwrap();
    /// assert_eq!(m.agent_id, "L1RT58GYRW");
    /// assert!(agentbridge::AgentModel::parse("bedrock/agent/bad-id/X").is_err());
    /// ```
    pub fn parse(model: &str) -> Result<Self> {
        let invalid = || Error::InvalidModel {
            got: model.to_string(),
            expected: EXPECTED,
        };
        let rest = model.strip_prefix("bedrock/").unwrap_or(model);
        let rest = rest.strip_prefix("agent/").ok_or_else(invalid)?;
        let mut parts = rest.split('/');
        let (Some(agent), Some(alias), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid());
        };
        if !is_aws_id(agent) || !is_aws_id(alias) {
            return Err(invalid());
        }
        Ok(Self {
            agent_id: agent.to_string(),
            alias_id: alias.to_string(),
        })
    }
}

impl fmt::Display for AgentModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bedrock/agent/{}/{}", self.agent_id, self.alias_id)
    }
}

/// `^[0-9a-zA-Z]{1,10}$`, the API model's pattern for agent and alias IDs.
pub fn is_aws_id(s: &str) -> bool {
    (1..=10).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `^[0-9a-zA-Z._:-]{2,100}$`, the API model's pattern for session and memory IDs.
pub fn is_session_id(s: &str) -> bool {
    (2..=100).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_both_spellings() {
        for s in [
            "bedrock/agent/L1RT58GYRW/MFPSBCXYTW",
            "agent/L1RT58GYRW/MFPSBCXYTW",
        ] {
            let m = AgentModel::parse(s).unwrap();
            assert_eq!(
                (m.agent_id.as_str(), m.alias_id.as_str()),
                ("L1RT58GYRW", "MFPSBCXYTW")
            );
        }
        assert_eq!(
            AgentModel::parse("bedrock/agent/ABCD1234/LIVE")
                .unwrap()
                .alias_id,
            "LIVE"
        );
    }

    #[test]
    fn rejects_malformed_names_saying_what_was_expected() {
        for s in [
            "",
            "bedrock/agent/",
            "bedrock/agent/ONLYONE",
            "bedrock/agent/A/B/C",
            "bedrock/agent/ABCDEFGHIJK/LIVE",
            "bedrock/agent/AB-CD/LIVE",
            "bedrock/agent//LIVE",
            "bedrock/anthropic.claude-v2",
            "agent/A/",
        ] {
            let err = AgentModel::parse(s).unwrap_err();
            assert!(
                err.to_string()
                    .contains("bedrock/agent/{AGENT_ID}/{ALIAS_ID}"),
                "{s}: {err}"
            );
            assert_eq!(err.status_code(), 400);
        }
    }

    #[test]
    fn session_id_pattern_follows_the_api_model() {
        assert!(is_session_id("ab"));
        assert!(is_session_id("my-session_1.2:3"));
        assert!(!is_session_id("a"));
        assert!(!is_session_id("has space"));
        assert!(!is_session_id(&"x".repeat(101)));
    }
}
