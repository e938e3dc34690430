//! REST errors: every failure answers `{"error":{"code","message"}}` with the code's status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_core::HeraldError;
use serde_json::json;

/// An error answered to a REST caller.
#[derive(Debug)]
pub struct ApiError(pub HeraldError);

impl From<HeraldError> for ApiError {
    fn from(e: HeraldError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"error": {"code": self.0.code.as_str(), "message": self.0.message}});
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.0.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
