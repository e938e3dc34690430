//! Reading request bodies with a size limit and JSON errors instead of axum's plain-text ones.

use super::error::ApiError;
use axum::body::{Body, Bytes};
use herald_core::{ErrorCode, HeraldError};
use serde::de::DeserializeOwned;

/// Bytes a body may have beyond the payload limit (event name, targets, JSON punctuation).
const ENVELOPE_BYTES: usize = 256 * 1024;

/// Reads the whole body, refusing more than `max_payload + ENVELOPE_BYTES` bytes.
pub(crate) async fn read(body: Body, max_payload: usize) -> Result<Bytes, ApiError> {
    let limit = max_payload + ENVELOPE_BYTES;
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        HeraldError::new(
            ErrorCode::TooLarge,
            format!("request body exceeds {limit} bytes"),
        )
        .into()
    })
}

/// Parses JSON with an error naming the problem.
pub(crate) fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        HeraldError::refused_input(ErrorCode::BadRequest, "invalid JSON body", e).into()
    })
}

/// Refuses a payload over the limit.
pub(crate) fn check_payload(
    payload: &serde_json::value::RawValue,
    max: usize,
) -> Result<(), ApiError> {
    let size = payload.get().len();
    if size > max {
        return Err(HeraldError::new(
            ErrorCode::TooLarge,
            format!("payload of {size} bytes exceeds the limit of {max} bytes"),
        )
        .into());
    }
    Ok(())
}
