//! The handlers of REST API v1.

use super::auth::require_key;
use super::body;
use super::error::{not_found, ApiError};
use super::RestState;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_core::history::Target;
use herald_core::messages::{EventIds, Query};
use herald_core::names::check_name;
use herald_core::protocol::notify::{Notify, Targets};
use herald_core::protocol::{excerpt, page};
use herald_core::token::{self, Claims};
use herald_core::{ErrorCode, HeraldError};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use std::sync::Arc;

/// Longest lifetime of a one-time token: they exist to hand a session over within seconds.
pub const MAX_ONCE_TTL_SECS: u64 = 600;

pub(crate) fn router(state: Arc<RestState>) -> Router {
    Router::new()
        .route("/v1/notify", post(notify))
        .route("/v1/notify/batch", post(super::batch::notify_batch))
        .route("/v1/notify/user/{user}", post(notify_user))
        .route("/v1/notify/channel/{channel}", post(notify_channel))
        .route("/v1/tokens", post(tokens))
        .route("/v1/users/{user}", get(user_info))
        .route("/v1/users/{user}/disconnect", post(disconnect))
        .route("/v1/channels/{channel}", get(channel_info))
        .route("/v1/channels/{channel}/history", get(channel_history))
        .route("/v1/users/{user}/history", get(user_history))
        .route("/v1/channels", get(channels))
        .route("/v1/presence", get(presence))
        .route("/v1/cluster", get(cluster))
        .route("/push", post(super::turted::push))
        .route("/push/", post(super::turted::push))
        .route("/v1/{*rest}", axum::routing::any(not_found))
        .method_not_allowed_fallback(super::error::method_not_allowed)
        .with_state(state)
}

/// The body of `/v1/notify/user/{u}` and `/v1/notify/channel/{c}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    event: String,
    #[serde(default)]
    payload: Option<Box<RawValue>>,
}

async fn notify(
    State(state): State<Arc<RestState>>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    require_key(&state, &headers).await?;
    let bytes = body::read(request, state.config.max_payload_bytes).await?;
    let notify = Notify::decode(&bytes)?;
    accept(&state, notify).await
}

async fn notify_user(
    State(state): State<Arc<RestState>>,
    user: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    let Path(user) = user?;
    let targets = Targets {
        users: vec![user],
        ..Targets::default()
    };
    notify_targets(&state, &headers, targets, request).await
}

async fn notify_channel(
    State(state): State<Arc<RestState>>,
    channel: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    let Path(channel) = channel?;
    let targets = Targets {
        channels: vec![channel],
        ..Targets::default()
    };
    notify_targets(&state, &headers, targets, request).await
}

/// The shared body of the one-target calls: `{"event", "payload"}` for the given targets.
async fn notify_targets(
    state: &RestState,
    headers: &HeaderMap,
    targets: Targets,
    request: Body,
) -> Result<Response, ApiError> {
    require_key(state, headers).await?;
    let bytes = body::read(request, state.config.max_payload_bytes).await?;
    accept(state, decode_event_body(&bytes, targets)?).await
}

/// Decodes and validates the body of the one-target calls (`{"event", "payload"}`) into a
/// notify for `targets`. Public so the fuzz targets reach the code the handlers run.
pub fn decode_event_body(bytes: &[u8], targets: Targets) -> Result<Notify, ApiError> {
    let event: EventBody = body::json(bytes)?;
    let notify = Notify {
        event: event.event,
        targets,
        payload: event.payload.unwrap_or_else(null),
    };
    notify.validate()?;
    Ok(notify)
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_string()).unwrap_or_else(|_| unreachable!("valid JSON"))
}

