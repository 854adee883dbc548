//! The Bedrock Agents target (`bedrock/agent/{AGENT_ID}/{ALIAS_ID}`): InvokeAgent.
//!
//! The request mapping is [`crate::request`] (pure), the signature [`crate::signing`]'s
//! InvokeAgent signer, the body an event stream ([`crate::eventstream`] frames,
//! [`crate::events`] events) and the events become pieces through
//! [`crate::answer::AnswerState`] (text, citations, return of control as tool calls, files,
//! traces; usage and cost over every trace step).

use crate::answer::AnswerState;
use crate::canonical::{AgentRequest, Answer, AnswerOptions, Piece, PieceStream};
use crate::client::{Client, Response, SEGMENT, TimedBody};
use crate::completion::EventStream;
use crate::deployment::{Deployment, ParamError};
use crate::error::{Error, Result};
use crate::events::{self, AgentEvent};
use crate::eventstream::FrameDecoder;
use crate::model::AgentModel;
use crate::pricing::Price;
use crate::request::{InvokeAgentRequest, to_invoke_agent};
use crate::signing::{InvokeSigner, InvokeToSign};
use crate::target::{Target, TargetKind};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use http_body_util::Full;
use percent_encoding::utf8_percent_encode;
use serde_json::{Map, Value};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;
use tokio::time::Instant;

/// The registration of this target.
pub static KIND: TargetKind = TargetKind {
    prefix: "agent/",
    provider: "bedrock_agent",
    expected: "bedrock/agent/{AGENT_ID}/{ALIAS_ID} with IDs of 1-10 ASCII letters or digits",
    settings: &[],
    parse,
};

fn parse(
    model: &str,
    _params: &Map<String, Value>,
    errors: &mut Vec<ParamError>,
) -> Option<Arc<dyn Target>> {
    match AgentModel::parse(model) {
        Ok(agent) => Some(Arc::new(BedrockAgent::new(agent))),
        Err(e) => {
            errors.push(ParamError {
                key: "model".into(),
                message: e.to_string(),
            });
            None
        }
    }
}

/// One Bedrock agent alias.
#[derive(Debug)]
pub struct BedrockAgent {
    /// The agent and alias.
    agent: AgentModel,
    /// `agent` as a model string, made once (logs and metrics ask for it per request).
    model: String,
    signer: InvokeSigner,
}

impl BedrockAgent {
    /// The target for `agent`.
    pub fn new(agent: AgentModel) -> Self {
        Self {
            model: agent.to_string(),
            agent,
            signer: InvokeSigner::new(),
        }
    }

    /// The agent and alias.
    pub fn agent(&self) -> &AgentModel {
        &self.agent
    }

    /// Sends InvokeAgent (retrying what is safe) and returns the agent's events and the
    /// session AWS answered in.
    pub async fn invoke_agent(
        &self,
        d: &Deployment,
        http: &Client,
        req: &InvokeAgentRequest,
    ) -> Result<(EventStream, String)> {
        let deadline = Instant::now() + d.settings.timeouts.total;
        let body = Bytes::from(
            serde_json::to_vec(&req.body).map_err(|e| Error::invalid("body", e.to_string()))?,
        );
        let path = format!(
            "/agents/{}/agentAliases/{}/sessions/{}/text",
            utf8_percent_encode(&req.agent.agent_id, SEGMENT),
            utf8_percent_encode(&req.agent.alias_id, SEGMENT),
            utf8_percent_encode(&req.session_id, SEGMENT),
        );
        let url = format!("{}{}", d.endpoint, path);
        let host = d.host.as_str();
        let path = d.request_target(&url);
        let resp = http
            .send(d, deadline, "InvokeAgent", || async {
                let creds = d.credentials.get().await?;
                let signed = self.signer.sign(
                    &creds,
                    &d.region,
                    InvokeToSign {
                        host,
                        path,
                        query: "",
                        source_arn: req.source_arn.as_deref(),
                        extra: &[],
                        body: &body,
                    },
                    SystemTime::now(),
                )?;
                let mut rb = http::Request::post(url.as_str())
                    .header(http::header::HOST, host)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header(http::header::ACCEPT, "application/vnd.amazon.eventstream");
                if let Some(arn) = &req.source_arn {
                    rb = rb.header("x-amz-source-arn", arn);
                }
                for (k, v) in signed {
                    rb = rb.header(k, v);
                }
                rb.body(Full::new(body.clone()))
                    .map_err(|e| Error::invalid("request", e.to_string()))
            })
            .await?;
        let session = resp
            .headers()
            .get("x-amz-bedrock-agent-session-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(&req.session_id)
            .to_string();
        Ok((event_stream(resp, d, deadline), session))
    }
}

impl Target for BedrockAgent {
    fn provider(&self) -> &'static str {
        KIND.provider
    }

