//! The Chat Completions door: a chat request as the canonical [`AgentRequest`], and an
//! [`Answer`]'s pieces as one `chat.completion` (folded) or as `chat.completion.chunk`s
//! (streamed). Both walk the same pieces; nothing here knows which target answered.

use crate::canonical::{AgentRequest, Answer, AnswerOptions, Ending, Outcome, Piece, PieceStream};
use crate::client::Client;
use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::events::AgentEvent;
use crate::openai::{
    AssistantMessage, ChatChunk, ChatCompletion, ChatRequest, Choice, ChunkChoice, Delta,
};
use futures::{Stream, StreamExt};
use serde_json::json;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// The agent's events as they arrive (Bedrock Agents' event stream, decoded).
pub type EventStream = Pin<Box<dyn Stream<Item = Result<AgentEvent>> + Send>>;

/// The Chat door's parse: the conversation, the options (`stream`,
/// `stream_options.include_usage`, `include_trace`) and every other non-OpenAI field as
/// parameters. `req.model` is left to the caller (it names the deployment).
pub fn agent_request(req: ChatRequest) -> Result<AgentRequest> {
    let options = AnswerOptions {
        stream: req.stream,
        include_usage: req.stream_options.as_ref().is_some_and(|o| o.include_usage),
        include_trace: AgentRequest::read_include_trace(&req.extra)?,
    };
    Ok(AgentRequest {
        messages: req.messages,
        params: req.extra,
        options,
        context: Default::default(),
    })
}

/// The Chat door over one deployment, for SDK users who hold a [`Deployment`].
impl Client {
    /// A whole `chat.completion` from `d`'s agent. `model_name` is the name the caller used.
    pub async fn complete(
        &self,
        d: &Deployment,
        chat: &ChatRequest,
        model_name: &str,
    ) -> Result<ChatCompletion> {
        let req = agent_request(chat.clone())?;
        let answer = d.invoke(self, &req).await?;
        fold(ResponseMeta::new(model_name), answer, req.options).await
    }

    /// A stream of `chat.completion.chunk`s from `d`'s agent.
    pub async fn stream(
        &self,
        d: &Deployment,
        chat: &ChatRequest,
        model_name: &str,
    ) -> Result<ChunkStream> {
        let req = agent_request(chat.clone())?;
        let answer = d.invoke(self, &req).await?;
        Ok(chunks(ResponseMeta::new(model_name), answer, req.options))
    }
}

/// The error for an answer stream that stopped before its [`Piece::End`].
pub fn missing_end() -> Error {
    Error::Decode("the agent's answer ended without its end".into())
}

/// The fixed fields of an answer's response objects.
#[derive(Debug, Clone)]
pub struct ResponseMeta {
    /// `chatcmpl-...`, one for all chunks.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name the caller used.
    pub model: String,
}

impl ResponseMeta {
    /// A fresh id and the current time.
    pub fn new(model: impl Into<String>) -> Self {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self {
            id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            created,
            model: model.into(),
        }
    }
}

/// Folds the whole answer into a `chat.completion`. An error anywhere is the error.
pub async fn fold(
    meta: ResponseMeta,
    answer: Answer,
    options: AnswerOptions,
) -> Result<ChatCompletion> {
    let Answer {
        session_id,
        mut pieces,
    } = answer;
    let mut message = AssistantMessage {
        role: "assistant".into(),
        ..Default::default()
    };
    let mut text = String::new();
    let mut traces = Vec::new();
    let mut ending = None;
    while let Some(piece) = pieces.next().await {
        match piece? {
            Piece::Text(t) => text.push_str(&t),
            Piece::Citations { annotations, raw } => {
                message.annotations.extend(annotations);
                message.citations.extend(raw);
            }
            Piece::ToolCalls(calls) => message
                .tool_calls
                .get_or_insert_with(Vec::new)
                .extend(calls),
            Piece::Files(files) => message.files.extend(files),
            Piece::Trace(t) => traces.push(t),
            Piece::End(e) => {
                ending = Some(e);
                break;
            }
        }
    }
    let ending: Ending = ending.ok_or_else(missing_end)?;
    message.content = if text.is_empty() && message.tool_calls.is_some() {
        None
    } else {
        Some(text)
    };
    Ok(ChatCompletion {
        id: meta.id,
        object: "chat.completion".into(),
        created: meta.created,
        model: meta.model,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: ending.finish.as_openai().into(),
        }],
        usage: ending.usage_reported.then_some(ending.outcome.usage),
        session_id,
        trace: options.include_trace.then_some(traces),
        response_cost: ending.outcome.cost,
    })
}

/// A stream of `chat.completion.chunk`s. After it ends, [`ChunkStream::outcome`] gives the
/// usage and cost (for spend accounting).
pub struct ChunkStream {
    inner: Pin<Box<dyn Stream<Item = Result<ChatChunk>> + Send>>,
    outcome: Arc<Mutex<Option<Outcome>>>,
    session_id: String,
}

