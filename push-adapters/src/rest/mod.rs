//! The REST adapter: REST API v1 for backends, plus the TURTED-compatible `POST /push`.
//!
//! Every call but `/push` needs `Authorization: Bearer <api key>`; keys are configured as
//! argon2id hashes and each verdict is cached; an address that fails too often is refused for
//! a while (429). Errors are `{"error":{"code","message"}}`.

pub mod admin;
mod auth;
mod batch;
mod body;
mod error;
mod routes;
mod turted;

use axum::extract::State;
use herald_core::auth_limit::AuthLimiter;
use herald_core::bus::Bus;
use herald_core::credentials::ApiKeys;
use herald_core::metrics::{HistogramFamily, Metric, Metrics, LATENCY_BUCKETS};
use herald_core::requests::Requester;
use std::sync::Arc;

pub use error::{method_not_allowed, not_found, ApiError};
pub use routes::decode_event_body;
pub use turted::{decode_push, PushRequest};

/// What the REST adapter needs to know.
#[derive(Clone)]
pub struct RestConfig {
    /// Accepted API keys.
    pub api_keys: ApiKeys,
    /// Failed API keys counted per client address.
    pub auth_limit: AuthLimiter,
    /// Secret for minting tokens at `POST /v1/tokens`; without one that call is refused.
    pub jwt_secret: Option<Vec<u8>>,
    /// Longest lifetime `POST /v1/tokens` hands out, in seconds.
    pub max_token_ttl_secs: u64,
    /// Largest event payload, in bytes of JSON.
    pub max_payload_bytes: usize,
    /// Whether to serve the admin console at `/admin`.
    pub admin: bool,
    /// Pusher apps whose HTTP API (`/apps/{id}/…`) is served beside REST API v1.
    pub pusher_apps: herald_core::pusher::PusherApps,
}

pub(crate) struct RestState {
    requests: Requester,
    config: RestConfig,
    accepted: Arc<Metric>,
    refused: Arc<Metric>,
    durations: Arc<HistogramFamily>,
}

/// The routes of the REST adapter.
pub fn router(bus: Arc<dyn Bus>, config: RestConfig, metrics: &Metrics) -> axum::Router {
    let state = Arc::new(RestState {
        requests: crate::publish::requester(bus, metrics),
        config,
        accepted: metrics.counter(
            "herald_rest_events_accepted_total",
            "Events the REST adapter answered 2xx for.",
        ),
        refused: metrics.counter(
            "herald_rest_events_refused_total",
            "Notify calls answered with an error.",
        ),
        durations: metrics.histogram_family(
            "herald_rest_request_duration_seconds",
            "REST requests from the first byte of the request to the response, by route \
             (the matched path pattern) and status.",
            LATENCY_BUCKETS,
        ),
    });
    let admin = state.config.admin;
    let mut routes = routes::router(state.clone());
    if !state.config.pusher_apps.is_empty() {
        let apps = state.config.pusher_apps.clone();
        routes = routes.merge(crate::pusher::router(state.requests.clone(), apps, metrics));
    }
    // A route layer sees the matched route's pattern. Failed Pusher signatures (401) count
    // against the address like failed API keys.
    let router = routes
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), timed))
        .layer(axum::middleware::from_fn_with_state(
            state,
            auth::limit_failures,
        ));
    if admin {
        router.merge(admin::router())
    } else {
        router
    }
}

/// Records each request's duration under its route pattern (never the raw path, whose user
/// and channel names would make a label per name) and status.
async fn timed(
    State(state): State<Arc<RestState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let labels = vec![
        ("route".to_string(), route),
        ("status".to_string(), response.status().as_u16().to_string()),
    ];
    state
        .durations
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}