    fn model(&self) -> String {
        self.model.clone()
    }

    fn default_endpoint(&self, region: &str) -> String {
        format!("https://bedrock-agent-runtime.{region}.amazonaws.com")
    }

    fn invoke<'a>(
        &'a self,
        d: &'a Deployment,
        http: &'a Client,
        req: &'a AgentRequest,
    ) -> BoxFuture<'a, Result<Answer>> {
        Box::pin(async move {
            let call = to_invoke_agent(&self.agent, req, &d.settings.agent_params)?;
            let (events, session) = self.invoke_agent(d, http, &call).await?;
            Ok(answer(session, req.options, d.settings.price, events))
        })
    }
}

/// The answer to an InvokeAgent call: its events through one [`AnswerState`], ending with
/// [`Piece::End`] when the event stream ends cleanly.
pub fn answer(
    session_id: String,
    options: AnswerOptions,
    price: Option<Price>,
    events: EventStream,
) -> Answer {
    let state = AnswerState::new(session_id.clone(), options, price);
    Answer {
        session_id,
        pieces: pieces(state, events),
    }
}

/// Events -> pieces: each event's pieces as it comes, then the end.
pub fn pieces(state: AnswerState, events: EventStream) -> PieceStream {
    Box::pin(Walk {
        state,
        events,
        ready: Vec::new().into_iter(),
        ended: false,
    })
}

/// The stream [`pieces`] returns. It polls the events itself: a `stream::unfold` moved this
/// state into a new future and back out for every piece.
struct Walk {
    state: AnswerState,
    events: EventStream,
    ready: std::vec::IntoIter<Piece>,
    ended: bool,
}

impl Stream for Walk {
    type Item = Result<Piece>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let w = &mut *self;
        loop {
            if let Some(p) = w.ready.next() {
                return Poll::Ready(Some(Ok(p)));
            }
            if w.ended {
                return Poll::Ready(None);
            }
            match w.events.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(event))) => match w.state.accept(event) {
                    Ok(pieces) => w.ready = pieces.into_iter(),
                    Err(e) => {
                        w.ended = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                Poll::Ready(Some(Err(e))) => {
                    w.ended = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    w.ended = true;
                    w.ready = w.state.end().into_iter();
                }
            }
        }
    }
}

/// The response body as agent events: frames decoded as bytes arrive.
struct EventBody {
    body: TimedBody,
    decoder: FrameDecoder,
    done: bool,
}

impl Stream for EventBody {
    type Item = Result<AgentEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.decoder.next_message() {
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(Some(msg)) => match events::decode(&msg) {
                    Ok(Some(ev)) => return Poll::Ready(Some(Ok(ev))),
                    Ok(None) => continue,
                    Err(e) => {
                        this.done = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                Ok(None) => {}
            }
            match Pin::new(&mut this.body).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => this.decoder.push(&bytes),
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return match this.decoder.finish() {
                        Ok(()) => Poll::Ready(None),
                        Err(e) => Poll::Ready(Some(Err(e))),
                    };
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

fn event_stream(resp: Response, d: &Deployment, deadline: Instant) -> EventStream {
    Box::pin(EventBody {
        body: TimedBody::new(resp, d, deadline),
        decoder: FrameDecoder::new(d.settings.max_event_bytes),
        done: false,
    })
}
