//! What the Redis adapter logs and counts, in one place: each event logs one line and bumps its
//! counter.

use super::Address;
use herald_core::metrics::{Metric, Metrics};
use herald_core::HeraldError;
use std::sync::Arc;
use std::time::Duration;

/// Longest part of an invalid message quoted in the log.
const PREVIEW_CHARS: usize = 120;

/// The Redis adapter's counters.
#[derive(Clone)]
pub struct Events {
    received: Arc<Metric>,
    invalid: Arc<Metric>,
    published: Arc<Metric>,
    refused: Arc<Metric>,
    retries: Arc<Metric>,
    reconnects: Arc<Metric>,
    connected: Arc<Metric>,
}

impl Events {
    /// Registers the counters in `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        Events {
            received: metrics.counter(
                "herald_redis_received_total",
                "Messages received from the Redis subscription.",
            ),
            invalid: metrics.counter(
                "herald_redis_invalid_total",
                "Messages that are not a valid notify body (logged and skipped).",
            ),
            published: metrics.counter(
                "herald_redis_published_total",
                "Messages a dispatcher accepted as events.",
            ),
            refused: metrics.counter(
                "herald_redis_refused_total",
                "Valid messages a dispatcher refused for good (logged and skipped).",
            ),
            retries: metrics.counter(
                "herald_redis_retries_total",
                "Publish attempts retried because no dispatcher could take the event.",
            ),
            reconnects: metrics.counter(
                "herald_redis_reconnects_total",
                "Connections to Redis re-established after a loss.",
            ),
            connected: metrics.gauge(
                "herald_redis_connected",
                "1 while subscribed to Redis, 0 while reconnecting.",
            ),
        }
    }

    pub(crate) fn subscribed(&self, address: &Address, channel: &str, pattern: bool) {
        self.connected.inc();
        tracing::info!(%address, channel, pattern, "subscribed to Redis");
    }

    pub(crate) fn lost(&self, address: &Address, reason: &str) {
        self.connected.dec();
        tracing::warn!(%address, reason, "lost the Redis connection; reconnecting with backoff (messages published meanwhile are not received: Redis pub/sub is at-most-once)");
    }

    pub(crate) fn reconnect_failed(
        &self,
        address: &Address,
        attempt: u32,
        error: &str,
        next: Duration,
    ) {
        if attempt.is_multiple_of(10) {
            tracing::warn!(%address, attempt, %error, ?next, "Redis still unreachable");
        } else {
            tracing::debug!(%address, attempt, %error, ?next, "Redis reconnect failed");
        }
    }

    pub(crate) fn reconnected(&self, address: &Address, attempts: u32, down_for: Duration) {
        self.reconnects.inc();
        self.connected.inc();
        tracing::info!(%address, attempts, ?down_for, "reconnected to Redis and subscribed again");
    }

    pub(crate) fn received(&self) {
        self.received.inc();
    }

    pub(crate) fn invalid(&self, channel: &str, reason: &str, body: &[u8]) {
        self.invalid.inc();
        let text = String::from_utf8_lossy(body);
        let preview: String = text.chars().take(PREVIEW_CHARS).collect();
        tracing::warn!(channel, reason, preview = %preview, "invalid message on Redis; skipped");
    }

    pub(crate) fn published(&self) {
        self.published.inc();
    }

    pub(crate) fn refused(&self, channel: &str, error: &HeraldError) {
        self.refused.inc();
        tracing::error!(channel, code = error.code.as_str(), error = %error.message, "dispatcher refused a Redis message; skipped");
    }

    pub(crate) fn retrying(&self, error: &HeraldError, delay: Duration, first: bool) {
        self.retries.inc();
        if first {
            tracing::warn!(error = %error.message, "cannot publish a Redis message; retrying until a dispatcher takes it");
        } else {
            tracing::debug!(error = %error.message, ?delay, "publish retry");
        }
    }
}
