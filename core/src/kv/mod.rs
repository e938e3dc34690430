//! The `Kv` seam: presence state in a key-value bucket, in memory or in NATS JetStream KV.

pub mod conformance;
mod memory;
mod nats;

pub use memory::MemoryKv;
pub use nats::NatsKv;

use async_trait::async_trait;
use bytes::Bytes;

/// Why a KV operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The store cannot be reached or refused the operation.
    #[error("key-value store unavailable: {0}")]
    Unavailable(String),
}

/// A key-value bucket. Keys are NATS KV keys: tokens of `[-_=A-Za-z0-9]` separated by `.`.
#[async_trait]
pub trait Kv: Send + Sync + 'static {
    /// The value under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, KvError>;

    /// Stores `value` under `key`, replacing what was there.
    async fn put(&self, key: &str, value: Bytes) -> Result<(), KvError>;

    /// Stores `value` only if `key` holds nothing; `Ok(false)` when it already did.
    /// Guarantee: of several concurrent creates of one key, exactly one returns `Ok(true)`.
    async fn create(&self, key: &str, value: Bytes) -> Result<bool, KvError>;

    /// Removes `key`; removing a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), KvError>;

    /// Every live key matching the NATS-style `filter` (`*` one token, `>` the rest), with its
    /// value, in no particular order.
    async fn entries(&self, filter: &str) -> Result<Vec<(String, Bytes)>, KvError>;

    /// Whether the store is reachable now (for `/readyz`).
    async fn is_ready(&self) -> bool;
}
