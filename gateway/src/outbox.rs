//! A connection's bounded send queue, and the slow-consumer policy: a full queue closes that
//! connection with a reason and never blocks the sender (one slow browser cannot stall others).
//!
//! The queue is bounded twice: in frames, and in bytes, since a few large frames (big payloads,
//! replies echoing long request ids) cost as much memory as thousands of small ones. An event's
//! bytes are shared across connections, but each connection counts the whole frame: that is
//! what its socket must still write, and what stays alive while it does not.
//!
//! The writer taking an event frame is where its delivery latency ends: from there the
//! transport's own small write buffer sends it at once.

use axum::extract::ws::Utf8Bytes;
use herald_core::messages::Delivery;
use herald_core::metrics::Histogram;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Why the server closes a connection: a WebSocket close code and a reason text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    /// WebSocket close code.
    pub code: u16,
    /// Short reason, sent in the close frame.
    pub reason: &'static str,
}

impl CloseReason {
    /// The client sent too many bad idents.
    pub const TOO_MANY_FAILED_IDENTS: CloseReason = CloseReason {
        code: 1008,
        reason: "too many failed idents",
    };
    /// The server is shutting down.
    pub const GOING_AWAY: CloseReason = CloseReason {
        code: 1001,
        reason: "server shutting down",
    };
    /// The send queue overflowed.
    pub const SLOW_CONSUMER: CloseReason = CloseReason {
        code: 4008,
        reason: "slow consumer: send queue full",
    };
    /// No pong within two heartbeats.
    pub const HEARTBEAT_TIMEOUT: CloseReason = CloseReason {
        code: 4002,
        reason: "heartbeat timeout",
    };
    /// The client closed or the socket failed.
    pub const PEER_GONE: CloseReason = CloseReason {
        code: 1000,
        reason: "closed by client",
    };
    /// The backend asked to disconnect the user.
    pub const DISCONNECTED_BY_BACKEND: CloseReason = CloseReason {
        code: 4001,
        reason: "disconnected by the backend",
    };
    /// History went while a replay was read: reconnect, and recover (or reload) again.
    pub const RECOVERY_INTERRUPTED: CloseReason = CloseReason {
        code: 4010,
        reason: "recovery interrupted: reconnect",
    };
    /// No successful ident within the gateway's ident timeout.
    pub const IDENT_TIMEOUT: CloseReason = CloseReason {
        code: 4003,
        reason: "ident timeout",
    };
}

/// Every how many event frames a connection's writer observes one delivery latency: the
/// histogram takes a lock per observation, and fan-out writes millions of frames a second.
const LATENCY_SAMPLE_EVERY: u32 = 16;

/// A frame waiting for the writer, and when a dispatcher accepted the event in it (0 for
/// replies and other frames of the connection's own).
struct Queued {
    frame: Utf8Bytes,
    accepted_ms: u64,
}

/// The sending half: shared through the registry.
pub struct Outbox {
    frames: mpsc::Sender<Queued>,
    /// Bytes of the frames queued and not yet taken by the writer.
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    closer: CancellationToken,
    reason: Mutex<Option<CloseReason>>,
}

/// The receiving half: owned by the connection's writer.
pub struct OutboxReceiver {
    frames: mpsc::Receiver<Queued>,
    queued_bytes: Arc<AtomicUsize>,
    /// Fires when the connection must close.
    pub closer: CancellationToken,
    latency: Option<Arc<Histogram>>,
    events_taken: u32,
}

impl OutboxReceiver {
    /// The next frame to write, waiting for one; `None` once the sending half is gone.
    pub async fn recv(&mut self) -> Option<Utf8Bytes> {
        let queued = self.frames.recv().await?;
        Some(self.taken(queued))
    }

    /// Observes, in `histogram`, the time from a dispatcher accepting an event to the writer
    /// taking its frame (one event frame in [`LATENCY_SAMPLE_EVERY`], starting with the first).
    pub fn measure_latency(mut self, histogram: Arc<Histogram>) -> Self {
        self.latency = Some(histogram);
        self
    }

    /// The next frame to write, waiting for one; `None` once the connection must close.
    pub async fn recv_until_closed(&mut self) -> Option<Utf8Bytes> {
        let queued = tokio::select! {
            biased;
            queued = self.frames.recv() => queued?,
            _ = self.closer.cancelled() => return None,
        };
        Some(self.taken(queued))
    }

    /// The next frame to write if one is queued now.
    pub fn try_recv(&mut self) -> Option<Utf8Bytes> {
        let queued = self.frames.try_recv().ok()?;
        Some(self.taken(queued))
    }

    /// The writer took a frame to write it at once: from here on the transport's own bounded
    /// write buffer holds it, so it leaves the queue's count.
    fn taken(&mut self, Queued { frame, accepted_ms }: Queued) -> Utf8Bytes {
        self.queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
        if let (Some(latency), true) = (&self.latency, accepted_ms > 0) {
            if self.events_taken.is_multiple_of(LATENCY_SAMPLE_EVERY) {
                let ms = Delivery::now_ms().saturating_sub(accepted_ms);
                latency.observe(ms as f64 / 1000.0);
            }
            self.events_taken = self.events_taken.wrapping_add(1);
        }
        frame
    }
}

/// What happened to a frame offered to an outbox.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// Queued.
    Queued,
    /// The queue was full: the connection is being closed as a slow consumer.
    Overflowed,
    /// The connection is already closing.
    Closed,
}

