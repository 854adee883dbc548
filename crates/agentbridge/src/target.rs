//! The target seam: an agent service the gateway can call.
//!
//! A target turns the canonical [`AgentRequest`] into its signed HTTP call and the service's
//! response into an [`Answer`] (pieces ending with [`crate::canonical::Piece::End`]). Each
//! target is one module that implements [`Target`] and registers one [`TargetKind`] in
//! [`TARGETS`]: its model prefix, the deployment settings of its own, and its parser.
//! Everything above the pieces (doors, keys, limits, routing) is shared and never asks which
//! target answered.
//!
//! ```
//! let kind = agentbridge::target::kind_for("bedrock/agent/L1RT58GYRW/MFPSBCXYTW").unwrap();
//! assert_eq!(kind.provider, "bedrock_agent");
//! assert!(agentbridge::target::kind_for("openai/gpt-4o").is_none());
//! ```

use crate::canonical::{AgentRequest, Answer};
use crate::client::Client;
use crate::deployment::{Deployment, ParamError};
use crate::error::Result;
use futures::future::BoxFuture;
use secrecy::SecretString;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

/// An agent service: builds its call, sends it with the deployment's credentials, timeouts
/// and retries, and turns the response into pieces.
pub trait Target: Send + Sync + fmt::Debug {
    /// The provider name (`bedrock_agent`, ...), for logs and metrics labels.
    fn provider(&self) -> &'static str;

    /// The agent, as a model string (`bedrock/agent/ID/ALIAS`, ...), for logs and listings.
    fn model(&self) -> String;

    /// The service's regional endpoint (used when no endpoint override is set).
    fn default_endpoint(&self, region: &str) -> String;

    /// The region the model string itself names (an ARN's), if any.
    fn region(&self) -> Option<&str> {
        None
    }

    /// The fixed bearer token the target sends instead of a signature (AgentCore's
    /// `api_key`), if any: for an emulator standing in for the service, which must accept it.
    fn bearer_token(&self) -> Option<&SecretString> {
        None
    }

    /// Sends `req` to the agent and returns its answer. Retries only what cannot have
    /// reached the agent (see [`crate::client`]).
    fn invoke<'a>(
        &'a self,
        d: &'a Deployment,
        http: &'a Client,
        req: &'a AgentRequest,
    ) -> BoxFuture<'a, Result<Answer>>;
}

/// Parses a model string (and the deployment settings of the target's own) into a target.
/// Problems are pushed with their key; `None` when there were any.
pub type ParseTarget = fn(
    model: &str,
    params: &Map<String, Value>,
    errors: &mut Vec<ParamError>,
) -> Option<Arc<dyn Target>>;

/// A kind of target, as registered in [`TARGETS`].
#[derive(Debug)]
pub struct TargetKind {
    /// Model strings starting with this (after an optional `bedrock/`) name this target.
    pub prefix: &'static str,
    /// The provider name, as [`Target::provider`].
    pub provider: &'static str,
    /// The model string's shape, for error messages.
    pub expected: &'static str,
    /// Deployment settings only this target reads (never sent to the agent, never accepted
    /// in a request).
    pub settings: &'static [&'static str],
    /// The parser.
    pub parse: ParseTarget,
}

/// Every target. Adding one is a module and a line here.
pub static TARGETS: &[&TargetKind] = &[&crate::bedrock_agent::KIND, &crate::agentcore::KIND];

/// The target kind a model string names.
pub fn kind_for(model: &str) -> Option<&'static TargetKind> {
    let rest = model.strip_prefix("bedrock/").unwrap_or(model);
    TARGETS.iter().copied().find(|k| rest.starts_with(k.prefix))
}

/// Whether `key` is a setting of some target.
pub fn is_target_setting(key: &str) -> bool {
    TARGETS.iter().any(|k| k.settings.contains(&key))
}

/// Parses `model` with its target's parser, or says which model strings are served.
pub fn parse(
    model: &str,
    params: &Map<String, Value>,
    errors: &mut Vec<ParamError>,
) -> Option<Arc<dyn Target>> {
    match kind_for(model) {
        Some(kind) => (kind.parse)(model, params, errors),
        None => {
            let expected: Vec<&str> = TARGETS.iter().map(|k| k.expected).collect();
            errors.push(ParamError {
                key: "model".into(),
                message: format!(
                    "invalid model {model:?}: expected {}",
                    expected.join(" or ")
                ),
            });
            None
        }
    }
}
