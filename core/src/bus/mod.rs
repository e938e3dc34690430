//! The `Bus` seam: publish, request/reply and subscriptions, over memory or NATS.
//!
//! Both implementations follow NATS semantics (subject wildcards, queue groups, no-responders),
//! so code above the seam behaves the same in embedded mode and on a cluster.

pub mod conformance;
pub mod failover;
mod memory;
mod nats;

pub use memory::MemoryBus;
pub use nats::NatsBus;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::time::Duration;

/// One message received from the bus.
#[derive(Debug, Clone)]
pub struct BusMessage {
    /// The subject it was published on.
    pub subject: String,
    /// The body.
    pub payload: Bytes,
    /// Where to send the reply, for requests.
    pub reply: Option<String>,
}

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A request found nobody subscribed to its subject.
    #[error("no responders on {0}")]
    NoResponders(String),
    /// A request got no reply in time.
    #[error("request on {0} timed out")]
    Timeout(String),
    /// The bus cannot be reached right now.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

/// A stream of messages for one subscription; dropping it unsubscribes.
pub struct Subscription {
    messages: BoxStream<'static, BusMessage>,
}

impl Subscription {
    /// Wraps a stream of messages.
    pub fn new(messages: BoxStream<'static, BusMessage>) -> Self {
        Subscription { messages }
    }

    /// The next message; `None` once the subscription ended.
    pub async fn next(&mut self) -> Option<BusMessage> {
        self.messages.next().await
    }

    /// The messages as a stream (to merge several subscriptions into one).
    pub fn into_stream(self) -> BoxStream<'static, BusMessage> {
        self.messages
    }
}

/// The message bus between Herald's roles.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes without waiting for anyone. Guarantee: at most once, in order per publisher.
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError>;

    /// Sends a request to one subscriber (one member of a queue group) and waits for its reply.
    /// Fails fast with [`BusError::NoResponders`] when nobody listens.
    async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError>;

    /// Subscribes to `subject` (wildcards allowed). With a `queue` group, each message goes to
    /// one member of the group instead of all of them.
    async fn subscribe(&self, subject: &str, queue: Option<&str>)
        -> Result<Subscription, BusError>;

    /// Waits until everything published so far has left this process.
    async fn flush(&self) -> Result<(), BusError>;

    /// Whether the bus is reachable now (for `/readyz`).
    fn is_connected(&self) -> bool;

    /// Counts the moments this process may have missed messages on its subscriptions (it
    /// reconnected, or a subscription overflowed): a subscriber that must not miss any
    /// catches up from history each time it changes. A bus that never misses any (memory)
    /// answers a counter that never changes.
    fn gaps(&self) -> tokio::sync::watch::Receiver<u64> {
        tokio::sync::watch::channel(0).1
    }
}
