//! Which runtime and endpoint a call names, and the request headers the API model
//! constrains: from the path, the query and the headers to an [`Invocation`].

use super::errors::{AgentCoreError, ErrorKind};
use axum::http::HeaderMap;

/// `X-Amzn-Bedrock-AgentCore-Runtime-Session-Id` (request and response).
pub const SESSION_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-session-id";
/// `X-Amzn-Bedrock-AgentCore-Runtime-User-Id`.
pub const USER_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-user-id";
/// `X-Amzn-Bedrock-AgentCore-Runtime-Request-Id`, sent to the agent with each invocation.
pub const REQUEST_ID_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-request-id";
/// Headers with this prefix are passed to the agent (the runtime header allowlist).
pub const CUSTOM_HEADER_PREFIX: &str = "x-amzn-bedrock-agentcore-runtime-custom-";
/// The endpoint every runtime has.
pub const DEFAULT_ENDPOINT: &str = "DEFAULT";

/// The optional headers the model bounds: (header, member name, min, max).
pub const BOUNDED_HEADERS: [(&str, &str, usize, usize); 8] = [
    ("content-type", "contentType", 1, 256),
    ("accept", "accept", 1, 256),
    (USER_HEADER, "runtimeUserId", 1, 1024),
    ("x-amzn-trace-id", "traceId", 0, 128),
    ("traceparent", "traceParent", 0, 128),
    ("tracestate", "traceState", 0, 512),
    ("baggage", "baggage", 0, 8192),
    ("mcp-session-id", "mcpSessionId", 1, 1024),
];

/// The headers that are echoed in the response when sent (the output shape's members).
pub const ECHOED_HEADERS: [&str; 4] = ["x-amzn-trace-id", "traceparent", "tracestate", "baggage"];

/// A runtime named by ARN, or by ID plus `accountId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// The full ARN (built from the ID when an ID was given).
    pub arn: String,
    /// The account in the ARN.
    pub account: String,
    /// The runtime ID (`name-XXXXXXXXXX`).
    pub id: String,
}

impl Runtime {
    /// The runtime's name: its ID without the 10-character suffix.
    pub fn name(&self) -> &str {
        self.id
            .rsplit_once('-')
            .map_or(self.id.as_str(), |(n, _)| n)
    }
}

/// `[a-zA-Z][a-zA-Z0-9_]{0,max-1}`.
fn name_like(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// The control-plane model's `AgentRuntimeId`: `[a-zA-Z][a-zA-Z0-9_]{0,99}-[a-zA-Z0-9]{10}`.
pub fn runtime_id(s: &str) -> bool {
    s.rsplit_once('-').is_some_and(|(name, suffix)| {
        name_like(name, 100)
            && suffix.len() == 10
            && suffix.bytes().all(|c| c.is_ascii_alphanumeric())
    })
}

/// The model's `EndpointName`: `[a-zA-Z][a-zA-Z0-9_]{0,47}`.
pub fn endpoint_name(s: &str) -> bool {
    name_like(s, 48)
}

/// Reads `agentRuntimeArn` (already percent-decoded) and the `accountId` query member.
pub fn runtime(
    arn_or_id: &str,
    account_id: Option<&str>,
    region: &str,
) -> Result<Runtime, AgentCoreError> {
    if let Some(rest) = arn_or_id.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let ok = matches!(parts.as_slice(), [partition, "bedrock-agentcore", region, account, resource]
            if (*partition == "aws" || partition.starts_with("aws-"))
                && !region.is_empty()
                && region.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && account.len() == 12 && account.bytes().all(|c| c.is_ascii_digit())
                && resource.strip_prefix("runtime/").is_some_and(runtime_id));
        if !ok {
            return Err(AgentCoreError::invalid(
                "agentRuntimeArn",
                format!(
                    "agentRuntimeArn {arn_or_id:?} is not a runtime ARN (arn:aws:bedrock-agentcore:REGION:ACCOUNT:runtime/NAME-XXXXXXXXXX)"
                ),
            ));
        }
        let account = parts[3].to_string();
        let id = parts[4].trim_start_matches("runtime/").to_string();
        return Ok(Runtime {
            arn: arn_or_id.to_string(),
            account,
            id,
        });
    }
    if !runtime_id(arn_or_id) {
        return Err(AgentCoreError::invalid(
            "agentRuntimeArn",
            format!("agentRuntimeArn {arn_or_id:?} is neither a runtime ARN nor a runtime ID"),
        ));
    }
    let Some(account) = account_id else {
        return Err(AgentCoreError::invalid(
            "accountId",
            "accountId is required when agentRuntimeArn is a runtime ID",
        ));
    };
    if account.len() != 12 || !account.bytes().all(|c| c.is_ascii_digit()) {
        return Err(AgentCoreError::invalid(
            "accountId",
            "accountId must match [0-9]{12}",
        ));
    }
    Ok(Runtime {
        arn: format!("arn:aws:bedrock-agentcore:{region}:{account}:runtime/{arn_or_id}"),
        account: account.to_string(),
        id: arn_or_id.to_string(),
    })
}

