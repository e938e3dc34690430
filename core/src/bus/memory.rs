//! `MemoryBus`: the in-process bus for embedded mode and unit tests.
//!
//! Use it when every role runs in one process (`herald serve` without `--nats`). Each
//! subscription has a bounded queue; like a NATS slow consumer, a subscription whose queue is
//! full loses the message and a warning is logged, so one stuck reader never blocks publishers.

use super::{Bus, BusError, BusMessage, Subscription};
use crate::subjects::subject_matches;
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream_shim::ReceiverStream;

/// Messages one subscription may have waiting before it counts as a slow consumer.
const SUBSCRIPTION_CAPACITY: usize = 65_536;

struct Subscriber {
    id: u64,
    filter: String,
    queue: Option<String>,
    sender: mpsc::Sender<BusMessage>,
}

/// An in-memory [`Bus`] with NATS semantics.
#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    subscribers: RwLock<Vec<Subscriber>>,
    next_id: AtomicU64,
    /// Round-robin position per queue group, so queue members share the load.
    queue_turns: Mutex<HashMap<String, usize>>,
}

impl MemoryBus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Delivers a message; returns how many subscribers were offered it.
    fn route(&self, message: BusMessage) -> usize {
        let mut delivered = 0;
        let mut dead = Vec::new();
        {
            let subscribers = self
                .inner
                .subscribers
                .read()
                .unwrap_or_else(|e| e.into_inner());
            let mut groups: HashMap<&str, Vec<&Subscriber>> = HashMap::new();
            for sub in subscribers.iter() {
                if sub.sender.is_closed() {
                    dead.push(sub.id);
                    continue;
                }
                if !subject_matches(&sub.filter, &message.subject) {
                    continue;
                }
                match &sub.queue {
                    Some(queue) => groups.entry(queue.as_str()).or_default().push(sub),
                    None => {
                        offer(sub, message.clone());
                        delivered += 1;
                    }
                }
            }
            if !groups.is_empty() {
                let mut turns = self
                    .inner
                    .queue_turns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                for (queue, members) in groups {
                    let turn = turns.entry(queue.to_string()).or_insert(0);
                    *turn = turn.wrapping_add(1);
                    offer(members[*turn % members.len()], message.clone());
                    delivered += 1;
                }
            }
        }
        if !dead.is_empty() {
            let mut subscribers = self
                .inner
                .subscribers
                .write()
                .unwrap_or_else(|e| e.into_inner());
            subscribers.retain(|s| !dead.contains(&s.id));
        }
        delivered
    }
}

fn offer(sub: &Subscriber, message: BusMessage) {
    if let Err(mpsc::error::TrySendError::Full(m)) = sub.sender.try_send(message) {
        tracing::warn!(subject = %m.subject, filter = %sub.filter, "slow bus consumer: message dropped");
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.route(BusMessage {
            subject: subject.to_string(),
            payload,
            reply: None,
        });
        Ok(())
    }

    async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        let inbox = format!(
            "_INBOX.{}",
            self.inner.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let mut replies = self.subscribe(&inbox, None).await?;
        let offered = self.route(BusMessage {
            subject: subject.to_string(),
            payload,
            reply: Some(inbox),
        });
        if offered == 0 {
            return Err(BusError::NoResponders(subject.to_string()));
        }
        match tokio::time::timeout(timeout, replies.next()).await {
            Ok(Some(reply)) => Ok(reply.payload),
            Ok(None) => Err(BusError::Unavailable("memory bus closed".into())),
            Err(_) => Err(BusError::Timeout(subject.to_string())),
        }
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Subscription, BusError> {
        let (sender, receiver) = mpsc::channel(SUBSCRIPTION_CAPACITY);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Subscriber {
                id,
                filter: subject.to_string(),
                queue: queue.map(str::to_string),
                sender,
            });
        Ok(Subscription::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn flush(&self) -> Result<(), BusError> {
        Ok(())
    }

    fn is_connected(&self) -> bool {
        true
    }
}

/// A tiny `Stream` over an mpsc receiver (avoids a dependency for one adapter).
mod tokio_stream_shim {
    use futures::Stream;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::sync::mpsc;

    pub struct ReceiverStream<T>(mpsc::Receiver<T>);

    impl<T> ReceiverStream<T> {
        pub fn new(receiver: mpsc::Receiver<T>) -> Self {
            ReceiverStream(receiver)
        }
    }

    impl<T> Stream for ReceiverStream<T> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}
