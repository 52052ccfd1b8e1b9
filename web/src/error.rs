//! Errors as JSON HTTP answers: `{"error": "…"}` with a status that says whose fault it is.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// The policies that decided a refusal.
    pub policies: Vec<String>,
    /// Seconds after which the client may try again (`Retry-After`), for a temporary refusal.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            policies: Vec::new(),
            retry_after: None,
        }
    }
    /// A refusal by the decision point: 403 with the reason and the deciding policies.
    pub fn denied(message: impl Into<String>, policies: Vec<String>) -> ApiError {
        ApiError {
            policies,
            ..ApiError::forbidden(message)
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
    /// 503 with `Retry-After: secs`: the server is briefly overloaded, try again then.
    pub fn retry_later(message: impl Into<String>, secs: u64) -> ApiError {
        ApiError {
            retry_after: Some(secs),
            ..ApiError::unavailable(message)
        }
    }
}

impl From<iris_query::QueryError> for ApiError {
    /// A query's failure: the limits are the server's (503, 504), anything else is the query's (400).
    fn from(e: iris_query::QueryError) -> ApiError {
        use iris_query::QueryError;
        let status = match &e {
            QueryError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            QueryError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            QueryError::Memory { .. } => StatusCode::INSUFFICIENT_STORAGE,
            QueryError::Statement(iris_query::StatementError::Explain) => StatusCode::FORBIDDEN,
            QueryError::Statement(iris_query::StatementError::Internal(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.user_message())
    }
}

/// The reason of an error answer, left in the response's extensions for the audit layer.
#[derive(Clone, Debug)]
pub struct ErrorNote(pub String);

impl ApiError {
    /// A request body that could not be read as JSON: its own status (400, 413 too large, 415 not
    /// JSON, 422 wrong fields) with what was expected.
    pub fn body(e: axum::extract::rejection::JsonRejection, expected: &str) -> ApiError {
        ApiError::new(
            e.status(),
            format!("expected {expected}: {}", e.body_text()),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let note = ErrorNote(self.message.clone());
        let mut response = (
            self.status,
            Json(if self.policies.is_empty() {
                serde_json::json!({ "error": self.message })
            } else {
                serde_json::json!({ "error": self.message, "policies": self.policies })
            }),
        )
            .into_response();
        response.extensions_mut().insert(note);
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}
