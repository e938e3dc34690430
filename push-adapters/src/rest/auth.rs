//! API key checks: `Authorization: Bearer <key>` against the configured argon2id hashes.

use super::error::ApiError;
use super::RestState;
use axum::http::HeaderMap;
use herald_core::{ErrorCode, HeraldError};

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
    if state.config.api_keys.verify(key).await {
        Ok(())
    } else {
        Err(HeraldError::new(ErrorCode::Unauthorized, "API key not accepted").into())
    }
}

/// Checks the request's bearer key.
pub(crate) async fn require_key(state: &RestState, headers: &HeaderMap) -> Result<(), ApiError> {
    check_key(state, bearer(headers)).await
}
