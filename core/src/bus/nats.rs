//! `NatsBus`: the [`Bus`] on a NATS connection, for clusters and one-role-per-process setups.
//!
//! async-nats reconnects by itself; while it is disconnected, requests fail with
//! [`BusError::Unavailable`] so callers answer 503 instead of waiting.

use super::{Bus, BusError, BusMessage, Subscription};
use async_nats::client::RequestErrorKind;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;

/// A [`Bus`] backed by a NATS client.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
}

impl NatsBus {
    /// Wraps a connected client.
    pub fn new(client: async_nats::Client) -> Self {
        NatsBus { client }
    }

    /// The underlying client (for JetStream).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    fn check_connected(&self) -> Result<(), BusError> {
        if self.is_connected() {
            Ok(())
        } else {
            Err(BusError::Unavailable("not connected to NATS".into()))
        }
    }
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.check_connected()?;
        self.client
            .publish(subject.to_string(), payload)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))
    }

    async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        self.check_connected()?;
        let request = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(timeout));
        match self.client.send_request(subject.to_string(), request).await {
            Ok(message) => Ok(message.payload),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::NoResponders => BusError::NoResponders(subject.to_string()),
                RequestErrorKind::TimedOut => BusError::Timeout(subject.to_string()),
                _ => BusError::Unavailable(e.to_string()),
            }),
        }
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Subscription, BusError> {
        let subscriber = match queue {
            Some(queue) => {
                self.client
                    .queue_subscribe(subject.to_string(), queue.to_string())
                    .await
            }
            None => self.client.subscribe(subject.to_string()).await,
        }
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
        Ok(Subscription::new(Box::pin(subscriber.map(|m| {
            BusMessage {
                subject: m.subject.to_string(),
                payload: m.payload,
                reply: m.reply.map(|r| r.to_string()),
            }
        }))))
    }

    async fn flush(&self) -> Result<(), BusError> {
        self.client
            .flush()
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}
