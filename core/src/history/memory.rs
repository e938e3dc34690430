//! `MemoryHistory`: the [`HistoryStore`] of one process (embedded mode). Its epoch is drawn
//! at random when it is made, so positions from before a restart recover nothing.

use super::{now_ms, HistoryError, HistoryStore, PendingAppend, Retention, Stored};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// How long a dedupe id is remembered.
const DEDUPE_WINDOW_MS: u64 = 120_000;
/// Every this many appends, every subject drops what aged out (a subject nobody writes to or
/// reads again would otherwise keep its events).
const SWEEP_EVERY: u64 = 1024;

/// An in-memory [`HistoryStore`], keeping per subject what `retention` says.
pub struct MemoryHistory {
    epoch: u64,
    retention: Retention,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    subjects: HashMap<String, VecDeque<Stored>>,
    /// Dedupe ids recently stored, with their sequence and time, oldest first.
    recent: VecDeque<(String, u64, u64)>,
    recent_ids: HashMap<String, u64>,
}

impl MemoryHistory {
    /// An empty store with a fresh epoch.
    pub fn new(retention: Retention) -> Self {
        MemoryHistory {
            epoch: rand::random::<u64>() >> 1 | 1,
            retention,
            state: Mutex::new(State {
                next_seq: 1,
                ..State::default()
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `body` under `subject` (once per `dedupe_id`): the epoch and its sequence.
    fn store(&self, subject: &str, dedupe_id: &str, body: Bytes) -> (u64, u64) {
        let now = now_ms();
        let mut state = self.state();
        if let Some(seq) = state.recent_ids.get(dedupe_id) {
            return (self.epoch, *seq);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state
            .subjects
            .entry(subject.to_string())
            .or_default()
            .push_back(Stored { seq, ms: now, body });
        state.recent_ids.insert(dedupe_id.to_string(), seq);
        state.recent.push_back((dedupe_id.to_string(), seq, now));
        if seq.is_multiple_of(SWEEP_EVERY) {
            let subjects: Vec<String> = state.subjects.keys().cloned().collect();
            for subject in subjects {
                self.trim(&mut state, &subject, now);
            }
        } else {
            self.trim(&mut state, subject, now);
        }
        (self.epoch, seq)
    }

    /// Drops what has aged out under `subject` (and the subject once empty).
    fn trim(&self, state: &mut State, subject: &str, now: u64) {
        let ttl = self.retention.ttl.as_millis() as u64;
        if let Some(events) = state.subjects.get_mut(subject) {
            while events.len() > self.retention.size
                || events
                    .front()
                    .is_some_and(|e| now.saturating_sub(e.ms) >= ttl)
            {
                events.pop_front();
            }
            if events.is_empty() {
                state.subjects.remove(subject);
            }
        }
        while let Some((id, _, ms)) = state.recent.front() {
            if now.saturating_sub(*ms) < DEDUPE_WINDOW_MS {
                break;
            }
            state.recent_ids.remove(id);
            state.recent.pop_front();
        }
    }
}

#[async_trait]
impl HistoryStore for MemoryHistory {
    async fn append(
        &self,
        subject: &str,
        dedupe_id: &str,
        body: Bytes,
    ) -> Result<PendingAppend, HistoryError> {
        let stored = self.store(subject, dedupe_id, body);
        Ok(Box::pin(std::future::ready(Ok(stored))))
    }

    async fn epoch(&self) -> Result<u64, HistoryError> {
        Ok(self.epoch)
    }

    async fn last(&self, subject: &str) -> Result<Option<u64>, HistoryError> {
        let mut state = self.state();
        self.trim(&mut state, subject, now_ms());
        Ok(state
            .subjects
            .get(subject)
            .and_then(|e| e.back())
            .map(|e| e.seq))
    }

    async fn holds(&self, subject: &str, seq: u64) -> Result<bool, HistoryError> {
        let mut state = self.state();
        self.trim(&mut state, subject, now_ms());
        Ok(state
            .subjects
            .get(subject)
            .is_some_and(|e| e.binary_search_by_key(&seq, |s| s.seq).is_ok()))
    }

    async fn after(
        &self,
        subject: &str,
        seq: u64,
        max: usize,
    ) -> Result<Vec<Stored>, HistoryError> {
        let mut state = self.state();
        self.trim(&mut state, subject, now_ms());
        let Some(events) = state.subjects.get(subject) else {
            return Ok(Vec::new());
        };
        let start = events.partition_point(|s| s.seq <= seq);
        Ok(events.range(start..).take(max).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subjects_nobody_touches_again_are_swept() {
        let store = MemoryHistory::new(Retention {
            size: 10,
            ttl: std::time::Duration::from_millis(1),
        });
        store.store("herald.hist.u.gone", "x", Bytes::new());
        std::thread::sleep(std::time::Duration::from_millis(5));
        for n in 0..SWEEP_EVERY {
            store.store("herald.hist.u.busy", &n.to_string(), Bytes::new());
        }
        assert!(!store.state().subjects.contains_key("herald.hist.u.gone"));
    }

    #[tokio::test]
    async fn conforms() {
        let store = MemoryHistory::new(super::super::conformance::RETENTION);
        super::super::conformance::run_all(std::sync::Arc::new(store)).await;
    }
}