/// Checks the payload size, hands the event to a dispatcher and answers 202 with its id.
pub(crate) async fn accept(state: &RestState, notify: Notify) -> Result<Response, ApiError> {
    let result = async {
        body::check_payload(&notify.payload, state.config.max_payload_bytes)?;
        Ok::<_, ApiError>(state.requests.notify(&EventIds::fresh(), &notify).await?)
    }
    .await;
    match result {
        Ok(id) => {
            state.accepted.inc();
            Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response())
        }
        Err(e) => {
            state.refused.inc();
            Err(e)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    user: String,
    #[serde(default)]
    channels: Vec<String>,
    /// Channel patterns the user may publish to from a connection.
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    ttl_secs: Option<u64>,
    #[serde(default)]
    once: bool,
}

async fn tokens(
    State(state): State<Arc<RestState>>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    require_key(&state, &headers).await?;
    let bytes = body::read(request, 0).await?;
    let wanted: TokenRequest = body::json(&bytes)?;
    check_name("user", &wanted.user)?;
    for pattern in wanted.channels.iter().chain(&wanted.publish) {
        let plain = pattern.replace('*', "");
        if !(plain.is_empty() || herald_core::names::is_valid_name(&plain)) || pattern.len() > 128 {
            return Err(HeraldError::bad_request(format!(
                "invalid channel pattern {pattern:?}: channel-name characters and `*`"
            ))
            .into());
        }
    }
    let max_token_ttl = state.config.max_token_ttl_secs;
    let (default_ttl, max_ttl) = if wanted.once {
        (60, MAX_ONCE_TTL_SECS.min(max_token_ttl))
    } else {
        (3600.min(max_token_ttl), max_token_ttl)
    };
    let ttl = wanted.ttl_secs.unwrap_or(default_ttl);
    if ttl == 0 || ttl > max_ttl {
        return Err(HeraldError::bad_request(format!(
            "`ttl_secs` must be between 1 and {max_ttl}{}",
            if wanted.once {
                " for one-time tokens"
            } else {
                ""
            }
        ))
        .into());
    }
    let now = token::now_secs();
    let claims = Claims {
        sub: wanted.user.clone(),
        exp: now + ttl,
        iat: Some(now),
        channels: wanted.channels,
        publish: wanted.publish,
        jti: wanted
            .once
            .then(|| format!("{:032x}", rand::random::<u128>())),
        once: wanted.once,
    };
    let Some(secret) = &state.config.jwt_secret else {
        return Err(HeraldError::new(
            ErrorCode::Forbidden,
            "this server has no --jwt-secret, so it cannot mint tokens; sign them in your \
             backend with the private key whose public half Herald is configured with",
        )
        .into());
    };
    let token = token::mint(secret, &claims)?;
    Ok(Json(json!({
        "token": token,
        "user": wanted.user,
        "expires_at": claims.exp,
        "once": wanted.once,
    }))
    .into_response())
}

async fn query(state: &RestState, query: Query) -> Result<Response, ApiError> {
    Ok(Json(state.requests.query(&query).await?).into_response())
}

async fn user_info(
    State(state): State<Arc<RestState>>,
    user: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(user) = user?;
    require_key(&state, &headers).await?;
    check_name("user", &user)?;
    query(&state, Query::User { user }).await
}

async fn channel_info(
    State(state): State<Arc<RestState>>,
    channel: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(channel) = channel?;
    require_key(&state, &headers).await?;
    check_name("channel", &channel)?;
    query(&state, Query::Channel { channel }).await
}

/// `GET /v1/channels/{channel}/history?since=<pos>&limit=N`.
async fn channel_history(
    State(state): State<Arc<RestState>>,
    channel: Result<Path<String>, PathRejection>,
    RawQuery(params): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(channel) = channel?;
    require_key(&state, &headers).await?;
    check_name("channel", &channel)?;
    history(&state, Target::Channel(channel), params.as_deref()).await
}

/// `GET /v1/users/{user}/history?since=<pos>&limit=N`.
async fn user_history(
    State(state): State<Arc<RestState>>,
    user: Result<Path<String>, PathRejection>,
    RawQuery(params): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(user) = user?;
    require_key(&state, &headers).await?;
    check_name("user", &user)?;
    history(&state, Target::User(user), params.as_deref()).await
}

/// A history read: `since` (a position token) and `limit` (0 to 1,000; 0 answers only the
/// stream's position) from the query string.
async fn history(
    state: &RestState,
    target: Target,
    params: Option<&str>,
) -> Result<Response, ApiError> {
    let (mut since, mut limit) = (None, None);
    for pair in params.unwrap_or("").split('&') {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("", "") => {}
            ("since", value) => since = Some(value.to_string()),
            ("limit", value) => {
                let n: usize = value
                    .parse()
                    .ok()
                    .filter(|n| *n <= herald_core::history::MAX_PAGE)
                    .ok_or_else(|| {
                        HeraldError::bad_request(format!(
                            "`limit` must be a number between 0 and {}",
                            herald_core::history::MAX_PAGE
                        ))
                    })?;
                limit = Some(n);
            }
            (name, _) => {
                return Err(HeraldError::bad_request(format!(
                    "unknown query parameter {:?}; use `since` and `limit`",
                    excerpt(name)
                ))
                .into())
            }
        }
    }
    let query_history = Query::History {
        target,
        since,
        limit,
    };
    query(state, query_history).await
}

/// `GET /v1/presence`: every connected user and every channel, for a backend that resyncs
/// after missing lifecycle events.
async fn presence(
    State(state): State<Arc<RestState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_key(&state, &headers).await?;
    query(&state, Query::Presence).await
}

/// `GET /v1/cluster`: gateways, dispatchers and the message bus, as a dispatcher sees them.
async fn cluster(
    State(state): State<Arc<RestState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_key(&state, &headers).await?;
    query(&state, Query::Cluster).await
}

/// `GET /v1/channels?limit=N&cursor=C`: one page of channels in name order.
async fn channels(
    State(state): State<Arc<RestState>>,
    RawQuery(params): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_key(&state, &headers).await?;
    let (mut cursor, mut limit) = (None, None);
    for pair in params.as_deref().unwrap_or("").split('&') {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("", "") => {}
            ("cursor", value) => cursor = Some(page::decode_cursor(value).map(|_| value)?),
            ("limit", value) => {
                let n = value.parse().map_err(|_| {
                    HeraldError::bad_request(format!(
                        "`limit` must be a number between 1 and {}",
                        page::MAX_PAGE_LIMIT
                    ))
                })?;
                limit = Some(page::page_limit(Some(n))?);
            }
            (name, _) => {
                return Err(HeraldError::bad_request(format!(
                    "unknown query parameter {:?}; use `limit` and `cursor`",
                    excerpt(name)
                ))
                .into())
            }
        }
    }
    let query_channels = Query::Channels {
        cursor: cursor.map(str::to_string),
        limit,
    };
    query(&state, query_channels).await
}

async fn disconnect(
    State(state): State<Arc<RestState>>,
    user: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(user) = user?;
    require_key(&state, &headers).await?;
    check_name("user", &user)?;
    query(&state, Query::DisconnectUser { user }).await
}
