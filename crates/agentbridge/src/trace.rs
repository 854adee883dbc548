//! What the gateway reads from trace parts: token usage, the foundation model, guardrail
//! interventions. Every trace step counts: pre-processing, orchestration, post-processing,
//! routing classifier, and the same steps of collaborator agents.

use serde_json::Value;

/// The step inside a `TracePart` (`trace.trace.<step>`), with its name.
fn step(part: &Value) -> Option<(&str, &Value)> {
    part.get("trace")?
        .as_object()?
        .iter()
        .next()
        .map(|(k, v)| (k.as_str(), v))
}

/// `modelInvocationOutput.metadata.usage` of the step, as (input, output) tokens.
pub fn usage(part: &Value) -> Option<(u64, u64)> {
    let (_, s) = step(part)?;
    let u = s.pointer("/modelInvocationOutput/metadata/usage")?;
    let get = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    Some((get("inputTokens"), get("outputTokens")))
}

/// `modelInvocationInput.foundationModel` of the step.
pub fn foundation_model(part: &Value) -> Option<&str> {
    step(part)?
        .1
        .pointer("/modelInvocationInput/foundationModel")?
        .as_str()
}

/// Whether the step is a guardrail that intervened.
pub fn guardrail_intervened(part: &Value) -> bool {
    matches!(step(part), Some(("guardrailTrace", s)) if s.get("action").and_then(Value::as_str) == Some("INTERVENED"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_usage_from_any_step() {
        for name in [
            "preProcessingTrace",
            "orchestrationTrace",
            "postProcessingTrace",
            "routingClassifierTrace",
        ] {
            let part = json!({"trace": {name: {"modelInvocationOutput": {"metadata": {"usage": {"inputTokens": 7, "outputTokens": 3}}}}}});
            assert_eq!(usage(&part), Some((7, 3)), "{name}");
        }
        assert_eq!(
            usage(&json!({"trace": {"orchestrationTrace": {"rationale": {"text": "t"}}}})),
            None
        );
    }

    #[test]
    fn reads_model_and_guardrail() {
        let part = json!({"trace": {"orchestrationTrace": {"modelInvocationInput": {"foundationModel": "anthropic.claude-v2"}}}});
        assert_eq!(foundation_model(&part), Some("anthropic.claude-v2"));
        assert!(guardrail_intervened(
            &json!({"trace": {"guardrailTrace": {"action": "INTERVENED"}}})
        ));
        assert!(!guardrail_intervened(
            &json!({"trace": {"guardrailTrace": {"action": "NONE"}}})
        ));
    }
}
