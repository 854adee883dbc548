//! The SDK's one error type, and its mapping to HTTP status and OpenAI error `type`.

use std::time::Duration;

/// The kinds of AWS errors InvokeAgent can return, before the stream (HTTP status +
/// `x-amzn-ErrorType`) or inside it (an `exception` event). Names and statuses follow the
/// `bedrock-agent-runtime` API model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AwsErrorKind {
    /// `ThrottlingException` (429).
    Throttling,
    /// `AccessDeniedException` (403).
    AccessDenied,
    /// `ResourceNotFoundException` (404).
    ResourceNotFound,
    /// `ValidationException` (400).
    Validation,
    /// `ServiceQuotaExceededException` (429 here; the model gives 400, but it is a quota).
    ServiceQuotaExceeded,
    /// `DependencyFailedException` (424).
    DependencyFailed,
    /// `BadGatewayException` (502).
    BadGateway,
    /// `InternalServerException` (500).
    InternalServer,
    /// `ModelNotReadyException` (503 here: the model is loading, try later).
    ModelNotReady,
    /// `ConflictException` (409).
    Conflict,
    /// `RetryableConflictException` (409; AgentCore: the session is busy with another call,
    /// nothing ran, so a retry with backoff is safe).
    RetryableConflict,
    /// `UnauthorizedException` (401; AgentCore: the bearer token is missing or refused).
    Unauthorized,
    /// `RuntimeClientError` (424; AgentCore: the agent's own code failed; its message is
    /// relayed).
    RuntimeClientError,
    /// A signature or credential problem reported by the SigV4 layer
    /// (`InvalidSignatureException`, `UnrecognizedClientException`, `ExpiredTokenException`...).
    Authentication,
    /// Any other error type.
    Other,
}

impl AwsErrorKind {
    /// Classifies an AWS error type name, as found in `x-amzn-ErrorType` (the part before
    /// `:`), in `:exception-type`, or as the event name (`throttlingException`).
    pub fn from_type_name(name: &str) -> Self {
        let short = name.split(':').next().unwrap_or(name);
        let short = short.rsplit('#').next().unwrap_or(short);
        match short.to_ascii_lowercase().as_str() {
            "throttlingexception" => Self::Throttling,
            "accessdeniedexception" => Self::AccessDenied,
            "resourcenotfoundexception" => Self::ResourceNotFound,
            "validationexception" => Self::Validation,
            "servicequotaexceededexception" => Self::ServiceQuotaExceeded,
            "dependencyfailedexception" => Self::DependencyFailed,
            "badgatewayexception" => Self::BadGateway,
            "internalserverexception" => Self::InternalServer,
            "modelnotreadyexception" => Self::ModelNotReady,
            "conflictexception" => Self::Conflict,
            "retryableconflictexception" => Self::RetryableConflict,
            "unauthorizedexception" => Self::Unauthorized,
            "runtimeclienterror" => Self::RuntimeClientError,
            "invalidsignatureexception"
            | "unrecognizedclientexception"
            | "expiredtokenexception"
            | "incompletesignatureexception"
            | "missingauthenticationtokenexception" => Self::Authentication,
            _ => Self::Other,
        }
    }

    /// The HTTP status the gateway answers with for this kind.
    pub fn status(self) -> u16 {
        match self {
            Self::Throttling | Self::ServiceQuotaExceeded => 429,
            Self::AccessDenied => 403,
            Self::ResourceNotFound => 404,
            Self::Validation => 400,
            Self::DependencyFailed | Self::RuntimeClientError => 424,
            Self::BadGateway => 502,
            Self::InternalServer | Self::Other => 500,
            Self::ModelNotReady => 503,
            Self::Conflict | Self::RetryableConflict => 409,
            Self::Authentication | Self::Unauthorized => 401,
        }
    }

    /// Whether a retry can help (throttling and server-side faults).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttling
                | Self::ServiceQuotaExceeded
                | Self::InternalServer
                | Self::BadGateway
                | Self::ModelNotReady
                | Self::DependencyFailed
                | Self::RetryableConflict
        )
    }
}

/// Everything that can go wrong between an OpenAI request and an agent's answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model string is not `bedrock/agent/{AGENT_ID}/{ALIAS_ID}`.
    #[error("invalid model {got:?}: expected {expected}")]
    InvalidModel {
        /// What the caller gave.
        got: String,
        /// What was expected, in words.
        expected: &'static str,
    },
    /// The request is not a valid chat completion request for an agent.
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What was wrong.
        message: String,
        /// The request field at fault, if any.
        param: Option<String>,
    },
    /// Credentials could not be resolved.
    #[error("AWS credentials unavailable: {0}")]
    Credentials(String),
    /// The request could not be signed.
    #[error("could not sign the request: {0}")]
    Signing(String),
    /// AWS answered with an error, before or inside the stream.
    #[error("{code}: {message}")]
    Aws {
        /// The error's classification.
        kind: AwsErrorKind,
        /// The AWS error type name, such as `ThrottlingException`.
        code: String,
        /// The AWS message.
        message: String,
        /// `Retry-After` given by AWS, if any.
        retry_after: Option<Duration>,
    },
    /// The upstream could not be reached or the connection failed.
    #[error("could not reach the agent endpoint: {0}")]
    Connect(String),
    /// An upstream timeout expired.
    #[error("upstream timeout: {0}")]
    Timeout(String),
    /// The event stream or an event in it could not be decoded.
    #[error("malformed event stream from the agent: {0}")]
    Decode(String),
}

