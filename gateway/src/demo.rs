//! The demo: a chat and live log page at `/`, the browser client at `/herald.js`, and a
//! development-only endpoint that mints tokens for any name.
//!
//! The token endpoint trusts whoever calls it, so the binary serves the demo only when asked
//! (or for a plain local `herald serve`), on loopback unless told otherwise. What it mints is
//! kept small: a short-lived token granting the demo's own channels, never a private one, and
//! client publish to the channels its holder joins (the chat sends through `publish` frames).

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
