//! What every [`EventLog`] does, run against each implementation (unit tests for memory,
//! `tests/lifecycle.rs` for JetStream).

use super::*;
use crate::lifecycle::{Kind, LifecycleEvent};

fn event(n: u32) -> LifecycleEvent {
    LifecycleEvent::with_id(Kind::Join, format!("e{n}")).channel("c")
}

fn ids(batch: &[LifecycleEvent]) -> Vec<&str> {
    batch.iter().map(|e| e.id.as_str()).collect()
}

/// Batches come in order, bounded by `max`; an unacknowledged batch comes back to a new
/// reader of the same name; an acknowledged one never does.
pub async fn run_all(log: &dyn EventLog, name: &str) {
    let mut reader = log.reader(name).await.unwrap();
    let wait = Duration::from_millis(300);
    assert!(reader
        .next_batch(10, Duration::from_millis(50))
        .await
        .unwrap()
        .is_empty());
    for n in 0..5 {
        log.append(&event(n)).await.unwrap();
    }
    let first = reader.next_batch(3, wait).await.unwrap();
    assert_eq!(ids(&first), ["e0", "e1", "e2"]);
    reader.acknowledge().await.unwrap();
    let second = reader.next_batch(10, wait).await.unwrap();
    assert_eq!(ids(&second), ["e3", "e4"]);
    reader.still_working().await.unwrap();
    // Not acknowledged: the reader "crashed"; its successor gets the batch again.
    drop(reader);
    let mut successor = log.reader(name).await.unwrap();
    // A batch of up to 2 waits for no more than those 2 (the log may hold them back briefly).
    let again = successor
        .next_batch(2, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ids(&again), ["e3", "e4"]);
    successor.acknowledge().await.unwrap();
    log.append(&event(5)).await.unwrap();
    let third = successor.next_batch(10, wait).await.unwrap();
    assert_eq!(ids(&third), ["e5"]);
    successor.acknowledge().await.unwrap();
}