impl Outbox {
    /// A queue of at most `capacity` frames and `max_bytes` bytes whose closing also follows
    /// `parent` (gateway shutdown). A single frame larger than `max_bytes` still goes into an
    /// empty queue, so no frame is undeliverable by size alone.
    pub fn new(
        capacity: usize,
        max_bytes: usize,
        parent: &CancellationToken,
    ) -> (Outbox, OutboxReceiver) {
        let (sender, receiver) = mpsc::channel(capacity);
        let closer = parent.child_token();
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        (
            Outbox {
                frames: sender,
                queued_bytes: queued_bytes.clone(),
                max_bytes,
                closer: closer.clone(),
                reason: Mutex::new(None),
            },
            OutboxReceiver {
                frames: receiver,
                queued_bytes,
                closer,
                latency: None,
                events_taken: 0,
            },
        )
    }

    /// Queues a frame of the connection's own (a reply, a welcome) without waiting.
    pub fn offer(&self, frame: Utf8Bytes) -> Offer {
        self.offer_queued(Queued {
            frame,
            accepted_ms: 0,
        })
    }

    /// Queues an event frame without waiting; `accepted_ms` is when a dispatcher accepted it.
    pub fn offer_event(&self, frame: Utf8Bytes, accepted_ms: u64) -> Offer {
        self.offer_queued(Queued { frame, accepted_ms })
    }

    /// Frames queued and not yet taken by the writer.
    pub fn depth(&self) -> usize {
        self.frames.max_capacity() - self.frames.capacity()
    }

    fn offer_queued(&self, queued: Queued) -> Offer {
        let len = queued.frame.len();
        let before = self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if before > 0 && before + len > self.max_bytes {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            return self.overflowed();
        }
        match self.frames.try_send(queued) {
            Ok(()) => Offer::Queued,
            Err(full_or_closed) => {
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                match full_or_closed {
                    mpsc::error::TrySendError::Full(_) => self.overflowed(),
                    mpsc::error::TrySendError::Closed(_) => Offer::Closed,
                }
            }
        }
    }

    /// Bytes queued and not yet taken by the writer.
    #[cfg(test)]
    fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    fn overflowed(&self) -> Offer {
        if self.close(CloseReason::SLOW_CONSUMER) {
            Offer::Overflowed
        } else {
            Offer::Closed
        }
    }

    /// Asks the connection to close with `reason`; the first reason wins, and a gateway
    /// shutdown that came first counts as the first. Returns whether this call was the first.
    pub fn close(&self, reason: CloseReason) -> bool {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        let first = slot.is_none();
        if first {
            let shut_down = self.closer.is_cancelled();
            *slot = Some(if shut_down {
                CloseReason::GOING_AWAY
            } else {
                reason
            });
        }
        drop(slot);
        self.closer.cancel();
        first
    }

    /// A token that fires when the connection must close.
    pub fn closer(&self) -> CancellationToken {
        self.closer.clone()
    }

    /// The reason the connection was asked to close (shutdown when none was set).
    pub fn close_reason(&self) -> CloseReason {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(CloseReason::GOING_AWAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overflow_closes_as_slow_consumer_without_blocking() {
        let parent = CancellationToken::new();
        let (outbox, receiver) = Outbox::new(2, 1024, &parent);
        assert_eq!(outbox.offer("a".into()), Offer::Queued);
        assert_eq!(outbox.offer("b".into()), Offer::Queued);
        assert_eq!(outbox.offer("c".into()), Offer::Overflowed);
        assert!(receiver.closer.is_cancelled());
        assert_eq!(outbox.close_reason(), CloseReason::SLOW_CONSUMER);
        assert_eq!(outbox.offer("d".into()), Offer::Closed);
    }

    #[tokio::test]
    async fn bytes_over_the_bound_close_as_slow_consumer() {
        let parent = CancellationToken::new();
        let (outbox, mut receiver) = Outbox::new(100, 10, &parent);
        // One frame over the bound still goes into an empty queue.
        assert_eq!(outbox.offer("0123456789ab".into()), Offer::Queued);
        assert_eq!(outbox.queued_bytes(), 12);
        assert_eq!(receiver.recv().await.as_deref(), Some("0123456789ab"));
        assert_eq!(outbox.queued_bytes(), 0);
        assert_eq!(outbox.offer("01234".into()), Offer::Queued);
        assert_eq!(outbox.offer("56789".into()), Offer::Queued);
        assert_eq!(outbox.queued_bytes(), 10);
        assert_eq!(receiver.try_recv().as_deref(), Some("01234"));
        assert_eq!(outbox.offer("abcde".into()), Offer::Queued);
        assert_eq!(outbox.offer("f".into()), Offer::Overflowed);
        assert!(receiver.closer.is_cancelled());
        assert_eq!(outbox.close_reason(), CloseReason::SLOW_CONSUMER);
        assert_eq!(outbox.queued_bytes(), 10);
        assert_eq!(outbox.offer("ghijklmnop".into()), Offer::Closed);
    }

    #[test]
    fn gateway_shutdown_closes_every_outbox() {
        let parent = CancellationToken::new();
        let (outbox, receiver) = Outbox::new(2, 1024, &parent);
        parent.cancel();
        assert!(receiver.closer.is_cancelled());
        assert_eq!(outbox.close_reason(), CloseReason::GOING_AWAY);
        // The writer and reader noticing the closed socket afterwards do not change why.
        outbox.close(CloseReason::PEER_GONE);
        assert_eq!(outbox.close_reason(), CloseReason::GOING_AWAY);
    }
}
