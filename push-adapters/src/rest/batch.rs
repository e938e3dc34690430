//! `POST /v1/notify/batch`: up to 100 notify bodies in one request, checked together and
//! handed to one dispatcher that publishes them in order; one 202 with every id, or the list of
//! what is wrong with which item.

use super::auth::require_key;
use super::body;
use super::error::ApiError;
use super::RestState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::messages::{EventIds, NotifyRequest, MAX_BATCH_ITEMS};
use herald_core::protocol::notify::Notify;
use herald_core::{ErrorCode, HeraldError};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::sync::Arc;

/// The body: `{"notifications":[<notify body>, …]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    notifications: Vec<Box<RawValue>>,
}

/// How many payloads' worth of bytes a batch body may hold (a batch of 100 small events fits
/// easily; a batch of large payloads is better split).
const BODY_PAYLOADS: usize = 4;

pub(crate) async fn notify_batch(
    State(state): State<Arc<RestState>>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    require_key(&state, &headers).await?;
    let max_payload = state.config.max_payload_bytes;
    let bytes = body::read(request, max_payload * BODY_PAYLOADS).await?;
    let batch: BatchBody = body::json(&bytes)?;
    let count = batch.notifications.len();
    if !(1..=MAX_BATCH_ITEMS).contains(&count) {
        return Err(HeraldError::bad_request(format!(
            "`notifications` holds {count} items; a batch carries 1 to {MAX_BATCH_ITEMS}"
        ))
        .into());
    }
    let mut notifies = Vec::with_capacity(count);
    let mut invalid = Vec::new();
    for (index, raw) in batch.notifications.iter().enumerate() {
        let checked = Notify::decode(raw.get().as_bytes()).and_then(|notify| {
            body::check_payload(&notify.payload, max_payload)
                .map_err(|ApiError(e)| e)
                .map(|()| notify)
        });
        match checked {
            Ok(notify) => notifies.push(notify),
            Err(e) => invalid.push(item_error(index, &e)),
        }
    }
    if !invalid.is_empty() {
        state.refused.add(count as i64);
        let message = format!(
            "{} of {count} items are invalid; nothing was sent (see `items`)",
            invalid.len()
        );
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            &message,
            invalid,
        ));
    }
    let items = notifies
        .iter()
        .map(|notify| NotifyRequest {
            id: EventIds::fresh(),
            notify,
            from: None,
            except: None,
        })
        .collect();
    let results = match state.requests.notify_batch(items).await {
        Ok(results) => results,
        Err(e) => {
            state.refused.add(count as i64);
            return Err(e.into());
        }
    };
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    state.accepted.add(accepted as i64);
    state.refused.add((count - accepted) as i64);
    if accepted == count {
        let ids: Vec<String> = results.into_iter().filter_map(Result::ok).collect();
        return Ok((StatusCode::ACCEPTED, Json(json!({ "ids": ids }))).into_response());
    }
    // Some went out and some did not: say which, so the backend retries only those.
    let items = results
        .into_iter()
        .enumerate()
        .map(|(index, result)| match result {
            Ok(id) => json!({"index": index, "id": id}),
            Err(e) => item_error(index, &e),
        })
        .collect();
    let message = format!(
        "{} of {count} events were not accepted; retry those (see `items`)",
        count - accepted
    );
    Ok(refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        &message,
        items,
    ))
}

fn item_error(index: usize, e: &HeraldError) -> Value {
    json!({"index": index, "error": {"code": e.code.as_str(), "message": e.message}})
}

fn refusal(status: StatusCode, code: ErrorCode, message: &str, items: Vec<Value>) -> Response {
    let body = json!({"error": {"code": code.as_str(), "message": message, "items": items}});
    (status, Json(body)).into_response()
}
