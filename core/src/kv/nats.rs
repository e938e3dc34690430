//! `NatsKv`: the [`Kv`] on a NATS JetStream KV bucket, shared by every dispatcher.
//!
//! Requires nats-server 2.10 or newer (async-nats cannot read 2.9's account info when creating
//! a bucket). Filtered listings use an ordered consumer with a subject filter and
//! "last per subject" delivery, so listing one channel reads only that channel's keys.
//!
//! On a cluster that lost a node, JetStream places such a one-replica consumer on any peer of
//! the bucket's group, the lost one included until the cluster marks it offline, and that
//! creation is never answered: one listing in three hung for the whole request timeout. So a
//! creation still unanswered after [`HEDGE_AFTER`] is asked again alongside the first, and the
//! first consumer that answers is used.

use super::{Kv, KvError};
use async_nats::jetstream::{self, consumer, kv};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;

/// How long one filtered listing may take before it is reported as unavailable.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a consumer creation may go unanswered before another is asked for; a healthy
/// cluster answers in milliseconds.
const HEDGE_AFTER: Duration = Duration::from_millis(400);

/// Most consumer creations one listing asks for.
const MAX_CREATIONS: usize = 4;

/// A [`Kv`] backed by a JetStream KV bucket.
#[derive(Clone)]
pub struct NatsKv {
    store: kv::Store,
    client: async_nats::Client,
}

impl NatsKv {
    /// Opens `bucket`, creating it when missing with `replicas` copies. `max_age` expires
    /// entries (zero: never). An existing bucket keeps its settings (change them with the nats
    /// CLI), so every process can start with the same flags.
    pub async fn open(
        client: async_nats::Client,
        bucket: &str,
        max_age: Duration,
        replicas: usize,
    ) -> Result<NatsKv, KvError> {
        let js = jetstream::new(client.clone());
        let store = match js.get_key_value(bucket).await {
            Ok(store) => store,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: bucket.to_string(),
                    history: 1,
                    max_age,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    KvError::Unavailable(format!(
                        "cannot create JetStream KV bucket {bucket:?} (is JetStream enabled, \
                         nats-server -js, version 2.10 or newer?): {e}"
                    ))
                })?,
        };
        Ok(NatsKv { store, client })
    }
}

impl NatsKv {
    /// An ordered consumer over the last value of each key matching `filter`; hedged, see the
    /// module doc.
    async fn listing_consumer(
        &self,
        filter: &str,
    ) -> Result<consumer::Consumer<consumer::push::OrderedConfig>, KvError> {
        let create = || {
            self.store
                .stream
                .create_consumer(consumer::push::OrderedConfig {
                    deliver_subject: self.client.new_inbox(),
                    filter_subject: format!("{}{filter}", self.store.prefix),
                    deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                    replay_policy: consumer::ReplayPolicy::Instant,
                    ..Default::default()
                })
        };
        let mut creations = futures::stream::FuturesUnordered::new();
        creations.push(create());
        let mut last_error = None;
        loop {
            tokio::select! {
                created = creations.next(), if !creations.is_empty() => match created {
                    Some(Ok(consumer)) => return Ok(consumer),
                    Some(Err(e)) => last_error = Some(e),
                    None => {}
                },
                _ = tokio::time::sleep(HEDGE_AFTER), if creations.len() < MAX_CREATIONS => {
                    creations.push(create());
                }
            }
            if creations.is_empty() {
                return Err(last_error.map_or_else(
                    || KvError::Unavailable("no listing consumer".into()),
                    unavailable,
                ));
            }
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(e.to_string())
}

#[async_trait]
impl Kv for NatsKv {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, KvError> {
        self.store.get(key).await.map_err(unavailable)
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<(), KvError> {
        self.store
            .put(key, value)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<bool, KvError> {
        match self.store.create(key, value).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        // Purge rather than delete: nobody reads history, and purged keys take no space.
        self.store.purge(key).await.map_err(unavailable)
    }

    async fn entries(&self, filter: &str) -> Result<Vec<(String, Bytes)>, KvError> {
        let prefix = &self.store.prefix;
        let consumer = tokio::time::timeout(LIST_TIMEOUT, self.listing_consumer(filter))
            .await
            .map_err(|_| KvError::Unavailable(format!("listing {filter} timed out")))??;
        if consumer.cached_info().num_pending == 0 {
            return Ok(Vec::new());
        }
        let mut messages = consumer.messages().await.map_err(unavailable)?;
        let mut found = Vec::new();
        let collect = async {
            while let Some(message) = messages.next().await {
                let message = message.map_err(unavailable)?;
                let info = message.info().map_err(unavailable)?;
                let pending = info.pending;
                let deleted = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("KV-Operation"))
                    .is_some_and(|op| op.as_str() == "DEL" || op.as_str() == "PURGE");
                if !deleted {
                    if let Some(key) = message.subject.strip_prefix(prefix.as_str()) {
                        found.push((key.to_string(), message.payload.clone()));
                    }
                }
                if pending == 0 {
                    break;
                }
            }
            Ok::<(), KvError>(())
        };
        tokio::time::timeout(LIST_TIMEOUT, collect)
            .await
            .map_err(|_| KvError::Unavailable(format!("listing {filter} timed out")))??;
        Ok(found)
    }

    async fn is_ready(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}
