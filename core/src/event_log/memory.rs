//! `MemoryEventLog`: the [`EventLog`] of one process (embedded mode): a bounded queue with a
//! position per reader name.

use super::{EventLog, EventReader, LogError};
use crate::lifecycle::LifecycleEvent;
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Events kept at most; beyond, the oldest are dropped (and counted in a warning), so a
/// webhook that is down for long cannot take the process's memory.
pub const CAPACITY: usize = 100_000;

/// An in-memory [`EventLog`].
#[derive(Clone, Default)]
pub struct MemoryEventLog {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    appended: Notify,
}

#[derive(Default)]
struct State {
    /// Whether the log is full and dropping its oldest events (said once in the log).
    dropping: bool,
    /// Events with their sequence numbers, oldest first.
    events: VecDeque<(u64, LifecycleEvent)>,
    /// The sequence number the next event gets.
    next: u64,
    /// Per reader name: the sequence number of its first event not acknowledged.
    positions: HashMap<String, u64>,
}

impl MemoryEventLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl EventLog for MemoryEventLog {
    async fn append(&self, event: &LifecycleEvent) -> Result<(), LogError> {
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            let seq = state.next;
            state.next += 1;
            // Nobody will read it: in one process there is no other subscriber to keep it for.
            if state.positions.is_empty() {
                return Ok(());
            }
            state.events.push_back((seq, event.clone()));
            if state.events.len() > CAPACITY {
                state.events.pop_front();
                if !std::mem::replace(&mut state.dropping, true) {
                    tracing::warn!(
                        capacity = CAPACITY,
                        "lifecycle event log full: dropping the oldest undelivered events (is a webhook down?)"
                    );
                }
            } else {
                state.dropping = false;
            }
        }
        self.shared.appended.notify_waiters();
        Ok(())
    }

    async fn reader(&self, name: &str) -> Result<Box<dyn EventReader>, LogError> {
        let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let next = state.next;
        state.positions.entry(name.to_string()).or_insert(next);
        Ok(Box::new(MemoryReader {
            shared: self.shared.clone(),
            name: name.to_string(),
            batch_end: None,
        }))
    }
}

struct MemoryReader {
    shared: Arc<Shared>,
    name: String,
    /// The sequence number after the last batch returned.
    batch_end: Option<u64>,
}

impl MemoryReader {
    fn batch(&self, max: usize) -> (Vec<LifecycleEvent>, u64) {
        let state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let from = state
            .positions
            .get(&self.name)
            .copied()
            .unwrap_or(state.next);
        let batch: Vec<(u64, LifecycleEvent)> = state
            .events
            .iter()
            .filter(|(seq, _)| *seq >= from)
            .take(max)
            .cloned()
            .collect();
        let end = batch.last().map_or(from, |(seq, _)| seq + 1);
        (batch.into_iter().map(|(_, e)| e).collect(), end)
    }
}

#[async_trait]
impl EventReader for MemoryReader {
    async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<LifecycleEvent>, LogError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let appended = self.shared.appended.notified();
            let (batch, end) = self.batch(max);
            if batch.len() >= max || tokio::time::Instant::now() >= deadline {
                self.batch_end = Some(end);
                return Ok(batch);
            }
            let _ = tokio::time::timeout_at(deadline, appended).await;
        }
    }

    async fn acknowledge(&mut self) -> Result<(), LogError> {
        if let Some(end) = self.batch_end.take() {
            let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            let position = state.positions.entry(self.name.clone()).or_insert(end);
            *position = (*position).max(end);
            // Events every reader has acknowledged are no longer needed.
            let oldest = state.positions.values().copied().min().unwrap_or(end);
            while state.events.front().is_some_and(|(seq, _)| *seq < oldest) {
                state.events.pop_front();
            }
        }
        Ok(())
    }

    async fn still_working(&mut self) -> Result<(), LogError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_reader_nothing_is_kept() {
        use crate::lifecycle::{Kind, LifecycleEvent};
        let log = MemoryEventLog::new();
        for _ in 0..10 {
            log.append(&LifecycleEvent::new(Kind::Join)).await.unwrap();
        }
        let state = log.shared.state.lock().unwrap();
        assert!(state.events.is_empty());
    }

    #[tokio::test]
    async fn conforms() {
        super::super::conformance::run_all(&MemoryEventLog::new(), "hook").await;
    }
}