impl ChunkStream {
    /// The agent session of this answer.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Usage and cost, once the stream has ended cleanly.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome.lock().ok().and_then(|o| *o)
    }

    /// A handle to read the outcome after the stream was moved away.
    pub fn outcome_handle(&self) -> Arc<Mutex<Option<Outcome>>> {
        Arc::clone(&self.outcome)
    }
}

impl Stream for ChunkStream {
    type Item = Result<ChatChunk>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Pieces -> `chat.completion.chunk`s, one piece at a time (no I/O): what the SDK's
/// [`ChunkStream`] and the proxy's SSE writer both use.
#[derive(Debug)]
pub struct ChunkMapper {
    meta: ResponseMeta,
    session_id: String,
    options: AnswerOptions,
    role_sent: bool,
}

impl ChunkMapper {
    /// A mapper for one answer on `session_id`.
    pub fn new(meta: ResponseMeta, session_id: String, options: AnswerOptions) -> Self {
        Self {
            meta,
            session_id,
            options,
            role_sent: false,
        }
    }

    fn chunk(&mut self, mut delta: Delta, finish_reason: Option<String>) -> ChatChunk {
        let first = !self.role_sent;
        if first {
            delta.role = Some("assistant".into());
            self.role_sent = true;
        }
        ChatChunk {
            id: self.meta.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.meta.created,
            model: self.meta.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
            }],
            usage: None,
            session_id: first.then(|| self.session_id.clone()),
            trace: None,
        }
    }

    fn bare(&self) -> ChatChunk {
        ChatChunk {
            id: self.meta.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.meta.created,
            model: self.meta.model.clone(),
            choices: vec![],
            usage: None,
            session_id: None,
            trace: None,
        }
    }

    /// The chunks `piece` becomes: one per piece, and for [`Piece::End`] the finishing chunk
    /// plus, with `include_usage` and reported usage, the usage chunk.
    pub fn map(&mut self, piece: Piece, out: &mut impl Extend<ChatChunk>) {
        let c = match piece {
            Piece::Text(t) => self.chunk(
                Delta {
                    content: Some(t),
                    ..Default::default()
                },
                None,
            ),
            Piece::Citations { annotations, raw } => self.chunk(
                Delta {
                    annotations: Some(annotations),
                    citations: Some(raw),
                    ..Default::default()
                },
                None,
            ),
            Piece::ToolCalls(calls) => {
                let calls = calls
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| json!({"index": i, "id": c.id, "type": c.kind, "function": c.function}))
                    .collect();
                self.chunk(
                    Delta {
                        tool_calls: Some(calls),
                        ..Default::default()
                    },
                    None,
                )
            }
            Piece::Files(files) => self.chunk(
                Delta {
                    files: Some(files),
                    ..Default::default()
                },
                None,
            ),
            Piece::Trace(t) => ChatChunk {
                trace: Some(t),
                ..self.bare()
            },
            Piece::End(e) => {
                let last = self.chunk(Delta::default(), Some(e.finish.as_openai().into()));
                out.extend([last]);
                if self.options.include_usage && e.usage_reported {
                    out.extend([ChatChunk {
                        usage: Some(e.outcome.usage),
                        ..self.bare()
                    }]);
                }
                return;
            }
        };
        out.extend([c]);
    }
}

struct Driver {
    mapper: ChunkMapper,
    pieces: PieceStream,
    queue: VecDeque<ChatChunk>,
    ended: bool,
    outcome: Arc<Mutex<Option<Outcome>>>,
}

impl Driver {
    async fn next(mut self) -> Option<(Result<ChatChunk>, Self)> {
        loop {
            if let Some(c) = self.queue.pop_front() {
                return Some((Ok(c), self));
            }
            if self.ended {
                return None;
            }
            let failed = |mut d: Self, e: Error| {
                d.ended = true;
                Some((Err(e), d))
            };
            match self.pieces.next().await {
                Some(Ok(piece)) => {
                    if let Piece::End(e) = &piece {
                        self.ended = true;
                        if let Ok(mut o) = self.outcome.lock() {
                            *o = Some(e.outcome);
                        }
                    }
                    self.mapper.map(piece, &mut self.queue);
                }
                Some(Err(e)) => return failed(self, e),
                None => return failed(self, missing_end()),
            }
        }
    }
}

/// Maps the answer's pieces to chunks as they arrive; nothing is collected. The first chunk
/// with a choice carries `role` and `session_id`, the last `finish_reason`; with
/// `include_usage` a final chunk carries `usage` (when the agent reported it). An error
/// ends the stream with an `Err` item.
pub fn chunks(meta: ResponseMeta, answer: Answer, options: AnswerOptions) -> ChunkStream {
    let outcome = Arc::new(Mutex::new(None));
    let session_id = answer.session_id.clone();
    let driver = Driver {
        mapper: ChunkMapper::new(meta, answer.session_id, options),
        pieces: answer.pieces,
        queue: VecDeque::new(),
        ended: false,
        outcome: Arc::clone(&outcome),
    };
    ChunkStream {
        inner: Box::pin(futures::stream::unfold(driver, Driver::next)),
        outcome,
        session_id,
    }
}

#[cfg(test)]
#[path = "completion_tests.rs"]
mod tests;