impl Error {
    /// An [`Error::InvalidRequest`] naming the field at fault.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// The HTTP status code the gateway answers with. One exhaustive match: a new variant
    /// forces a decision here.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::InvalidModel { .. } | Self::InvalidRequest { .. } => 400,
            Self::Credentials(_) | Self::Signing(_) => 500,
            Self::Aws { kind, .. } => kind.status(),
            Self::Connect(_) | Self::Decode(_) => 502,
            Self::Timeout(_) => 504,
        }
    }

    /// The OpenAI error `type` for this error.
    pub fn openai_type(&self) -> &'static str {
        match self.status_code() {
            400 | 404 | 409 | 413 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            504 => "timeout",
            _ => "api_error",
        }
    }

    /// A machine-readable code (the AWS error name where there is one).
    pub fn code(&self) -> String {
        match self {
            Self::InvalidModel { .. } => "invalid_model".into(),
            Self::InvalidRequest { .. } => "invalid_request".into(),
            Self::Credentials(_) => "credentials_unavailable".into(),
            Self::Signing(_) => "signing_failed".into(),
            Self::Aws { code, .. } => code.clone(),
            Self::Connect(_) => "upstream_unreachable".into(),
            Self::Timeout(_) => "upstream_timeout".into(),
            Self::Decode(_) => "upstream_malformed".into(),
        }
    }

    /// The request field at fault, if any.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::InvalidModel { .. } => Some("model"),
            Self::InvalidRequest { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    /// Whether the same request may succeed if sent again (before anything reached the client).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Aws { kind, .. } => kind.is_retryable(),
            Self::Connect(_) => true,
            _ => false,
        }
    }

    /// The OpenAI error body `{"error": {"message", "type", "param", "code"}}`.
    pub fn to_openai_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.to_string(),
                "type": self.openai_type(),
                "param": self.param(),
                "code": self.code(),
            }
        })
    }
}

/// The SDK's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_aws_error_maps_to_the_api_model_status() {
        let cases = [
            ("ThrottlingException", 429, "rate_limit_error"),
            ("AccessDeniedException", 403, "permission_error"),
            ("ResourceNotFoundException", 404, "invalid_request_error"),
            ("ValidationException", 400, "invalid_request_error"),
            ("ServiceQuotaExceededException", 429, "rate_limit_error"),
            ("DependencyFailedException", 424, "api_error"),
            ("BadGatewayException", 502, "api_error"),
            ("InternalServerException", 500, "api_error"),
            ("ModelNotReadyException", 503, "api_error"),
            ("ConflictException", 409, "invalid_request_error"),
            ("InvalidSignatureException", 401, "authentication_error"),
            ("UnauthorizedException", 401, "authentication_error"),
            ("RetryableConflictException", 409, "invalid_request_error"),
            ("RuntimeClientError", 424, "api_error"),
            ("SomethingNewException", 500, "api_error"),
        ];
        for (name, status, ty) in cases {
            let err = Error::Aws {
                kind: AwsErrorKind::from_type_name(name),
                code: name.into(),
                message: "m".into(),
                retry_after: None,
            };
            assert_eq!(err.status_code(), status, "{name}");
            assert_eq!(err.openai_type(), ty, "{name}");
            assert_eq!(err.to_openai_json()["error"]["code"], name);
        }
    }

    #[test]
    fn error_type_header_and_event_names_classify_alike() {
        let header = "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/";
        assert_eq!(
            AwsErrorKind::from_type_name(header),
            AwsErrorKind::Throttling
        );
        assert_eq!(
            AwsErrorKind::from_type_name("throttlingException"),
            AwsErrorKind::Throttling
        );
        assert_eq!(
            AwsErrorKind::from_type_name("com.amazonaws.bedrock#ValidationException"),
            AwsErrorKind::Validation
        );
    }

    #[test]
    fn invalid_request_names_the_param() {
        let e = Error::invalid("messages", "must not be empty");
        let j = e.to_openai_json();
        assert_eq!(j["error"]["param"], "messages");
        assert_eq!(j["error"]["type"], "invalid_request_error");
        assert_eq!(e.status_code(), 400);
    }
}
