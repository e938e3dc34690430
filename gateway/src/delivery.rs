//! Events and control messages from the bus, fanned out to this gateway's connections.
//!
//! Each event is parsed once per gateway and encoded once per distinct `via`; every connection
//! in a group gets the same bytes. Queuing never waits: a full outbox closes that connection.
//! Events come through the subscriptions [`crate::interest`] keeps, one per target held.

use crate::outbox::{CloseReason, Offer};
use crate::recent::{RecentEvents, CAPACITY};
use crate::recovery::{Held, Live};
use crate::registry::Connection;
use crate::Shared;
use axum::extract::ws::Utf8Bytes;
use herald_core::messages::{Control, Delivery};
use herald_core::protocol::server_frames::encode_event;
use herald_core::subjects;
use std::sync::Arc;

/// Subscribes to deliveries and control messages and serves them until shutdown.
pub(crate) async fn start(
    shared: &Arc<Shared>,
    mut deliveries: crate::interest::Deliveries,
) -> anyhow::Result<()> {
    let mut controls = shared.bus.subscribe(subjects::CONTROL, None).await?;
    shared.bus.flush().await?;
    let for_events = shared.clone();
    let mut gaps = shared.bus.gaps();
    gaps.borrow_and_update();
    shared.tracker.spawn(async move {
        let mut recent = RecentEvents::new(CAPACITY);
        let mut watching_gaps = true;
        loop {
            tokio::select! {
                _ = for_events.shutdown.cancelled() => break,
                // Live events wait meanwhile, in their subscriptions, and come after.
                changed = gaps.changed(), if watching_gaps => match changed {
                    Ok(()) => crate::gaps::catch_up(&for_events, &mut recent).await,
                    Err(_) => watching_gaps = false,
                },
                m = deliveries.next() => match m {
                    Some(m) => deliver(&for_events, &mut recent, &m.payload),
                    None => break,
                },
            }
        }
    });
    let for_control = shared.clone();
    shared.tracker.spawn(async move {
        loop {
            tokio::select! {
                _ = for_control.shutdown.cancelled() => break,
                m = controls.next() => match m {
                    Some(m) => control(&for_control, &m.payload),
                    None => break,
                },
            }
        }
    });
    Ok(())
}

/// Delivers one event to the connections it targets here, unless it already was.
pub(crate) fn deliver(shared: &Shared, recent: &mut RecentEvents, payload: &[u8]) {
    let delivery: Delivery = match serde_json::from_slice(payload) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring a malformed delivery");
            return;
        }
    };
    if !recent.first_time(delivery.id) {
        tracing::debug!(
            id = delivery.id,
            "dropping a copy of an event already delivered"
        );
        return;
    }
    shared.metrics.events.inc();
    shared.interest.seen(&delivery.pos);
    let mut delivered = 0;
    let from = delivery.from.as_ref();
    // A client does not get its own publish back, nor a Pusher sender the event it excluded.
    let skipped = |connection: &Connection| {
        from.is_some_and(|from| from.conn == connection.id_text)
            || delivery.except.as_deref() == Some(connection.id_text.as_str())
    };
    for group in shared.registry.resolve(&delivery.targets) {
        // Each kind of frame is made once per group, when a connection of the group first
        // needs it: Herald frames, and Pusher frames (one per channel).
        let herald_frame = || {
            let pos = delivery.pos.for_via(&group.via);
            let bytes = encode_event(
                delivery.id,
                delivery.event,
                delivery.payload,
                (&group.via, &pos),
                from.map(|from| from.user.as_str()),
            );
            Utf8Bytes::try_from(bytes).ok()
        };
        let mut herald_frames: Option<Option<Utf8Bytes>> = None;
        let mut pusher_frames: Option<Vec<Utf8Bytes>> = None;
        for connection in group.connections {
            if skipped(&connection) {
                continue;
            }
            if connection.speaks_pusher {
                let frames = pusher_frames.get_or_insert_with(|| {
                    crate::pusher::event_frames(
                        &group.via.channels,
                        delivery.event,
                        delivery.payload,
                    )
                });
                for frame in frames.iter() {
                    let offer = connection
                        .outbox
                        .offer_event(frame.clone(), delivery.accepted_ms);
                    if counted(shared, &connection, offer) == Offer::Queued {
                        delivered += 1;
                    }
                }
                continue;
            }
            let Some(frame) = herald_frames.get_or_insert_with(herald_frame).clone() else {
                continue;
            };
            let offer = if connection.recovery.is_active() {
                let event = Held {
                    id: delivery.id.to_string(),
                    frame: frame.clone(),
                    accepted_ms: delivery.accepted_ms,
                };
                let capacity = shared.config.outbox_capacity;
                match connection
                    .recovery
                    .offer_live(&connection.outbox, event, capacity)
                {
                    Live::Offered(offer) => offer,
                    Live::Held => Offer::Queued,
                    Live::Duplicate => continue,
                }
            } else {
                connection
                    .outbox
                    .offer_event(frame.clone(), delivery.accepted_ms)
            };
            if counted(shared, &connection, offer) == Offer::Queued {
                delivered += 1;
            }
        }
    }
    shared.metrics.deliveries.add(delivered);
}

/// Queues a reply or other frame of the connection's own, counting and logging the slow
/// consumer whose queue it overflowed.
pub(crate) fn queue(shared: &Shared, connection: &Connection, frame: Utf8Bytes) -> Offer {
    counted(shared, connection, connection.outbox.offer(frame))
}

fn counted(shared: &Shared, connection: &Connection, offer: Offer) -> Offer {
    if offer == Offer::Overflowed {
        shared.metrics.slow_consumers.inc();
        tracing::info!(conn = %connection.id_text, "closing a slow consumer");
    }
    offer
}

fn control(shared: &Shared, payload: &[u8]) {
    match serde_json::from_slice::<Control>(payload) {
        Ok(Control::DisconnectUser { user }) => {
            for connection in shared.registry.connections_of(&user) {
                connection
                    .outbox
                    .close(CloseReason::DISCONNECTED_BY_BACKEND);
            }
        }
        Err(e) => tracing::warn!(error = %e, "ignoring a malformed control message"),
    }
}
