//! The API's one error shape, `{"error": {"code", "field", "message"}}`, its kinds, and how an
//! engine error maps onto a kind.
//!
//! Invariant: every refusal of every route goes through here, as one [`ErrorKind`]; a kind's
//! HTTP status and code are spelled once, in [`ErrorKind::status`] and [`ErrorKind::code`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::engine::EngineError;

/// Why a route refuses, as the answer's status and `code` say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The request is malformed or a value breaks a rule; `field` names it.
    Invalid,
    /// No token, or a wrong one.
    Unauthorized,
    /// A Host or an Origin that is not the API's own.
    Forbidden,
    /// No such app, job or route.
    NotFound,
    /// A name, port or domain another app holds; `field` names it.
    Conflict,
    /// Understood, but the engine will not do it (it says why).
    Refused,
    /// The app did not start.
    StartFailed,
    /// Something failed inside the engine.
    Internal,
}

impl ErrorKind {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Refused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::StartFailed => StatusCode::BAD_GATEWAY,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The answer's `code`, for a client to act on.
    pub(crate) fn code(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Refused => "refused",
            ErrorKind::StartFailed => "start_failed",
            ErrorKind::Internal => "internal",
        }
    }
}

/// The API's one error shape: `{error: {code, field, message}}`, with the kind's status.
pub(crate) fn error(kind: ErrorKind, field: Option<&str>, message: &str) -> Response {
    (
        kind.status(),
        Json(json!({ "error": { "code": kind.code(), "field": field, "message": message } })),
    )
        .into_response()
}

pub(crate) struct ApiError(pub(crate) EngineError);

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    /// The kind of refusal, and the field at fault when there is one (a refused step of an
    /// apps file: `apps.NAME.FIELD`, as the file names it).
    fn kind(&self) -> (ErrorKind, Option<String>) {
        match &self.0 {
            EngineError::Invalid(i) => (ErrorKind::Invalid, Some(i.field.to_string())),
            EngineError::Plan { app, invalid } => (
                ErrorKind::Invalid,
                Some(format!("apps.{app}.{}", invalid.field)),
            ),
            EngineError::Conflict(i) => (ErrorKind::Conflict, Some(i.field.to_string())),
            EngineError::NotFound(_) => (ErrorKind::NotFound, None),
            EngineError::Refused(_) => (ErrorKind::Refused, None),
            EngineError::Start { .. } => (ErrorKind::StartFailed, None),
            _ => (ErrorKind::Internal, None),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (kind, field) = self.kind();
        error(kind, field.as_deref(), &self.0.to_string())
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The statuses and codes clients know (docs and the UI read `code`): a change here is a
    /// change of the API.
    #[test]
    fn each_kind_keeps_its_status_and_code() {
        use ErrorKind::*;
        for (kind, status, code) in [
            (Invalid, 400, "invalid"),
            (Unauthorized, 401, "unauthorized"),
            (Forbidden, 403, "forbidden"),
            (NotFound, 404, "not_found"),
            (Conflict, 409, "conflict"),
            (Refused, 422, "refused"),
            (StartFailed, 502, "start_failed"),
            (Internal, 500, "internal"),
        ] {
            assert_eq!((kind.status().as_u16(), kind.code()), (status, code));
        }
    }

    #[tokio::test]
    async fn an_error_answers_the_one_shape() {
        let r = error(
            ErrorKind::Conflict,
            Some("port"),
            "port 5000 is taken by \"shop\"",
        );
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"error":{"code":"conflict","field":"port","message":"port 5000 is taken by \"shop\""}}"#
        );
    }
}
