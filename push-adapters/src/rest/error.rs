//! REST errors: every failure answers `{"error":{"code","message"}}` with the code's status,
//! also what axum refuses before a handler runs (a bad path, a wrong method, no such route),
//! which it would answer in plain text or with an empty body.

use axum::extract::rejection::PathRejection;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_core::{ErrorCode, HeraldError};
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

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        let code = if r.status() == StatusCode::NOT_FOUND {
            ErrorCode::NotFound
        } else {
            ErrorCode::BadRequest
        };
        ApiError(HeraldError::new(
            code,
            format!("bad URL path: {}", r.body_text()),
        ))
    }
}

/// Answers a path no route serves: a JSON 404 (the router's fallback).
pub async fn not_found() -> ApiError {
    HeraldError::new(
        ErrorCode::NotFound,
        "no such endpoint; see docs/protocol.md",
    )
    .into()
}

/// Answers a method a route does not take: 405 (axum adds `Allow`) with a JSON body.
pub async fn method_not_allowed(method: Method) -> Response {
    let error = HeraldError::bad_request(format!(
        "method {method} is not allowed here; the Allow header lists the ones that are"
    ));
    (StatusCode::METHOD_NOT_ALLOWED, ApiError(error)).into_response()
}
