//! The agent's events, decoded from event-stream messages.

use crate::error::{AwsErrorKind, Error, Result};
use crate::openai::OutputFile;
use crate::trace::TraceSummary;
use aws_smithy_types::event_stream::Message;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// One event of an InvokeAgent response stream. Exceptions are not events: they arrive as
/// `Err(Error::Aws { .. })` in the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// A piece of the final answer (`chunk`): raw UTF-8 bytes, possibly split inside a
    /// character, and the citations for it.
    Chunk {
        /// Decoded from the base64 `bytes` member.
        bytes: Vec<u8>,
        /// The `attribution` member, if any.
        attribution: Option<Value>,
    },
    /// A trace part (`trace`): what usage and cost need, and the raw JSON.
    Trace {
        /// Usage, model and guardrail outcome of the step.
        summary: TraceSummary,
        /// The trace part's JSON, for callers who asked for traces.
        raw: bytes::Bytes,
    },
    /// A return of control (`returnControl`).
    ReturnControl(Value),
    /// Output files (`files`).
    Files(Vec<OutputFile>),
}

impl AgentEvent {
    /// A trace event from a trace part's JSON (for tests and tools).
    pub fn trace(part: &Value) -> Self {
        let raw = bytes::Bytes::from(part.to_string());
        Self::Trace {
            summary: TraceSummary::from_json(&raw).unwrap_or_default(),
            raw,
        }
    }
}

fn header<'a>(msg: &'a Message, name: &str) -> Option<&'a str> {
    msg.headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| h.value().as_string().ok())
        .map(|s| s.as_str())
}

/// Decodes one message. `Ok(None)` for event types this gateway does not know (logged and
/// skipped: AWS adds event types over time).
pub fn decode(msg: &Message) -> Result<Option<AgentEvent>> {
    let kind = header(msg, ":message-type").unwrap_or("event");
    match kind {
        "exception" => {
            let name = header(msg, ":exception-type").unwrap_or("InternalServerException");
            let body: Value = crate::json::from_bytes(msg.payload()).unwrap_or(Value::Null);
            let message = body
                .get("message")
                .or_else(|| body.get("Message"))
                .and_then(Value::as_str)
                .unwrap_or("the agent reported an error")
                .to_string();
            Err(aws_error(name, message))
        }
        "error" => {
            let code = header(msg, ":error-code").unwrap_or("InternalServerException");
            let message = header(msg, ":error-message").unwrap_or("").to_string();
            Err(aws_error(code, message))
        }
        "event" => {
            let event_type = header(msg, ":event-type")
                .ok_or_else(|| Error::Decode("event without an :event-type header".into()))?;
            if event_type == "trace" {
                let summary = TraceSummary::from_json(msg.payload())
                    .map_err(|e| Error::Decode(format!("trace event payload: {e}")))?;
                return Ok(Some(AgentEvent::Trace {
                    summary,
                    raw: msg.payload().clone(),
                }));
            }
            let payload: Value = crate::json::from_bytes(msg.payload()).map_err(|e| {
                Error::Decode(format!("{event_type} event payload is not JSON: {e}"))
            })?;
            decode_payload(event_type, payload)
        }
        other => Err(Error::Decode(format!(
            "unknown event-stream message type {other:?}"
        ))),
    }
}

fn decode_payload(event_type: &str, payload: Value) -> Result<Option<AgentEvent>> {
    Ok(Some(match event_type {
        "chunk" => {
            let bytes = match payload.get("bytes") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(b64)) => STANDARD
                    .decode(b64)
                    .map_err(|e| Error::Decode(format!("chunk bytes are not base64: {e}")))?,
                Some(_) => return Err(Error::Decode("chunk bytes must be a base64 string".into())),
            };
            AgentEvent::Chunk {
                bytes,
                attribution: payload.get("attribution").cloned(),
            }
        }
        "returnControl" => AgentEvent::ReturnControl(payload),
        "files" => {
            let files = payload
                .get("files")
                .cloned()
                .unwrap_or(Value::Array(vec![]));
            let files: Vec<Value> = serde_json::from_value(files)
                .map_err(|e| Error::Decode(format!("files event: {e}")))?;
            AgentEvent::Files(
                files
                    .into_iter()
                    .map(|f| OutputFile {
                        name: f
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                        media_type: f
                            .get("type")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                        bytes: f
                            .get("bytes")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                    })
                    .collect(),
            )
        }
        name if name.ends_with("Exception") => {
            let message = payload
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Err(aws_error(name, message.to_string()));
        }
        other => {
            tracing::debug!(event_type = other, "skipping unknown agent event type");
            return Ok(None);
        }
    }))
}

fn aws_error(name: &str, message: String) -> Error {
    let mut code = name.to_string();
    if let Some(first) = code.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    Error::Aws {
        kind: AwsErrorKind::from_type_name(name),
        code,
        message,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::event_stream::{Header, HeaderValue};

    fn msg(
        kind: &str,
        name_header: (&'static str, &'static str),
        payload: &'static str,
    ) -> Message {
        Message::new_from_parts(
            vec![
                Header::new(
                    ":message-type",
                    HeaderValue::String(kind.to_string().into()),
                ),
                Header::new(name_header.0, HeaderValue::String(name_header.1.into())),
            ],
            payload.as_bytes().to_vec(),
        )
    }

    #[test]
    fn chunk_bytes_are_base64_decoded() {
        let m = msg("event", (":event-type", "chunk"), r#"{"bytes":"SGk="}"#);
        assert_eq!(
            decode(&m).unwrap(),
            Some(AgentEvent::Chunk {
                bytes: b"Hi".to_vec(),
                attribution: None
            })
        );
    }

    #[test]
    fn exception_messages_become_typed_errors() {
        let m = msg(
            "exception",
            (":exception-type", "throttlingException"),
            r#"{"message":"slow down"}"#,
        );
        match decode(&m).unwrap_err() {
            Error::Aws {
                kind,
                code,
                message,
                ..
            } => {
                assert_eq!(kind, AwsErrorKind::Throttling);
                assert_eq!(code, "ThrottlingException");
                assert_eq!(message, "slow down");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_event_types_are_skipped_and_bad_payloads_rejected() {
        assert_eq!(
            decode(&msg("event", (":event-type", "somethingNew"), "{}")).unwrap(),
            None
        );
        assert!(matches!(
            decode(&msg("event", (":event-type", "chunk"), "not json")),
            Err(Error::Decode(_))
        ));
        assert!(matches!(
            decode(&msg("event", (":event-type", "chunk"), r#"{"bytes":"%%"}"#)),
            Err(Error::Decode(_))
        ));
        assert!(matches!(
            decode(&msg("weird", (":event-type", "chunk"), "{}")),
            Err(Error::Decode(_))
        ));
    }
}
