//! What the gateway reads from trace parts: token usage, the foundation model, guardrail
//! interventions. Every trace step counts: pre-processing, orchestration, post-processing,
//! routing classifier, and the same steps of collaborator agents.
//!
//! Trace parts are large; only these few fields are deserialized (into typed structs that
//! skip the rest), and the raw JSON is kept for callers who asked for traces.

use memchr::memmem::Finder;
use serde::Deserialize;
use std::sync::LazyLock;

/// The fields of one trace part that usage, cost and finish reason depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceSummary {
    /// `modelInvocationInput.foundationModel` of the step.
    pub foundation_model: Option<String>,
    /// `modelInvocationOutput.metadata.usage` of the step, as (input, output) tokens.
    pub usage: Option<(u64, u64)>,
    /// The step is a guardrail that intervened.
    pub guardrail_intervened: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    trace: Option<Steps>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Steps {
    pre_processing_trace: Option<Step>,
    orchestration_trace: Option<Step>,
    post_processing_trace: Option<Step>,
    routing_classifier_trace: Option<Step>,
    guardrail_trace: Option<Step>,
    failure_trace: Option<Step>,
    custom_orchestration_trace: Option<Step>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Step {
    model_invocation_input: Option<ModelInput>,
    model_invocation_output: Option<ModelOutput>,
    action: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelInput {
    foundation_model: Option<String>,
}

#[derive(Deserialize)]
struct ModelOutput {
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

/// Which of the summary's keys a trace part's bytes contain. In JSON a key is written
/// `"name"` unless it uses `\u` escapes, and a `"` inside a string is always escaped, so a
/// part whose bytes hold none of these has none of the fields and is not parsed (most
/// orchestration parts: rationale, invocation input, observation).
#[derive(Debug, PartialEq, Eq)]
struct Keys {
    usage: bool,
    /// Where `"foundationModel"` first occurs.
    foundation_model: Option<usize>,
    /// `"guardrailTrace"` or a `\u` escape: only a full parse can tell.
    other: bool,
}

const FOUNDATION_MODEL: &[u8] = b"\"foundationModel\"";

static FINDERS: LazyLock<[Finder<'static>; 4]> = LazyLock::new(|| {
    [
        Finder::new(b"\"usage\""),
        Finder::new(FOUNDATION_MODEL),
        Finder::new(b"\"guardrailTrace\""),
        Finder::new(b"\\u"),
    ]
});

impl Keys {
    fn of(payload: &[u8]) -> Self {
        let [usage, model, guardrail, escape] = &*FINDERS;
        let has = |f: &Finder| f.find(payload).is_some();
        Self {
            usage: has(usage),
            foundation_model: model.find(payload),
            other: has(guardrail) || has(escape),
        }
    }
}

/// The model of a part whose only summary key is `foundationModel` (a model invocation
/// input, which also carries the whole prompt), read without parsing the part: the key once,
/// then `:` and a string without escapes. `at` is where the key starts. `None` where anything
/// differs; the caller then parses the part.
fn plain_foundation_model(payload: &[u8], at: usize) -> Option<String> {
    let rest = &payload[at + FOUNDATION_MODEL.len()..];
    if FINDERS[1].find(rest).is_some() {
        return None;
    }
    let rest = rest.trim_ascii_start().strip_prefix(b":")?;
    let rest = rest.trim_ascii_start().strip_prefix(b"\"")?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    if rest[end] != b'"' {
        return None;
    }
    let model = std::str::from_utf8(&rest[..end]).ok()?;
    // Control characters are not allowed in JSON strings: leave those to the parser's error.
    if model.bytes().any(|b| b < 0x20) {
        return None;
    }
    Some(model.to_string())
}

impl TraceSummary {
    /// Reads the summary from a trace part's JSON payload.
    pub fn from_json(payload: &[u8]) -> serde_json::Result<Self> {
        let keys = Keys::of(payload);
        if !(keys.usage || keys.foundation_model.is_some() || keys.other) {
            return Ok(Self::default());
        }
        if let Some(at) = keys.foundation_model
            && !keys.usage
            && !keys.other
            && let Some(model) = plain_foundation_model(payload, at)
        {
            return Ok(Self {
                foundation_model: Some(model),
                ..Self::default()
            });
        }
        Self::parse(payload)
    }

    /// The typed parse, for parts that hold usage, guardrails or anything unusual.
    fn parse(payload: &[u8]) -> serde_json::Result<Self> {
        let part: Part = crate::json::from_bytes(payload)?;
        let Some(steps) = part.trace else {
            return Ok(Self::default());
        };
        let is_guardrail = steps.guardrail_trace.is_some();
        let step = [
            steps.pre_processing_trace,
            steps.orchestration_trace,
            steps.post_processing_trace,
            steps.routing_classifier_trace,
            steps.guardrail_trace,
            steps.failure_trace,
            steps.custom_orchestration_trace,
        ]
        .into_iter()
        .flatten()
        .next();
        let Some(step) = step else {
            return Ok(Self::default());
        };
        Ok(Self {
            foundation_model: step.model_invocation_input.and_then(|i| i.foundation_model),
            usage: step
                .model_invocation_output
                .and_then(|o| o.metadata)
                .and_then(|m| m.usage)
                .map(|u| (u.input_tokens.unwrap_or(0), u.output_tokens.unwrap_or(0))),
            guardrail_intervened: is_guardrail && step.action.as_deref() == Some("INTERVENED"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary(v: serde_json::Value) -> TraceSummary {
        TraceSummary::from_json(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn reads_usage_from_any_step() {
        for name in [
            "preProcessingTrace",
            "orchestrationTrace",
            "postProcessingTrace",
            "routingClassifierTrace",
        ] {
            let part = json!({"agentId": "A", "trace": {name: {"modelInvocationOutput": {"rawResponse": {"content": "x"},
                "metadata": {"usage": {"inputTokens": 7, "outputTokens": 3}}}}}});
            assert_eq!(summary(part).usage, Some((7, 3)), "{name}");
        }
        assert_eq!(
            summary(json!({"trace": {"orchestrationTrace": {"rationale": {"text": "t"}}}})).usage,
            None
        );
        assert_eq!(
            summary(json!({"trace": {"somethingNewTrace": {}}})),
            TraceSummary::default()
        );
    }

    #[test]
    fn reads_model_and_guardrail() {
        let part = json!({"trace": {"orchestrationTrace": {"modelInvocationInput": {"foundationModel": "anthropic.claude-v2", "text": "..."}}}});
        assert_eq!(
            summary(part).foundation_model.as_deref(),
            Some("anthropic.claude-v2")
        );
        assert!(
            summary(json!({"trace": {"guardrailTrace": {"action": "INTERVENED"}}}))
                .guardrail_intervened
        );
        assert!(
            !summary(json!({"trace": {"guardrailTrace": {"action": "NONE"}}})).guardrail_intervened
        );
    }

    #[test]
    fn parts_without_summary_fields_are_skipped_and_escaped_keys_still_read() {
        let rationale =
            json!({"trace": {"orchestrationTrace": {"rationale": {"text": "the \"usage\" of x"}}}});
        assert_eq!(summary(rationale), TraceSummary::default());
        // A key spelled with a unicode escape is still found.
        let escaped = br#"{"trace": {"preProcessingTrace": {"modelInvocationOutput": {"metadata": {"\u0075sage": {"inputTokens": 3, "outputTokens": 4}}}}}}"#;
        assert_eq!(
            TraceSummary::from_json(escaped).unwrap().usage,
            Some((3, 4))
        );
        let none = Keys {
            usage: false,
            foundation_model: None,
            other: false,
        };
        assert_eq!(
            Keys::of(br#"{"trace": {"orchestrationTrace": {"observation": {}}}}"#),
            none
        );
        assert_eq!(
            Keys::of(br#"{"usage": 1}"#),
            Keys {
                usage: true,
                ..none
            }
        );
        assert_eq!(
            Keys::of(br#"{"guardrailTrace": 1}"#),
            Keys {
                other: true,
                ..none
            }
        );
        assert_eq!(
            Keys::of(br#"{"a": "\u0041"}"#),
            Keys {
                other: true,
                ..none
            }
        );
    }

    /// The scan as `from_json` runs it: from where `Keys` found the key.
    fn plain_foundation_model(payload: &[u8]) -> Option<String> {
        super::plain_foundation_model(payload, Keys::of(payload).foundation_model?)
    }

    /// A model invocation input part as AWS writes it, with `model` as the value's JSON text.
    fn input_part(model: &str) -> String {
        format!(
            r#"{{"agentId":"A","trace":{{"orchestrationTrace":{{"modelInvocationInput":{{"inferenceConfiguration":{{"maximumLength":2048}},"text":"{{\"system\":\"You are an agent\"}}","foundationModel" : {model},"type":"ORCHESTRATION"}}}}}}}}"#
        )
    }

    #[test]
    fn model_only_parts_are_read_without_parsing_and_agree_with_the_parse() {
        for model in [
            r#""anthropic.claude-3-haiku-20240307-v1:0""#,
            r#""""#,
            r#""modèle""#,
        ] {
            let part = input_part(model);
            let read = plain_foundation_model(part.as_bytes());
            assert!(read.is_some(), "{part}");
            let parsed = TraceSummary::parse(part.as_bytes()).unwrap();
            assert_eq!(read, parsed.foundation_model, "{part}");
            assert_eq!(TraceSummary::from_json(part.as_bytes()).unwrap(), parsed);
        }
    }

    #[test]
    fn unusual_model_parts_are_left_to_the_parser() {
        // An escape in the value, a value that is not a string, a control character, the key
        // twice, a part cut short: the scan declines and the typed parse decides.
        for model in [r#""a\"b""#, r#""a\/b""#, "5", "null", "\"a\tb\""] {
            let part = input_part(model);
            assert_eq!(plain_foundation_model(part.as_bytes()), None, "{part}");
        }
        let twice = br#"{"trace":{"orchestrationTrace":{"modelInvocationInput":{"foundationModel":"a"}},"x":{"foundationModel":"b"}}}"#;
        assert_eq!(plain_foundation_model(twice), None);
        let cut =
            br#"{"trace":{"orchestrationTrace":{"modelInvocationInput":{"foundationModel":"ab"#;
        assert_eq!(plain_foundation_model(cut), None);
        assert!(TraceSummary::from_json(input_part("5").as_bytes()).is_err());
        assert_eq!(
            TraceSummary::from_json(input_part(r#""a\/b""#).as_bytes())
                .unwrap()
                .foundation_model
                .as_deref(),
            Some("a/b")
        );
    }

    #[test]
    fn wrong_types_are_errors_not_panics() {
        assert!(TraceSummary::from_json(br#"{"trace": {"orchestrationTrace": {"modelInvocationOutput": {"metadata": {"usage": {"inputTokens": "x"}}}}}}"#).is_err());
    }
}
