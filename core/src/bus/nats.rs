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
    gaps: Option<tokio::sync::watch::Receiver<u64>>,
}

impl NatsBus {
    /// Wraps a connected client.
    pub fn new(client: async_nats::Client) -> Self {
        NatsBus { client, gaps: None }
    }

    /// Reports `gaps` as [`Bus::gaps`]: the client's event callback counts each reconnect and
    /// slow-consumer event there.
    pub fn with_gaps(mut self, gaps: tokio::sync::watch::Receiver<u64>) -> Self {
        self.gaps = Some(gaps);
        self
    }

    /// The underlying client (for JetStream).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The wait before reconnect attempt `attempts` (async-nats counts from 1): at once, then
    /// 50 ms more per attempt up to half a second, plus a little jitter so that many clients
    /// do not knock in step. async-nats's own backoff grows to 4 s, so a restarted server was
    /// found only seconds after it was back; pass this to
    /// `ConnectOptions::reconnect_delay_callback`.
    pub fn reconnect_delay(attempts: usize) -> Duration {
        if attempts <= 1 {
            return Duration::ZERO;
        }
        let steps = u32::try_from(attempts).unwrap_or(u32::MAX);
        let base = (Duration::from_millis(50) * steps).min(Duration::from_millis(500));
        base + Duration::from_millis(rand::random::<u64>() % 50)
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

    fn gaps(&self) -> tokio::sync::watch::Receiver<u64> {
        match &self.gaps {
            Some(gaps) => gaps.clone(),
            None => tokio::sync::watch::channel(0).1,
        }
    }
}
