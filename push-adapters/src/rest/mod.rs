//! The REST adapter: REST API v1 for backends, plus the TURTED-compatible `POST /push`.
//!
//! Every call but `/push` needs `Authorization: Bearer <api key>`; keys are configured as
//! argon2id hashes and each verdict is cached. Errors are `{"error":{"code","message"}}`.

mod auth;
mod body;
mod error;
mod routes;
mod turted;

use herald_core::bus::Bus;
use herald_core::credentials::ApiKeys;
use herald_core::metrics::{Metric, Metrics};
use std::sync::Arc;

pub use error::ApiError;
pub use routes::decode_event_body;
pub use turted::{decode_push, PushRequest};

/// What the REST adapter needs to know.
#[derive(Clone)]
pub struct RestConfig {
    /// Accepted API keys.
    pub api_keys: ApiKeys,
    /// Secret for minting tokens at `POST /v1/tokens`.
    pub jwt_secret: Vec<u8>,
    /// Largest event payload, in bytes of JSON.
    pub max_payload_bytes: usize,
}

pub(crate) struct RestState {
    bus: Arc<dyn Bus>,
    config: RestConfig,
    accepted: Arc<Metric>,
    refused: Arc<Metric>,
}

/// The routes of the REST adapter.
pub fn router(bus: Arc<dyn Bus>, config: RestConfig, metrics: &Metrics) -> axum::Router {
    let state = Arc::new(RestState {
        bus,
        config,
        accepted: metrics.counter(
            "herald_rest_events_accepted_total",
            "Events the REST adapter answered 2xx for.",
        ),
        refused: metrics.counter(
            "herald_rest_events_refused_total",
            "Notify calls answered with an error.",
        ),
    });
    routes::router(state)
}