/// The `qualifier` query member: an endpoint name, `DEFAULT` when absent.
pub fn qualifier(
    q: Option<&str>,
    known: &[String],
    runtime: &Runtime,
) -> Result<String, AgentCoreError> {
    let q = q.unwrap_or(DEFAULT_ENDPOINT);
    if q == DEFAULT_ENDPOINT || known.iter().any(|k| k == q) {
        return Ok(q.to_string());
    }
    Err(AgentCoreError::new(
        ErrorKind::ResourceNotFound,
        format!(
            "No endpoint named {q:?} found for agent runtime {}",
            runtime.arn
        ),
    ))
}

/// The session ID: the header (33 to 256 characters, `SessionType`), or a new one.
pub fn session(headers: &HeaderMap) -> Result<String, AgentCoreError> {
    match headers.get(SESSION_HEADER) {
        None => Ok(format!("emu-{}", crate::wire::uuid_like())),
        Some(v) => {
            let s = v.to_str().map_err(|_| {
                AgentCoreError::invalid(
                    "runtimeSessionId",
                    "runtimeSessionId must be visible ASCII",
                )
            })?;
            if (33..=256).contains(&s.chars().count()) {
                Ok(s.to_string())
            } else {
                Err(AgentCoreError::invalid(
                    "runtimeSessionId",
                    format!(
                        "1 validation error detected: Value at 'runtimeSessionId' failed to satisfy constraint: Member must have length between 33 and 256 (got {})",
                        s.chars().count()
                    ),
                ))
            }
        }
    }
}

/// Checks the lengths of the optional headers the model bounds.
pub fn bounded_headers(headers: &HeaderMap) -> Result<(), AgentCoreError> {
    for (name, member, min, max) in BOUNDED_HEADERS {
        if let Some(v) = headers.get(name) {
            let n = v.as_bytes().len();
            if n < min || n > max {
                return Err(AgentCoreError::invalid(
                    member,
                    format!(
                        "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must have length between {min} and {max}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str =
        "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/my_agent-AbCdE12345";

    #[test]
    fn reads_arns_and_ids() {
        let r = runtime(ARN, None, "us-east-1").unwrap();
        assert_eq!(
            (r.account.as_str(), r.id.as_str(), r.name()),
            ("123456789012", "my_agent-AbCdE12345", "my_agent")
        );
        let r = runtime("my_agent-AbCdE12345", Some("123456789012"), "eu-west-1").unwrap();
        assert_eq!(
            r.arn,
            "arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/my_agent-AbCdE12345"
        );
        for bad in [
            "arn:aws:bedrock:us-west-2:123456789012:runtime/my_agent-AbCdE12345",
            "arn:aws:bedrock-agentcore:us-west-2:1234:runtime/my_agent-AbCdE12345",
            "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/my_agent-short",
            "arn:aws:bedrock-agentcore:us-west-2:123456789012:agent/my_agent-AbCdE12345",
            "1agent-AbCdE12345",
        ] {
            assert_eq!(
                runtime(bad, Some("123456789012"), "r").unwrap_err().kind,
                ErrorKind::Validation,
                "{bad}"
            );
        }
        assert_eq!(
            runtime("my_agent-AbCdE12345", None, "r").unwrap_err().field,
            Some("accountId")
        );
    }

    #[test]
    fn qualifier_is_default_or_a_known_endpoint() {
        let r = runtime(ARN, None, "r").unwrap();
        let known = vec!["prod".to_string()];
        assert_eq!(qualifier(None, &known, &r).unwrap(), "DEFAULT");
        assert_eq!(qualifier(Some("prod"), &known, &r).unwrap(), "prod");
        assert_eq!(
            qualifier(Some("beta"), &known, &r).unwrap_err().kind,
            ErrorKind::ResourceNotFound
        );
    }

    #[test]
    fn session_ids_are_33_to_256_characters() {
        let mut h = HeaderMap::new();
        assert!(session(&h).unwrap().len() >= 33);
        h.insert(SESSION_HEADER, "a".repeat(32).parse().unwrap());
        assert_eq!(session(&h).unwrap_err().kind, ErrorKind::Validation);
        h.insert(SESSION_HEADER, "a".repeat(33).parse().unwrap());
        assert_eq!(session(&h).unwrap(), "a".repeat(33));
        h.insert(SESSION_HEADER, "a".repeat(257).parse().unwrap());
        assert!(session(&h).is_err());
        let mut h = HeaderMap::new();
        h.insert("traceparent", "x".repeat(129).parse().unwrap());
        assert_eq!(bounded_headers(&h).unwrap_err().field, Some("traceParent"));
    }
}
