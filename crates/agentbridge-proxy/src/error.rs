//! The proxy's error type and the one place errors become OpenAI error responses.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// From the SDK: bad request for an agent, or an upstream failure.
    #[error(transparent)]
    Sdk(#[from] agentbridge::Error),
    /// Missing or wrong API key.
    #[error("{0}")]
    Unauthorized(String),
    /// The request body is not valid JSON or not a chat request.
    #[error("{message}")]
    BadRequest {
        /// What was wrong.
        message: String,
        /// The field at fault.
        param: Option<String>,
    },
    /// No model of that name is served.
    #[error("model {model:?} is not served here; available models: {}", served.join(", "))]
    ModelNotFound {
        /// What was asked for.
        model: String,
        /// What is served.
        served: Vec<String>,
    },
    /// The body exceeds the limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Too many requests in flight.
    #[error("the gateway is at its limit of {0} concurrent requests; retry shortly")]
    Overloaded(usize),
    /// No such route or resource.
    #[error("not found: {0}")]
    NotFound(String),
    /// The caller may not do this (model not allowed for the key, admin API without the master key).
    #[error("{0}")]
    Forbidden(String),
    /// A key's rate limit or budget.
    #[error("{message}")]
    RateLimited {
        /// Why.
        message: String,
        /// Seconds until it may work again.
        retry_after: Option<u64>,
        /// Whether retrying can help (not for an exhausted budget).
        retry: bool,
    },
    /// A dependency of the gateway (the key store) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// The gateway failed on its own (a bug, not the request's or the agent's fault).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ProxyError {
    /// The HTTP status. One exhaustive match.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Sdk(e) => {
                StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::ModelNotFound { .. } => StatusCode::NOT_FOUND,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The OpenAI error body.
    pub fn body(&self) -> Value {
        let (ty, code, param): (&str, String, Option<String>) = match self {
            Self::Sdk(e) => return e.to_openai_json(),
            Self::Unauthorized(_) => ("authentication_error", "invalid_api_key".into(), None),
            Self::BadRequest { param, .. } => (
                "invalid_request_error",
                "invalid_request".into(),
                param.clone(),
            ),
            Self::ModelNotFound { .. } => (
                "invalid_request_error",
                "model_not_found".into(),
                Some("model".into()),
            ),
            Self::BodyTooLarge { .. } => {
                ("invalid_request_error", "request_too_large".into(), None)
            }
            Self::Overloaded(_) => ("api_error", "overloaded".into(), None),
            Self::NotFound(_) => ("invalid_request_error", "not_found".into(), None),
            Self::Forbidden(_) => ("permission_error", "forbidden".into(), None),
            Self::RateLimited { retry: false, .. } => {
                ("budget_exceeded", "budget_exceeded".into(), None)
            }
            Self::RateLimited { .. } => ("rate_limit_error", "rate_limit_exceeded".into(), None),
            Self::Unavailable(_) => ("api_error", "unavailable".into(), None),
            Self::Internal(_) => ("api_error", "internal_error".into(), None),
        };
        json!({"error": {"message": self.to_string(), "type": ty, "param": param, "code": code}})
    }

    /// Whether a client retry can help (`x-should-retry`).
    pub fn should_retry(&self) -> bool {
        match self {
            Self::Sdk(e) => e.is_retryable() || matches!(e, agentbridge::Error::Timeout(_)),
            Self::Overloaded(_) | Self::Unavailable(_) => true,
            Self::RateLimited { retry, .. } => *retry,
            _ => false,
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request refused");
        }
        let mut r = (status, axum::Json(self.body())).into_response();
        let h = r.headers_mut();
        h.insert(
            "x-should-retry",
            HeaderValue::from_static(if self.should_retry() { "true" } else { "false" }),
        );
        let retry_after = match &self {
            Self::Sdk(agentbridge::Error::Aws {
                retry_after: Some(d),
                ..
            }) => Some(d.as_secs().max(1)),
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        };
        if let Some(v) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            h.insert("retry-after", v);
        } else if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::SERVICE_UNAVAILABLE
        {
            h.insert("retry-after", HeaderValue::from_static("1"));
        }
        r
    }
}

/// The proxy's result type.
pub type Result<T, E = ProxyError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_types_are_openai_shaped() {
        let cases: Vec<(ProxyError, u16, &str)> = vec![
            (
                ProxyError::Unauthorized("x".into()),
                401,
                "authentication_error",
            ),
            (
                ProxyError::BadRequest {
                    message: "m".into(),
                    param: Some("messages".into()),
                },
                400,
                "invalid_request_error",
            ),
            (
                ProxyError::ModelNotFound {
                    model: "m".into(),
                    served: vec!["a".into()],
                },
                404,
                "invalid_request_error",
            ),
            (
                ProxyError::BodyTooLarge { limit: 1 },
                413,
                "invalid_request_error",
            ),
            (ProxyError::Overloaded(1), 503, "api_error"),
            (ProxyError::Internal("x".into()), 500, "api_error"),
        ];
        for (e, status, ty) in cases {
            assert_eq!(e.status().as_u16(), status);
            assert_eq!(e.body()["error"]["type"], ty);
            assert!(
                e.body()["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
    }
}
