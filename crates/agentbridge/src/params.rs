//! Which request parameters are OpenAI's, which are the gateway's own, and which go to the
//! agent. Everything not listed here is an InvokeAgent parameter and passes through.

/// OpenAI Chat Completions parameters. Agents have no use for sampling options, so these are
/// accepted and not sent (as LiteLLM does).
pub const OPENAI_PARAMS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "n",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "response_format",
    "seed",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "service_tier",
    "store",
    "metadata",
    "modalities",
    "audio",
    "prediction",
    "reasoning_effort",
    "web_search_options",
    "extra_headers",
    "extra_body",
];

/// The gateway's own request options, consumed by it and never sent to AWS.
pub const GATEWAY_PARAMS: &[&str] = &[
    "session_id",
    "sessionID",
    "sessionId",
    "runtimeSessionId",
    "include_trace",
];

/// Deployment settings (LiteLLM `litellm_params` names): endpoint, credentials, timeouts,
/// prices. They come from the config (proxy) or the caller (SDK) and never reach the agent.
pub const DEPLOYMENT_PARAMS: &[&str] = &[
    "api_base",
    "aws_bedrock_runtime_endpoint",
    "api_key",
    "api_version",
    "base_url",
    "timeout",
    "stream_timeout",
    "num_retries",
    "max_retries",
    "input_cost_per_token",
    "output_cost_per_token",
    "custom_llm_provider",
    "drop_params",
    "max_event_bytes",
    "user_token_header",
    // Routing facts, read by the proxy's router.
    "rpm",
    "tpm",
    "weight",
];

/// InvokeAgent members the gateway sets itself (URI members and `enableTrace`).
pub const CONTROLLED_MEMBERS: &[&str] = &["agentId", "agentAliasId", "enableTrace"];

/// Whether `key` is a deployment setting (credentials included): never an agent parameter,
/// and through the proxy never accepted from a request.
pub fn is_deployment_param(key: &str) -> bool {
    key.starts_with("aws_")
        || key.starts_with("litellm_")
        || DEPLOYMENT_PARAMS.contains(&key)
        || crate::target::is_target_setting(key)
}

/// Whether `key` goes to the agent as an InvokeAgent parameter.
pub fn is_agent_param(key: &str) -> bool {
    !OPENAI_PARAMS.contains(&key)
        && !GATEWAY_PARAMS.contains(&key)
        && !CONTROLLED_MEMBERS.contains(&key)
        && !is_deployment_param(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_params_pass_and_everything_else_stays() {
        for k in [
            "sessionState",
            "memoryId",
            "invocationId",
            "promptCreationConfigurations",
            "endSession",
        ] {
            assert!(is_agent_param(k), "{k}");
        }
        for k in [
            "temperature",
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
            "aws_region_name",
            "api_base",
            "session_id",
            "sessionID",
            "include_trace",
            "litellm_call_id",
            "timeout",
            "enableTrace",
            "agentId",
        ] {
            assert!(!is_agent_param(k), "{k}");
        }
    }
}
