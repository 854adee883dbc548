//! Response ids that carry their conversation: `resp_` + base64url of the agent session, the
//! deployment that answered and the request's own id. A follow-up naming it in
//! `previous_response_id` continues the same agent session on any gateway instance, with no
//! database (as tool call ids carry their session: [`agentbridge::return_control`]).

use crate::doors::common::bad;
use crate::error::Result;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "resp_";

/// What a response id carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseRef {
    /// The agent session the answer ran in.
    #[serde(rename = "s")]
    pub session_id: String,
    /// The deployment (`{model_name}/{index}`) that answered.
    #[serde(rename = "d")]
    pub deployment: String,
    /// The gateway's request id (every response id is unique).
    #[serde(rename = "r")]
    pub request_id: String,
}

impl ResponseRef {
    /// The response id.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Reads an id made by [`ResponseRef::encode`]; anything else is a 400 naming `param`.
    pub fn decode(id: &str, param: &str) -> Result<Self> {
        let refuse = || {
            bad(
                format!(
                    "{param} {id:?} was not issued by this gateway: send the id of an earlier response"
                ),
                Some(param),
            )
        };
        let b64 = id.strip_prefix(PREFIX).ok_or_else(refuse)?;
        let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|_| refuse())?;
        serde_json::from_slice(&bytes).map_err(|_| refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_foreign_ids_are_a_400() {
        let r = ResponseRef {
            session_id: "sess-1".into(),
            deployment: "agent/1".into(),
            request_id: "abc".into(),
        };
        let id = r.encode();
        assert!(id.starts_with("resp_"));
        assert_eq!(ResponseRef::decode(&id, "previous_response_id").unwrap(), r);
        for bad_id in ["resp_abc", "resp_!!", "resp_e30", "chatcmpl-1", ""] {
            let e = ResponseRef::decode(bad_id, "previous_response_id").unwrap_err();
            assert_eq!(e.status(), 400, "{bad_id}");
            assert_eq!(e.body()["error"]["param"], "previous_response_id");
        }
    }
}
