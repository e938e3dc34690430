//! `NatsEventLog`: the [`EventLog`] on a JetStream stream (`HERALD_EVENTS`, subjects
//! `herald.events.>`, file storage), each reader a durable pull consumer, so an event a
//! dispatcher appended survives that dispatcher, and a batch a reader did not acknowledge goes
//! to the next reader of that name.

use super::{EventLog, EventReader, LogError};
use crate::lifecycle::{LifecycleEvent, SUBJECT_PREFIX};
use async_nats::jetstream::{self, consumer, message::Acker, stream, AckKind};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;

/// The stream's name.
pub const STREAM: &str = "HERALD_EVENTS";
/// How long events are kept for readers that are behind (a webhook down for long).
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// How long a reader may hold a batch without news before JetStream gives it to another
/// (a reader retrying says "still working" well within this).
pub const ACK_WAIT: Duration = Duration::from_secs(15);
/// Within this window, an event appended twice under one id (two dispatchers reporting one
/// connection's disconnect) is stored once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A [`EventLog`] on JetStream.
#[derive(Clone)]
pub struct NatsEventLog {
    js: jetstream::Context,
    stream: stream::Stream,
}

impl NatsEventLog {
    /// Opens the stream, creating it with `replicas` copies when missing (an existing stream
    /// keeps its settings).
    pub async fn open(client: async_nats::Client, replicas: usize) -> Result<Self, LogError> {
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(stream::Config {
                name: STREAM.to_string(),
                subjects: vec![format!("{SUBJECT_PREFIX}>")],
                max_age: MAX_AGE,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                LogError(format!(
                    "cannot open JetStream stream {STREAM} (is JetStream enabled, and may this \
                     NATS user use it? see ops/nats/herald-permissions.conf): {e}"
                ))
            })?;
        Ok(NatsEventLog { js, stream })
    }
}

#[async_trait]
impl EventLog for NatsEventLog {
    async fn append(&self, event: &LifecycleEvent) -> Result<(), LogError> {
        let body = serde_json::to_vec(event).map_err(|e| LogError(e.to_string()))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.as_str());
        let ack = self
            .js
            .publish_with_headers(event.kind.subject(), headers, Bytes::from(body))
            .await
            .map_err(|e| LogError(e.to_string()))?;
        ack.await.map_err(|e| LogError(e.to_string()))?;
        Ok(())
    }

    async fn reader(&self, name: &str) -> Result<Box<dyn EventReader>, LogError> {
        let consumer = self
            .stream
            .get_or_create_consumer(
                name,
                consumer::pull::Config {
                    durable_name: Some(name.to_string()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    deliver_policy: consumer::DeliverPolicy::New,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| LogError(format!("cannot open the consumer {name:?}: {e}")))?;
        Ok(Box::new(NatsReader {
            consumer,
            pending: Vec::new(),
        }))
    }
}

struct NatsReader {
    consumer: consumer::PullConsumer,
    /// The last batch, to acknowledge or keep.
    pending: Vec<Acker>,
}

#[async_trait]
impl EventReader for NatsReader {
    async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<LifecycleEvent>, LogError> {
        let mut messages = self
            .consumer
            .batch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| LogError(e.to_string()))?;
        let mut batch = Vec::new();
        while let Some(message) = messages.next().await {
            let message = match message {
                Ok(m) => m,
                Err(e) => return Err(LogError(e.to_string())),
            };
            let (message, acker) = message.split();
            match serde_json::from_slice::<LifecycleEvent>(&message.payload) {
                Ok(event) => {
                    batch.push(event);
                    self.pending.push(acker);
                }
                Err(e) => {
                    // Not ours (someone else published on herald.events.*): never again.
                    tracing::warn!(subject = %message.subject, error = %e, "skipping a malformed lifecycle event");
                    let _ = acker.ack_with(AckKind::Term).await;
                }
            }
        }
        Ok(batch)
    }

    async fn acknowledge(&mut self) -> Result<(), LogError> {
        for acker in self.pending.drain(..) {
            acker.ack().await.map_err(|e| LogError(e.to_string()))?;
        }
        Ok(())
    }

    async fn still_working(&mut self) -> Result<(), LogError> {
        for acker in &self.pending {
            acker
                .ack_with(AckKind::Progress)
                .await
                .map_err(|e| LogError(e.to_string()))?;
        }
        Ok(())
    }
}

impl Drop for NatsReader {
    /// A reader that stops with a batch hands it back at once rather than after [`ACK_WAIT`].
    fn drop(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for acker in pending {
                    let _ = acker.ack_with(AckKind::Nak(None)).await;
                }
            });
        }
    }
}
