//! Agent events -> the OpenAI answer. One state machine serves both paths: streaming maps
//! each [`Piece`] to a chunk as it comes; non-streaming folds the same pieces into one
//! `chat.completion`.

use crate::canonical::{AnswerOptions, Ending, Finish};
pub use crate::canonical::{Outcome, Piece};
use crate::citations;
use crate::error::Result;
use crate::events::AgentEvent;
use crate::openai::Usage;
use crate::pricing::{self, Price};
use crate::return_control;
use crate::trace::TraceSummary;
use serde_json::Value;

/// The running state of one answer.
#[derive(Debug)]
pub struct AnswerState {
    session_id: String,
    options: AnswerOptions,
    price_override: Option<Price>,
    current_model: Option<String>,
    usage: Usage,
    cost: f64,
    utf8_carry: Vec<u8>,
    guardrail: bool,
    tool_calls: bool,
}

impl AnswerState {
    /// A new answer on `session_id`. `price_override` replaces the table's price.
    pub fn new(session_id: String, options: AnswerOptions, price_override: Option<Price>) -> Self {
        Self {
            session_id,
            options,
            price_override,
            current_model: None,
            usage: Usage::default(),
            cost: 0.0,
            utf8_carry: Vec::new(),
            guardrail: false,
            tool_calls: false,
        }
    }

    /// The agent session.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The caller's options.
    pub fn options(&self) -> AnswerOptions {
        self.options
    }

    /// Takes one event, returns what it adds.
    pub fn accept(&mut self, event: AgentEvent) -> Result<Vec<Piece>> {
        let mut out = Vec::new();
        match event {
            AgentEvent::Chunk { bytes, attribution } => {
                let text = self.take_utf8(&bytes);
                if !text.is_empty() {
                    out.push(Piece::Text(text));
                }
                if let Some(a) = attribution {
                    let raw = a
                        .get("citations")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    if !raw.is_empty() {
                        out.push(Piece::Citations {
                            annotations: citations::annotations(&raw),
                            raw,
                        });
                    }
                }
            }
            AgentEvent::Trace { summary, raw } => {
                self.account(&summary);
                if self.options.include_trace {
                    let part = crate::json::from_bytes(&raw).map_err(|e| {
                        crate::error::Error::Decode(format!("trace event payload: {e}"))
                    })?;
                    out.push(Piece::Trace(part));
                }
            }
            AgentEvent::ReturnControl(payload) => {
                self.tool_calls = true;
                out.push(Piece::ToolCalls(return_control::tool_calls(
                    &self.session_id,
                    &payload,
                )?));
            }
            AgentEvent::Files(files) => out.push(Piece::Files(files)),
        }
        Ok(out)
    }

    /// Flushes a dangling partial character (as U+FFFD).
    fn finish_text(&mut self) -> Vec<Piece> {
        if self.utf8_carry.is_empty() {
            return vec![];
        }
        let rest = String::from_utf8_lossy(&std::mem::take(&mut self.utf8_carry)).into_owned();
        vec![Piece::Text(rest)]
    }

    /// Tool calls, a guardrail's intervention, or a plain stop.
    pub fn finish(&self) -> Finish {
        if self.tool_calls {
            Finish::ToolCalls
        } else if self.guardrail {
            Finish::ContentFilter
        } else {
            Finish::Stop
        }
    }

    /// `tool_calls`, `content_filter` or `stop`.
    pub fn finish_reason(&self) -> &'static str {
        self.finish().as_openai()
    }

    /// The last pieces: a dangling partial character (as U+FFFD), then [`Piece::End`].
    pub fn end(&mut self) -> Vec<Piece> {
        let mut out = self.finish_text();
        out.push(Piece::End(Ending {
            finish: self.finish(),
            outcome: self.outcome(),
            usage_reported: true,
        }));
        out
    }

    /// Usage and cost so far.
    pub fn outcome(&self) -> Outcome {
        Outcome {
            usage: self.usage,
            cost: self.cost,
        }
    }

    fn account(&mut self, step: &TraceSummary) {
        if let Some(model) = &step.foundation_model {
            self.current_model = Some(model.clone());
        }
        if step.guardrail_intervened {
            self.guardrail = true;
        }
        if let Some((input, output)) = step.usage {
            self.usage.add(input, output);
            let price = self
                .price_override
                .or_else(|| self.current_model.as_deref().and_then(pricing::price));
            match price {
                Some(p) => self.cost += p.cost(input, output),
                None => tracing::warn!(
                    model = self.current_model.as_deref().unwrap_or("unknown"),
                    "no price for the agent's foundation model; set input_cost_per_token/output_cost_per_token"
                ),
            }
        }
    }

    /// Appends bytes to the carry and returns the longest valid UTF-8 prefix; an invalid
    /// sequence (not a split one) is replaced rather than held.
    fn take_utf8(&mut self, bytes: &[u8]) -> String {
        self.utf8_carry.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.utf8_carry) {
                Ok(s) => {
                    out.push_str(s);
                    self.utf8_carry.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.utf8_carry[..valid]));
                    match e.error_len() {
                        None => {
                            self.utf8_carry.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.utf8_carry.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
