//! The errors `InvokeAgentRuntime` answers with, as AWS sends them for this `rest-json`
//! service: the status from the API model, the name in `x-amzn-ErrorType`, and a JSON body
//! `{"message": ...}` (ValidationException adds the model's required `reason`).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error name of the `bedrock-agentcore` API model (botocore `service-2.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the input fails the model's constraints.
    Validation,
    /// 401: the bearer token is missing or not accepted (OAuth runtimes).
    Unauthorized,
    /// 402: a service quota would be exceeded.
    ServiceQuotaExceeded,
    /// 403: not allowed (also the auth-method mismatch and SigV4 failures).
    AccessDenied,
    /// 404: no such runtime or endpoint.
    ResourceNotFound,
    /// 409: a conflicting operation.
    Conflict,
    /// 409: the session is busy; retry with backoff.
    RetryableConflict,
    /// 424: the agent's own code failed.
    RuntimeClientError,
    /// 429: request rate exceeded.
    Throttling,
    /// 500: the service failed.
    InternalServer,
}

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [ErrorKind; 10] = [
        Self::Validation,
        Self::Unauthorized,
        Self::ServiceQuotaExceeded,
        Self::AccessDenied,
        Self::ResourceNotFound,
        Self::Conflict,
        Self::RetryableConflict,
        Self::RuntimeClientError,
        Self::Throttling,
        Self::InternalServer,
    ];

    /// The error name (the shape name in the API model).
    pub fn name(self) -> &'static str {
        match self {
            Self::Validation => "ValidationException",
            Self::Unauthorized => "UnauthorizedException",
            Self::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            Self::AccessDenied => "AccessDeniedException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::Conflict => "ConflictException",
            Self::RetryableConflict => "RetryableConflictException",
            Self::RuntimeClientError => "RuntimeClientError",
            Self::Throttling => "ThrottlingException",
            Self::InternalServer => "InternalServerException",
        }
    }

    /// The HTTP status the API model gives the error (`error.httpStatusCode`).
    pub fn status(self) -> StatusCode {
        match self {
            Self::Validation => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::ServiceQuotaExceeded => StatusCode::PAYMENT_REQUIRED,
            Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::ResourceNotFound => StatusCode::NOT_FOUND,
            Self::Conflict | Self::RetryableConflict => StatusCode::CONFLICT,
            Self::RuntimeClientError => StatusCode::FAILED_DEPENDENCY,
            Self::Throttling => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalServer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The kind with this name, if the model has it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCoreError {
    /// Which error.
    pub kind: ErrorKind,
    /// The message in the body.
    pub message: String,
    /// For ValidationException: the member that failed, if one did.
    pub field: Option<&'static str>,
}

impl AgentCoreError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
        }
    }

    /// A ValidationException naming the member `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Validation,
            message: message.into(),
            field: Some(field),
        }
    }
}

impl IntoResponse for AgentCoreError {
    fn into_response(self) -> Response {
        let body = match self.kind {
            ErrorKind::Validation => {
                let mut b = json!({"message": self.message, "reason": "FieldValidationFailed"});
                if let Some(f) = self.field {
                    b["fieldList"] = json!([{"name": f, "message": self.message}]);
                }
                b
            }
            _ => json!({ "message": self.message }),
        };
        let mut r = (
            self.kind.status(),
            [("content-type", "application/json")],
            body.to_string(),
        )
            .into_response();
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{}:http://internal.amazon.com/coral/com.amazonaws.bedrockagentcore/",
            self.kind.name()
        )) {
            h.insert("x-amzn-errortype", v);
        }
        if let Ok(v) = HeaderValue::from_str(&crate::wire::uuid_like()) {
            h.insert("x-amzn-requestid", v);
        }
        r
    }
}

/// A call refused before the runtime is looked at: a model error, or a SigV4 failure
/// (`InvalidSignatureException` and the others the AWS front end answers, not in the model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// An error of the API model.
    Model(AgentCoreError),
    /// The signature check failed.
    Signature(crate::sigv4::AuthError),
}

impl From<AgentCoreError> for Refusal {
    fn from(e: AgentCoreError) -> Self {
        Self::Model(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Model(e) => e.into_response(),
            Self::Signature(e) => {
                let status = if e.code == "IncompleteSignatureException" {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::FORBIDDEN
                };
                crate::wire::aws_error(status, e.code, &e.message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_api_models() {
        let table: Vec<(&str, u16)> = ErrorKind::ALL
            .iter()
            .map(|k| (k.name(), k.status().as_u16()))
            .collect();
        assert_eq!(
            table,
            [
                ("ValidationException", 400),
                ("UnauthorizedException", 401),
                ("ServiceQuotaExceededException", 402),
                ("AccessDeniedException", 403),
                ("ResourceNotFoundException", 404),
                ("ConflictException", 409),
                ("RetryableConflictException", 409),
                ("RuntimeClientError", 424),
                ("ThrottlingException", 429),
                ("InternalServerException", 500),
            ]
        );
        assert_eq!(
            ErrorKind::from_name("ThrottlingException"),
            Some(ErrorKind::Throttling)
        );
        assert_eq!(ErrorKind::from_name("Nope"), None);
    }

    #[test]
    fn error_names_travel_in_the_header_and_validation_has_a_reason() {
        let r = AgentCoreError::invalid("runtimeSessionId", "too short").into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let t = r.headers()["x-amzn-errortype"].to_str().unwrap_or_default();
        assert!(t.starts_with("ValidationException:"), "{t}");
    }
}
