//! Recovery on one connection: while the events it missed are replayed, its live events wait
//! behind them; for a while afterwards no event reaches it twice (live and replayed, or
//! replayed through two targets).
//!
//! Connections that never recover pay one relaxed atomic load per event.

use crate::outbox::{CloseReason, Offer, Outbox};
use axum::extract::ws::Utf8Bytes;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after its last replay a connection still drops events it already got: a client
/// re-identifies and re-joins right after reconnecting, one replay after the other.
const SEEN_WINDOW: Duration = Duration::from_secs(10);
/// Event ids remembered per recovering connection, at most.
const SEEN_CAPACITY: usize = 4096;

/// One connection's recovery state (a field of [`crate::registry::Connection`]).
#[derive(Default)]
pub struct Recovery {
    active: AtomicBool,
    state: Mutex<Option<Box<State>>>,
}

struct State {
    /// Replays running.
    replays: u32,
    /// Frames of finished replays, waiting for the others to finish.
    replayed: Vec<Held>,
    /// Live events held back while a replay runs.
    held: Vec<Held>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
    /// Until when `seen` is kept once no replay runs.
    keep_until: Instant,
}

/// An event frame waiting to be queued.
pub(crate) struct Held {
    pub id: String,
    pub frame: Utf8Bytes,
    pub accepted_ms: u64,
}

impl State {
    /// Notes `id` as sent; `false` when it already was.
    fn first_time(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.seen_order.len() >= SEEN_CAPACITY {
            if let Some(oldest) = self.seen_order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(id.to_string());
        self.seen_order.push_back(id.to_string());
        true
    }
}

/// What became of a live event offered to a recovering connection.
pub(crate) enum Live {
    /// Queued, or not: as the outbox said.
    Offered(Offer),
    /// Held back behind a replay.
    Held,
    /// Already sent to this connection.
    Duplicate,
}

impl Recovery {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Box<State>>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether live events must go through [`Recovery::offer_live`].
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// A replay starts: live events wait from now on (call before the connection joins the
    /// target in the registry).
    pub(crate) fn begin(&self) {
        let mut state = self.lock();
        let state = state.get_or_insert_with(|| {
            Box::new(State {
                replays: 0,
                replayed: Vec::new(),
                held: Vec::new(),
                seen: HashSet::new(),
                seen_order: VecDeque::new(),
                keep_until: Instant::now(),
            })
        });
        state.replays += 1;
        self.active.store(true, Ordering::Relaxed);
    }

    /// A replay ends with `frames` (oldest first); when no other runs, they are queued, then
    /// the live events that waited, each event once.
    pub(crate) fn finish(&self, outbox: &Outbox, frames: Vec<Held>, capacity: usize) {
        let mut slot = self.lock();
        let Some(state) = slot.as_mut() else { return };
        state.replays = state.replays.saturating_sub(1);
        for frame in frames {
            if state.first_time(&frame.id) {
                state.replayed.push(frame);
            }
        }
        if state.replays > 0 {
            return;
        }
        state.keep_until = Instant::now() + SEEN_WINDOW;
        let replayed = std::mem::take(&mut state.replayed);
        // A live event that also came in a replay goes where the replay put it.
        let mut held = std::mem::take(&mut state.held);
        held.retain(|frame| state.first_time(&frame.id));
        let mut queued = 0;
        for frame in replayed.into_iter().chain(held) {
            queued += 1;
            if queued > capacity {
                outbox.close(CloseReason::SLOW_CONSUMER);
                return;
            }
            if outbox.offer_event(frame.frame, frame.accepted_ms) != Offer::Queued {
                return;
            }
        }
    }

