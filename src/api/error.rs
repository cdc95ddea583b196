//! The API's one error shape, `{"error": {"code", "field", "message"}}`, and how an engine
//! error maps onto an HTTP status and a code.
//!
//! Invariant: every refusal of every route goes through here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::engine::EngineError;

/// The API's one error shape: `{error: {code, field, message}}`.
pub(crate) fn error(
    status: StatusCode,
    code: &str,
    field: Option<&str>,
    message: &str,
) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "field": field, "message": message } })),
    )
        .into_response()
}

pub(crate) struct ApiError(pub(crate) EngineError);

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let msg = self.0.to_string();
        match &self.0 {
            EngineError::Invalid(i) => {
                error(StatusCode::BAD_REQUEST, "invalid", Some(i.field), &msg)
            }
            EngineError::Conflict(i) => {
                error(StatusCode::CONFLICT, "conflict", Some(i.field), &msg)
            }
            EngineError::NotFound(_) => error(StatusCode::NOT_FOUND, "not_found", None, &msg),
            EngineError::Refused(_) => {
                error(StatusCode::UNPROCESSABLE_ENTITY, "refused", None, &msg)
            }
            EngineError::Start { .. } => error(StatusCode::BAD_GATEWAY, "start_failed", None, &msg),
            _ => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", None, &msg),
        }
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
