//! What the gateway reads from trace parts: token usage, the foundation model, guardrail
//! interventions. Every trace step counts: pre-processing, orchestration, post-processing,
//! routing classifier, and the same steps of collaborator agents.
//!
//! Trace parts are large; only these few fields are deserialized (into typed structs that
//! skip the rest), and the raw JSON is kept for callers who asked for traces.

use serde::Deserialize;

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

/// Whether a trace part can hold a field the summary reads. In JSON a key is written
/// `"name"` unless it uses `\u` escapes, so a part containing none of these byte strings has
/// none of the fields and is not parsed (most orchestration parts: rationale, invocation
/// input, observation).
fn may_hold_summary(payload: &[u8]) -> bool {
    const NEEDLES: [&[u8]; 4] = [
        b"\"usage\"",
        b"\"foundationModel\"",
        b"\"guardrailTrace\"",
        b"\\u",
    ];
    NEEDLES
        .iter()
        .any(|n| memchr::memmem::find(payload, n).is_some())
}

impl TraceSummary {
    /// Reads the summary from a trace part's JSON payload.
    pub fn from_json(payload: &[u8]) -> serde_json::Result<Self> {
        if !may_hold_summary(payload) {
            return Ok(Self::default());
        }
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
        assert!(!may_hold_summary(
            br#"{"trace": {"orchestrationTrace": {"observation": {}}}}"#
        ));
        assert!(may_hold_summary(br#"{"usage": 1}"#));
    }

    #[test]
    fn wrong_types_are_errors_not_panics() {
        assert!(TraceSummary::from_json(br#"{"trace": {"orchestrationTrace": {"modelInvocationOutput": {"metadata": {"usage": {"inputTokens": "x"}}}}}}"#).is_err());
    }
}