    /// A live event for a connection whose recovery [`Recovery::is_active`].
    pub(crate) fn offer_live(&self, outbox: &Outbox, event: Held, capacity: usize) -> Live {
        let mut slot = self.lock();
        let Some(state) = slot.as_mut() else {
            return Live::Offered(outbox.offer_event(event.frame, event.accepted_ms));
        };
        if state.replays == 0 && Instant::now() >= state.keep_until {
            *slot = None;
            self.active.store(false, Ordering::Relaxed);
            return Live::Offered(outbox.offer_event(event.frame, event.accepted_ms));
        }
        if state.replays == 0 {
            if !state.first_time(&event.id) {
                return Live::Duplicate;
            }
            return Live::Offered(outbox.offer_event(event.frame, event.accepted_ms));
        }
        // Checked against the replays when they finish.
        if state.held.len() >= capacity {
            outbox.close(CloseReason::SLOW_CONSUMER);
            return Live::Offered(Offer::Overflowed);
        }
        state.held.push(event);
        Live::Held
    }
}

/// Replays one connection may ask for at once: a client coming back re-identifies and re-joins
/// up to `max_channels_per_connection` (100) channels, each with `since`.
const REPLAY_BURST: f64 = 128.0;
/// Replays per second one connection regains.
const REPLAYS_PER_SEC: f64 = 2.0;

/// What one connection may still ask to replay: each `since` costs its dispatcher up to
/// `history_size` reads, so a client joining and leaving in a loop with `since` is held to a
/// trickle (beyond it, a join or ident goes on without a replay: `recovered: false`).
pub(crate) struct ReplayBudget {
    tokens: f64,
    refilled: Instant,
}

impl Default for ReplayBudget {
    fn default() -> Self {
        ReplayBudget {
            tokens: REPLAY_BURST,
            refilled: Instant::now(),
        }
    }
}

impl ReplayBudget {
    /// Takes one replay if the budget allows.
    pub(crate) fn take(&mut self) -> bool {
        let now = Instant::now();
        let regained = now.duration_since(self.refilled).as_secs_f64() * REPLAYS_PER_SEC;
        self.tokens = (self.tokens + regained).min(REPLAY_BURST);
        self.refilled = now;
        let allowed = self.tokens >= 1.0;
        if allowed {
            self.tokens -= 1.0;
        }
        allowed
    }
}

/// A replay under way on one connection: made before the connection joins the target in the
/// registry (live events wait from then on), filled with the missed events, and dropped after
/// the `ok` was queued, which queues the replay, then the live events that waited.
pub(crate) struct Replay {
    connection: std::sync::Arc<crate::registry::Connection>,
    frames: Vec<Held>,
    capacity: usize,
}

impl Replay {
    /// Starts holding back `connection`'s live events (at most `capacity`).
    pub(crate) fn begin(
        connection: &std::sync::Arc<crate::registry::Connection>,
        capacity: usize,
    ) -> Replay {
        connection.recovery.begin();
        Replay {
            connection: connection.clone(),
            frames: Vec::new(),
            capacity,
        }
    }

    /// Adds missed events, oldest first.
    pub(crate) fn extend(&mut self, frames: Vec<Held>) {
        self.frames.extend(frames);
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        let frames = std::mem::take(&mut self.frames);
        self.connection
            .recovery
            .finish(&self.connection.outbox, frames, self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::sync::CancellationToken;

    fn held(id: &str) -> Held {
        Held {
            id: id.into(),
            frame: Utf8Bytes::from(id.to_string()),
            accepted_ms: 0,
        }
    }

    #[tokio::test]
    async fn live_events_wait_behind_the_replay_and_come_once() {
        let (outbox, mut receiver) = Outbox::new(64, 1 << 20, &CancellationToken::new());
        let recovery = Recovery::default();
        recovery.begin();
        assert!(recovery.is_active());
        // Live during the replay: e2 is also in it, e4 is newer.
        for id in ["e2", "e4"] {
            assert!(matches!(
                recovery.offer_live(&outbox, held(id), 64),
                Live::Held
            ));
        }
        recovery.finish(&outbox, vec![held("e1"), held("e2"), held("e3")], 64);
        let mut order = Vec::new();
        while let Some(frame) = receiver.try_recv() {
            order.push(frame.to_string());
        }
        assert_eq!(order, ["e1", "e2", "e3", "e4"]);
        // Shortly after, a copy of an event already sent is dropped.
        assert!(matches!(
            recovery.offer_live(&outbox, held("e3"), 64),
            Live::Duplicate
        ));
        assert!(matches!(
            recovery.offer_live(&outbox, held("e5"), 64),
            Live::Offered(Offer::Queued)
        ));
    }

    #[test]
    fn a_connection_replays_a_burst_then_a_trickle() {
        let mut budget = ReplayBudget::default();
        assert!((0..128).all(|_| budget.take()));
        assert!(!budget.take());
    }

    #[tokio::test]
    async fn too_many_waiting_closes_the_connection_as_a_slow_consumer() {
        let (outbox, _receiver) = Outbox::new(64, 1 << 20, &CancellationToken::new());
        let recovery = Recovery::default();
        recovery.begin();
        for n in 0..2 {
            assert!(matches!(
                recovery.offer_live(&outbox, held(&format!("e{n}")), 2),
                Live::Held
            ));
        }
        assert!(matches!(
            recovery.offer_live(&outbox, held("e2"), 2),
            Live::Offered(Offer::Overflowed)
        ));
        assert_eq!(outbox.close_reason(), CloseReason::SLOW_CONSUMER);
    }
}
