//! The log of lifecycle events between the dispatchers that see them and the webhook senders
//! that deliver them: appended once, read by named readers that acknowledge what they
//! delivered, so a reader that stops and comes back — or another dispatcher's reader of the
//! same name — goes on from the first event not acknowledged.
//!
//! # Layout
//! - [`memory`]: in one process (embedded mode), bounded.
//! - [`conformance`]: what every implementation must do, run against each.
//! - [`nats`]: a JetStream stream with a durable consumer per reader, which survives any
//!   Herald process dying.

pub mod conformance;
pub mod memory;
pub mod nats;

pub use memory::MemoryEventLog;
pub use nats::NatsEventLog;

use crate::lifecycle::LifecycleEvent;
use async_trait::async_trait;
use std::time::Duration;

/// Why the log could not do something; retry later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("event log unavailable: {0}")]
pub struct LogError(pub String);

/// Where lifecycle events are kept until every reader delivered them.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends `event`; once this returns, readers will see it. Appending the same event id
    /// twice in a short while keeps one copy (on NATS; in memory each dispatcher is alone).
    async fn append(&self, event: &LifecycleEvent) -> Result<(), LogError>;

    /// The reader called `name`, created if new (it then sees events appended from now on).
    async fn reader(&self, name: &str) -> Result<Box<dyn EventReader>, LogError>;
}

/// Reads a log: batches of events, each batch acknowledged once delivered.
#[async_trait]
pub trait EventReader: Send {
    /// Up to `max` events not yet acknowledged, in log order, waiting up to `wait` for the
    /// batch to fill; an empty batch when none came.
    async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<LifecycleEvent>, LogError>;

    /// The last batch was delivered: it is never returned again.
    async fn acknowledge(&mut self) -> Result<(), LogError>;

    /// The last batch is still being delivered (retrying): keep it with this reader.
    async fn still_working(&mut self) -> Result<(), LogError>;
}
