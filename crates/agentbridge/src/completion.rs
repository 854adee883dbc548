//! Folding an agent's event stream into one `chat.completion`, and mapping it to
//! `chat.completion.chunk`s. Both walk the same [`AnswerState`].

use crate::answer::{AnswerState, Outcome, Piece};
use crate::error::{Error, Result};
use crate::events::AgentEvent;
use crate::openai::{AssistantMessage, ChatChunk, ChatCompletion, Choice, ChunkChoice, Delta};
use futures::{Stream, StreamExt};
use serde_json::json;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// The agent's events as they arrive.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<AgentEvent>> + Send>>;

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

/// Folds the whole stream into a `chat.completion`. An exception event anywhere is an error.
pub async fn fold(
    meta: ResponseMeta,
    mut state: AnswerState,
    mut events: EventStream,
) -> Result<ChatCompletion> {
    let mut message = AssistantMessage {
        role: "assistant".into(),
        ..Default::default()
    };
    let mut text = String::new();
    let mut traces = Vec::new();
    while let Some(event) = events.next().await {
        for piece in state.accept(event?)? {
            match piece {
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
            }
        }
    }
    for piece in state.finish() {
        if let Piece::Text(t) = piece {
            text.push_str(&t);
        }
    }
    message.content = if text.is_empty() && message.tool_calls.is_some() {
        None
    } else {
        Some(text)
    };
    let outcome = state.outcome();
    Ok(ChatCompletion {
        id: meta.id,
        object: "chat.completion".into(),
        created: meta.created,
        model: meta.model,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: state.finish_reason().into(),
        }],
        usage: outcome.usage,
        session_id: state.session_id().to_string(),
        trace: state.options().include_trace.then_some(traces),
        response_cost: outcome.cost,
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

struct Driver {
    meta: ResponseMeta,
    state: AnswerState,
    events: EventStream,
    queue: VecDeque<ChatChunk>,
    role_sent: bool,
    ended: bool,
    outcome: Arc<Mutex<Option<Outcome>>>,
}

impl Driver {
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
            session_id: first.then(|| self.state.session_id().to_string()),
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

    fn push(&mut self, piece: Piece) {
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
        };
        self.queue.push_back(c);
    }

    fn end(&mut self) {
        for p in self.state.finish() {
            self.push(p);
        }
        let reason = self.state.finish_reason().to_string();
        let last = self.chunk(Delta::default(), Some(reason));
        self.queue.push_back(last);
        let outcome = self.state.outcome();
        if self.state.options().include_usage {
            let usage = ChatChunk {
                usage: Some(outcome.usage),
                ..self.bare()
            };
            self.queue.push_back(usage);
        }
        if let Ok(mut o) = self.outcome.lock() {
            *o = Some(outcome);
        }
        self.ended = true;
    }

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
            match self.events.next().await {
                Some(Ok(event)) => match self.state.accept(event) {
                    Ok(pieces) => pieces.into_iter().for_each(|p| self.push(p)),
                    Err(e) => return failed(self, e),
                },
                Some(Err(e)) => return failed(self, e),
                None => self.end(),
            }
        }
    }
}

/// Maps the event stream to chunks as events arrive; nothing is collected. The first chunk
/// with a choice carries `role` and `session_id`, the last `finish_reason`; with
/// `include_usage` a final chunk carries `usage`. An exception event ends the stream with
/// an `Err` item.
pub fn chunks(meta: ResponseMeta, state: AnswerState, events: EventStream) -> ChunkStream {
    let outcome = Arc::new(Mutex::new(None));
    let session_id = state.session_id().to_string();
    let driver = Driver {
        meta,
        state,
        events,
        queue: VecDeque::new(),
        role_sent: false,
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
