//! # agentbridge
//!
//! Call AWS agents (Amazon Bedrock Agents and Bedrock AgentCore Runtime) in the OpenAI Chat
//! Completions format. This crate is the SDK: the canonical request and answer
//! ([`canonical`]), the targets that call agent services ([`target`]: [`bedrock_agent`],
//! [`agentcore`]), the Chat Completions door
//! ([`completion`], [`openai`]), the SigV4-signed client, the event-stream decoder and the
//! pricing table. It has no server code (that is `agentbridge-proxy`).
//!
//! Data flows one way: [`ChatRequest`] -> [`completion::agent_request`] -> [`AgentRequest`]
//! -> [`Deployment::invoke`] (the deployment's [`Target`]: signed call, response decoded)
//! -> [`Answer`] ([`Piece`]s) -> [`ChatCompletion`] (folded) or [`ChatChunk`]s (streamed).
//!
//! ```no_run
//! # async fn run() -> Result<(), agentbridge::Error> {
//! use agentbridge::{ChatRequest, Message};
//! let response = agentbridge::completion(ChatRequest {
//!     model: "bedrock/agent/L1RT58GYRW/MFPSBCXYTW".into(),
//!     messages: vec![Message::new("user", "Summarise our Q3 sales")],
//!     ..Default::default()
//! })
//! .await?;
//! println!("{}", response.choices[0].message.content.as_deref().unwrap_or(""));
//! println!("Response cost: ${}", response.response_cost);
//! # Ok(()) }
//! ```

pub mod agentcore;
pub mod answer;
mod aws_http;
pub mod bedrock_agent;
pub mod canonical;
pub mod citations;
pub mod client;
pub mod completion;
pub mod credentials;
pub mod deployment;
pub mod error;
pub mod events;
pub mod eventstream;
pub mod json;
pub mod model;
pub mod openai;
pub mod params;
pub mod pricing;
pub mod request;
pub mod return_control;
pub mod signing;
pub mod target;
pub mod trace;

pub use canonical::{AgentRequest, Answer, Piece};
pub use client::Client;
pub use completion::ChunkStream;
pub use deployment::{Deployment, DeploymentSettings, Timeouts};
pub use error::{AwsErrorKind, Error, Result};
pub use events::AgentEvent;
pub use model::AgentModel;
pub use openai::{ChatChunk, ChatCompletion, ChatRequest, Message};
pub use target::Target;

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tokio::sync::Mutex;

/// Deployments made by [`completion`], keyed by model and deployment parameters, so
/// credentials are resolved once per process.
static DEPLOYMENTS: OnceLock<Mutex<HashMap<String, Arc<Deployment>>>> = OnceLock::new();
static CLIENT: OnceLock<Client> = OnceLock::new();

/// The process-wide client used by [`completion`] and [`completion_stream`].
pub fn shared_client() -> Result<Client> {
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    let c = Client::new(Timeouts::default().connect)?;
    Ok(CLIENT.get_or_init(|| c).clone())
}

/// Splits LiteLLM-style deployment parameters (`aws_*`, `api_base`, `timeout`, ...) out of
/// the request and returns the deployment for them, made once and cached.
async fn deployment_for(req: &mut ChatRequest) -> Result<Arc<Deployment>> {
    let mut params = Map::new();
    req.extra.retain(|k, v| {
        if params::is_deployment_param(k) {
            params.insert(k.clone(), v.clone());
            false
        } else {
            true
        }
    });
    let key = format!("{}|{}", req.model, Value::Object(params.clone()));
    let map = DEPLOYMENTS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = map.lock().await;
    if let Some(d) = guard.get(&key) {
        return Ok(Arc::clone(d));
    }
    let settings = DeploymentSettings::from_params(&req.model, &params).map_err(|errs| {
        let first = errs.into_iter().next();
        match first {
            Some(e) if e.key == "model" => Error::invalid("model", e.message),
            Some(e) => Error::invalid(e.key, e.message),
            None => Error::invalid("model", "invalid deployment"),
        }
    })?;
    let d = Arc::new(Deployment::new(settings).await?);
    guard.insert(key, Arc::clone(&d));
    Ok(d)
}

/// One chat completion from the agent named by `req.model` (`bedrock/agent/ID/ALIAS`).
/// LiteLLM's per-call parameters work here as extra fields: `aws_region_name`,
/// `aws_access_key_id`, `api_base`, ...; any other non-OpenAI field (e.g. `invocationId`)
/// goes to the agent. The cost is [`ChatCompletion::response_cost`].
pub async fn completion(mut req: ChatRequest) -> Result<ChatCompletion> {
    let d = deployment_for(&mut req).await?;
    let meta = completion::ResponseMeta::new(std::mem::take(&mut req.model));
    let req = completion::agent_request(req)?;
    let answer = d.invoke(&shared_client()?, &req).await?;
    completion::fold(meta, answer, req.options).await
}

/// Like [`completion`], streamed: chunks arrive as the agent sends them.
pub async fn completion_stream(mut req: ChatRequest) -> Result<ChunkStream> {
    req.stream = true;
    let d = deployment_for(&mut req).await?;
    let meta = completion::ResponseMeta::new(std::mem::take(&mut req.model));
    let req = completion::agent_request(req)?;
    let answer = d.invoke(&shared_client()?, &req).await?;
    Ok(completion::chunks(meta, answer, req.options))
}
