//! A connection's bounded send queue, and the slow-consumer policy: a full queue closes that
//! connection with a reason and never blocks the sender (one slow browser cannot stall others).

use axum::extract::ws::Utf8Bytes;
use std::sync::Mutex;
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
    /// No successful ident within the gateway's ident timeout.
    pub const IDENT_TIMEOUT: CloseReason = CloseReason {
        code: 4003,
        reason: "ident timeout",
    };
}

/// The sending half: shared through the registry.
pub struct Outbox {
    frames: mpsc::Sender<Utf8Bytes>,
    closer: CancellationToken,
    reason: Mutex<Option<CloseReason>>,
}

/// The receiving half: owned by the connection's writer.
pub struct OutboxReceiver {
    /// Frames to send, in order.
    pub frames: mpsc::Receiver<Utf8Bytes>,
    /// Fires when the connection must close.
    pub closer: CancellationToken,
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
    /// A queue of `capacity` frames whose closing also follows `parent` (gateway shutdown).
    pub fn new(capacity: usize, parent: &CancellationToken) -> (Outbox, OutboxReceiver) {
        let (sender, receiver) = mpsc::channel(capacity);
        let closer = parent.child_token();
        (
            Outbox {
                frames: sender,
                closer: closer.clone(),
                reason: Mutex::new(None),
            },
            OutboxReceiver {
                frames: receiver,
                closer,
            },
        )
    }

    /// Queues a frame without waiting.
    pub fn offer(&self, frame: Utf8Bytes) -> Offer {
        match self.frames.try_send(frame) {
            Ok(()) => Offer::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.close(CloseReason::SLOW_CONSUMER) {
                    Offer::Overflowed
                } else {
                    Offer::Closed
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Closed,
        }
    }

    /// Asks the connection to close with `reason`; the first reason wins. Returns whether
    /// this call was the first.
    pub fn close(&self, reason: CloseReason) -> bool {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        let first = slot.is_none();
        if first {
            *slot = Some(reason);
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
        let (outbox, receiver) = Outbox::new(2, &parent);
        assert_eq!(outbox.offer("a".into()), Offer::Queued);
        assert_eq!(outbox.offer("b".into()), Offer::Queued);
        assert_eq!(outbox.offer("c".into()), Offer::Overflowed);
        assert!(receiver.closer.is_cancelled());
        assert_eq!(outbox.close_reason(), CloseReason::SLOW_CONSUMER);
        assert_eq!(outbox.offer("d".into()), Offer::Closed);
    }

    #[test]
    fn gateway_shutdown_closes_every_outbox() {
        let parent = CancellationToken::new();
        let (outbox, receiver) = Outbox::new(2, &parent);
        parent.cancel();
        assert!(receiver.closer.is_cancelled());
        assert_eq!(outbox.close_reason(), CloseReason::GOING_AWAY);
    }
}
