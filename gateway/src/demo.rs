//! The demo: a chat and live log page at `/`, the browser client at `/herald.js`, and two
//! development-only endpoints that mint tokens for any name and post chat messages.
//!
//! The token endpoint trusts whoever calls it, so the binary serves the demo only when asked
//! (or for a plain local `herald serve`), on loopback unless told otherwise. What it mints is
//! kept small: a short-lived token granting the demo's own channels, never a private one.
//! `/demo/publish` asks a dispatcher to authorize the caller's token exactly as an ident and a
//! join would (grants, one-time tokens), so the demo cannot post where its caller could not.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use herald_core::bus::Bus;
use herald_core::messages::{CommandReply, GatewayCommand};
use herald_core::names::check_name;
use herald_core::protocol::client_frames::IdentAuth;
use herald_core::protocol::notify::{Notify, Targets};
use herald_core::requests::Requester;
use herald_core::token::{self, Claims};
use herald_core::HeraldError;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const INDEX_HTML: &str = include_str!("../../demo/index.html");
const APP_JS: &str = include_str!("../../demo/app.js");
const STYLE_CSS: &str = include_str!("../../demo/style.css");
const HERALD_JS: &str = include_str!("../../clients/js/herald.js");

/// Longest chat message the demo accepts.
const MAX_TEXT_CHARS: usize = 2000;
/// Lifetime of demo tokens: the page asks for a fresh one at every (re)ident.
pub const DEMO_TOKEN_TTL_SECS: u64 = 10 * 60;
/// What demo tokens grant: the demo's own channels, which are public anyway; never a private one.
pub const DEMO_CHANNELS: [&str; 2] = ["chat", "logs"];
/// How long `/demo/publish` waits for a dispatcher.
const DISPATCHER_TIMEOUT: Duration = Duration::from_secs(5);

struct DemoState {
    requests: Requester,
    jwt_secret: Vec<u8>,
}

/// The demo's routes.
pub fn router(bus: Arc<dyn Bus>, jwt_secret: Vec<u8>) -> Router {
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
        .route("/demo/publish", post(demo_publish))
        .with_state(Arc::new(DemoState {
            requests: Requester::new(bus, DISPATCHER_TIMEOUT),
            jwt_secret,
        }))
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
        publish: Vec::new(),
        jti: None,
        once: false,
    };
    match token::mint(&state.jwt_secret, &claims) {
        Ok(token) => Json(json!({"user": request.user, "token": token})).into_response(),
        Err(e) => bad(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    token: String,
    channel: String,
    text: String,
}

async fn demo_publish(State(state): State<Arc<DemoState>>, body: Bytes) -> Response {
    let request: PublishRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(HeraldError::bad_request(format!("invalid JSON body: {e}"))),
    };
    if let Err(e) = check_name("channel", &request.channel) {
        return bad(e);
    }
    let text = request.text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return bad(HeraldError::bad_request(format!(
            "text must be 1-{MAX_TEXT_CHARS} characters"
        )));
    }
    let user = match authorize(&state, request.token, &request.channel).await {
        Ok(user) => user,
        Err(e) => return bad(e),
    };
    let payload = json!({
        "user": user,
        "channel": request.channel,
        "text": text,
        "at": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    });
    let notify = Notify {
        event: "CHAT:MESSAGE".to_string(),
        targets: Targets {
            channels: vec![request.channel],
            ..Targets::default()
        },
        payload: match serde_json::value::to_raw_value(&payload) {
            Ok(raw) => raw,
            Err(e) => return bad(HeraldError::internal(e)),
        },
    };
    let id = herald_core::messages::EventIds::fresh();
    match state.requests.notify(&id, &notify).await {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({"id": id}))).into_response(),
        Err(e) => bad(e),
    }
}

/// Asks a dispatcher whether `token` may post to `channel`; the token's user when it may.
async fn authorize(state: &DemoState, token: String, channel: &str) -> Result<String, HeraldError> {
    let command = GatewayCommand::Authorize {
        auth: IdentAuth::Token { token },
        channel: channel.to_string(),
    };
    match state.requests.command(&command).await? {
        CommandReply::Identified { user, .. } => Ok(user),
        other => Err(HeraldError::internal(format!(
            "unexpected dispatcher reply {other:?}"
        ))),
    }
}
