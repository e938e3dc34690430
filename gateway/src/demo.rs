//! The demo: a chat and live log page at `/`, the browser client at `/herald.js`, and a
//! development-only endpoint that mints tokens for any name.
//!
//! The token endpoint trusts whoever calls it, so the binary serves the demo only when asked
//! (or for a plain local `herald serve`), on loopback unless told otherwise. What it mints is
//! kept small: a short-lived token granting the demo's own channels, never a private one, and
//! client publish to the channels its holder joins (the chat sends through `publish` frames).
//! The page also shows lifecycle events live: [`relay_lifecycle`] reposts them to the public
//! channel `lifecycle`, which is why the demo is for trying Herald out, never production.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use herald_core::names::check_name;
use herald_core::token::{self, Claims};
use herald_core::HeraldError;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

const INDEX_HTML: &str = include_str!("../../demo/index.html");
const APP_JS: &str = include_str!("../../demo/app.js");
const STYLE_CSS: &str = include_str!("../../demo/style.css");
const HERALD_JS: &str = include_str!("../../clients/js/herald.js");

/// Lifetime of demo tokens: the page asks for a fresh one at every (re)ident.
pub const DEMO_TOKEN_TTL_SECS: u64 = 10 * 60;
/// What demo tokens grant: the demo's own channels, which are public anyway; never a private one.
pub const DEMO_CHANNELS: [&str; 2] = ["chat", "logs"];

struct DemoState {
    jwt_secret: Vec<u8>,
}

/// The demo's routes.
pub fn router(jwt_secret: Vec<u8>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/herald.js",
            get(|| async { asset("text/javascript; charset=utf-8", HERALD_JS) }),
        )
        .route(
            "/demo/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/demo/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/demo/token", post(demo_token))
        .with_state(Arc::new(DemoState { jwt_secret }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn error(status: StatusCode, e: HeraldError) -> Response {
    let body = json!({"error": {"code": e.code.as_str(), "message": e.message}});
    (status, Json(body)).into_response()
}

fn bad(e: HeraldError) -> Response {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    error(status, e)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    user: String,
}

async fn demo_token(State(state): State<Arc<DemoState>>, body: Bytes) -> Response {
    let request: TokenRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(HeraldError::bad_request(format!("invalid JSON body: {e}"))),
    };
    if let Err(e) = check_name("user", &request.user) {
        return bad(e);
    }
    let now = token::now_secs();
    let claims = Claims {
        sub: request.user.clone(),
        exp: now + DEMO_TOKEN_TTL_SECS,
        iat: Some(now),
        channels: DEMO_CHANNELS.iter().map(|c| c.to_string()).collect(),
        // Joins still need grants: this lets the holder publish only where it may be a member.
        publish: vec!["*".to_string()],
        jti: None,
        once: false,
    };
    match token::mint(&state.jwt_secret, &claims) {
        Ok(token) => Json(json!({"user": request.user, "token": token})).into_response(),
        Err(e) => bad(e),
    }
}

/// The channel the demo reposts lifecycle events to.
pub const LIFECYCLE_CHANNEL: &str = "lifecycle";
/// The event name they carry there.
pub const LIFECYCLE_EVENT: &str = "LIFECYCLE";

/// Reposts every lifecycle event `reader` gets to the channel [`LIFECYCLE_CHANNEL`] (payload:
/// the event itself) until `shutdown`, so the demo page can show who came and went.
pub async fn relay_lifecycle(
    mut reader: Box<dyn herald_core::event_log::EventReader>,
    requests: herald_core::requests::Requester,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use herald_core::protocol::notify::{Notify, Targets};
    let wait = std::time::Duration::from_millis(200);
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return,
            batch = reader.next_batch(100, wait) => batch,
        };
        let events = match batch {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "the demo cannot read lifecycle events; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                }
            }
        };
        for event in events {
            let Ok(payload) = serde_json::value::to_raw_value(&event) else {
                continue;
            };
            let notify = Notify {
                event: LIFECYCLE_EVENT.to_string(),
                targets: Targets {
                    channels: vec![LIFECYCLE_CHANNEL.to_string()],
                    ..Targets::default()
                },
                payload,
            };
            let id = herald_core::messages::EventIds::fresh();
            if let Err(e) = requests.notify(&id, &notify).await {
                tracing::debug!(error = %e, "a lifecycle event did not reach the demo channel");
            }
        }
        // Shown or not, the demo does not replay old events.
        let _ = reader.acknowledge().await;
    }
}
