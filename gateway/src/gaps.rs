//! Catching up after this gateway was off NATS (a reconnect, a subscription NATS had to drop
//! messages of): what the streams of the targets it holds got meanwhile is read from history
//! and delivered like live events, each once (the recent-ids set drops what already came).
//! Where history no longer has all of it, those connections are closed with 4010 so their
//! clients reconnect and recover for themselves, or learn that they must reload.

use crate::outbox::CloseReason;
use crate::recent::RecentEvents;
use crate::Shared;
use futures::stream::{self, StreamExt};
use herald_core::history::{Position, Target};
use herald_core::messages::Query;
use serde_json::{json, Value};
use std::collections::HashMap;

/// History reads in flight at once while catching up.
const CONCURRENT_READS: usize = 16;

/// One missed event, gathered from the streams of every held target it was sent to.
struct Missed {
    /// Its lowest sequence among those streams: events are delivered in this order.
    seq: u64,
    frame: Value,
    channels: Vec<String>,
    users: Vec<String>,
    pos: Value,
}

/// Reads what each held target's stream got after the last position this gateway saw, and
/// delivers it.
pub(crate) async fn catch_up(shared: &Shared, recent: &mut RecentEvents) {
    let positions = shared.interest.positions();
    if positions.is_empty() {
        return;
    }
    tracing::info!(
        targets = positions.len(),
        "catching up on events missed while off NATS"
    );
    let reads = stream::iter(positions)
        .map(|(target, since)| async move {
            let events = read_after(shared, &target, since).await;
            (target, events)
        })
        .buffer_unordered(CONCURRENT_READS)
        .collect::<Vec<_>>()
        .await;
    let mut missed: HashMap<String, Missed> = HashMap::new();
    for (target, events) in reads {
        let Some(events) = events else {
            lost(shared, &target);
            continue;
        };
        for (seq, frame) in events {
            let Some(id) = frame["id"].as_str().map(str::to_string) else {
                continue;
            };
            let entry = missed.entry(id).or_insert_with(|| Missed {
                seq,
                frame: frame.clone(),
                channels: Vec::new(),
                users: Vec::new(),
                pos: json!({}),
            });
            entry.seq = entry.seq.min(seq);
            let (kind, names) = match &target {
                Target::Channel(_) => ("channels", &mut entry.channels),
                Target::User(_) => ("users", &mut entry.users),
            };
            names.push(target.name().to_string());
            entry.pos[kind][target.name()] = frame["pos"][kind][target.name()].clone();
        }
    }
    let mut missed: Vec<Missed> = missed.into_values().collect();
    missed.sort_by_key(|m| m.seq);
    let count = missed.len();
    for event in missed {
        let mut delivery = json!({
            "id": event.frame["id"],
            "event": event.frame["event"],
            "payload": event.frame["payload"],
            "targets": {"channels": event.channels, "users": event.users},
            "pos": event.pos,
        });
        if let Some(user) = event.frame["from"]["user"].as_str() {
            delivery["from"] = json!({"user": user, "conn": ""});
        }
        crate::delivery::deliver(shared, recent, delivery.to_string().as_bytes());
    }
    tracing::info!(events = count, "caught up");
}

/// Every event in `target`'s stream after `since`, with its sequence there; `None` when
/// history cannot say (gone, or unreachable).
async fn read_after(
    shared: &Shared,
    target: &Target,
    since: Position,
) -> Option<Vec<(u64, Value)>> {
    let (kind, name) = match target {
        Target::Channel(name) => ("channels", name.as_str()),
        Target::User(name) => ("users", name.as_str()),
    };
    let mut since = since.to_string();
    let mut events = Vec::new();
    loop {
        let query = Query::History {
            target: target.clone(),
            since: Some(since.clone()),
            limit: None,
        };
        let answer = read_with_retries(shared, &query).await?;
        if answer["recovered"] != true {
            return None;
        }
        let page = answer["events"].as_array().cloned().unwrap_or_default();
        for frame in page {
            let position = frame["pos"][kind][name]
                .as_str()
                .and_then(Position::parse)?;
            since = position.to_string();
            events.push((position.seq, frame));
        }
        if answer["more"] != true {
            return Some(events);
        }
    }
}

/// Attempts at a history read while catching up: right after a reconnect the dispatchers may
/// be reconnecting too.
const READ_ATTEMPTS: u32 = 10;

async fn read_with_retries(shared: &Shared, query: &Query) -> Option<Value> {
    for attempt in 1..=READ_ATTEMPTS {
        match shared.requests.query(query).await {
            Ok(answer) => return Some(answer),
            Err(e) if attempt == READ_ATTEMPTS => {
                tracing::warn!(error = %e.message, "could not read history to catch up");
            }
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt))).await
            }
        }
    }
    None
}

/// History cannot fill `target`'s gap: its connections here reconnect and sort it out.
fn lost(shared: &Shared, target: &Target) {
    let connections = match target {
        Target::Channel(name) => shared.registry.members_of(name),
        Target::User(name) => shared.registry.connections_of(name),
    };
    tracing::warn!(
        ?target,
        connections = connections.len(),
        "closing connections whose missed events history no longer has"
    );
    for connection in connections {
        connection.outbox.close(CloseReason::RECOVERY_INTERRUPTED);
    }
}
