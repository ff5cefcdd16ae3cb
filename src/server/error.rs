//! The API's errors: a status and a JSON body saying why (`{"error": why}`; for a scenario
//! posted to the control API, also the field, line and column), with `Retry-After` where
//! trying again later will help.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// Errors the API answers with: a status and a JSON body `{"error": reason}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 409: the request does not fit the server's state.
    #[error("{0}")]
    Conflict(String),
    /// 422: well-formed but refused (e.g. a webhook target outside the allowlist).
    #[error("{0}")]
    Unprocessable(String),
    /// 503: a limit is reached for now; try again after the given seconds.
    #[error("{0}")]
    Busy(String, u64),
    /// 429: this client asks for too much at once; try again after the given seconds.
    #[error("{0}")]
    TooMany(String, u64),
    /// Any other status, with its reason (extractor rejections: 413, 415, …).
    #[error("{1}")]
    Status(StatusCode, String),
    /// 422: a scenario posted to the control API has a mistake; the body names the field,
    /// line and column as a scenario file's error would.
    #[error("{}", .0.message)]
    Scenario(Box<crate::scenario::ScenarioError>),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Scenario(e) => {
                let body = ErrorBody {
                    error: e.to_string(),
                    field: Some(e.field.clone()),
                    line: Some(e.line),
                    column: Some(e.column),
                };
                return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
            }
            ApiError::Status(status, _) => *status,
            ApiError::Busy(..) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooMany(..) => StatusCode::TOO_MANY_REQUESTS,
        };
        let mut res = error_response(status, &self.to_string());
        if let ApiError::Busy(_, seconds) | ApiError::TooMany(_, seconds) = self {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        res
    }
}

/// A JSON error body with `status`.
pub fn error_response(status: StatusCode, reason: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            error: reason.to_string(),
            ..ErrorBody::default()
        }),
    )
        .into_response()
}

/// The body of every error response.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
    /// The field at fault, for a scenario posted to the control API (dotted, as
    /// `events.rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Its 1-based line in the posted scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Its 1-based column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}
