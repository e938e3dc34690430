//! API key checks: `Authorization: Bearer <key>` against the configured argon2id hashes, and
//! the per-address limit on failed checks.

use super::error::ApiError;
use super::RestState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_core::{ErrorCode, HeraldError};
use std::net::SocketAddr;
use std::sync::Arc;

/// The bearer token of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Checks a key; the error says what to send.
pub(crate) async fn check_key(state: &RestState, key: Option<&str>) -> Result<(), ApiError> {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Err(HeraldError::new(
            ErrorCode::Unauthorized,
            "missing API key: send `Authorization: Bearer <api key>`",
        )
        .into());
    };
    if state.config.api_keys.verify(key).await? {
        Ok(())
    } else {
        Err(HeraldError::new(ErrorCode::Unauthorized, "API key not accepted").into())
    }
}

/// Checks the request's bearer key.
pub(crate) async fn require_key(state: &RestState, headers: &HeaderMap) -> Result<(), ApiError> {
    check_key(state, bearer(headers)).await
}

/// Refuses a client address that failed authentication too often (`429` with `Retry-After`),
/// and counts each `401` answered to it. Wraps every REST route, so `/push` (key in the body)
/// is counted like the rest. A request without a socket address (crate tests) is not limited.
pub(crate) async fn limit_failures(
    State(state): State<Arc<RestState>>,
    request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    if let Err(refused) = state.config.auth_limit.check(client) {
        return ApiError(refused).into_response();
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        if let Some(backoff) = state.config.auth_limit.failed(client) {
            tracing::info!(
                ?client,
                ?backoff,
                "REST client refused after failed API keys"
            );
        }
    }
    response
}
