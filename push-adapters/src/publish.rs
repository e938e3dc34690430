//! How adapters hand events to dispatchers: through the typed request layer, under an id the
//! adapter chose, waiting at most [`ACCEPT_TIMEOUT`].
//!
//! Because the adapter names the event, the request can be sent again when the dispatcher that
//! took it dies before answering: a live dispatcher publishes the same id, and gateways drop a
//! copy they already delivered. A dispatcher's death then costs one short attempt
//! ([`herald_core::bus::failover`]) instead of the whole timeout.

use herald_core::bus::Bus;
use herald_core::metrics::Metrics;
use herald_core::requests::Requester;
use std::sync::Arc;
use std::time::Duration;

/// How long an adapter waits, over all attempts, for a dispatcher to accept an event.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The requester adapters send notifies and queries with, its durations observed in `metrics`.
pub fn requester(bus: Arc<dyn Bus>, metrics: &Metrics) -> Requester {
    Requester::new(bus, ACCEPT_TIMEOUT).observed(metrics)
}
