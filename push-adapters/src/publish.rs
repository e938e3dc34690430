//! Hands a notify to a dispatcher over the bus and waits until it was accepted.
//!
//! The adapter names the event (an id of its own), so the request can be sent again when the
//! dispatcher that took it dies before answering: a live dispatcher publishes the same id, and
//! gateways drop a copy they already delivered. A dispatcher's death then costs one short
//! attempt ([`herald_core::bus::failover`]) instead of the whole timeout.

use bytes::Bytes;
use herald_core::bus::{failover, Bus, BusError};
use herald_core::messages::{EventIds, NotifyReply, NotifyRequest};
use herald_core::protocol::notify::Notify;
use herald_core::{subjects, HeraldError};
use std::sync::LazyLock;
use std::time::Duration;

/// How long an adapter waits, over all attempts, for a dispatcher to accept an event.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Ids of the events this process publishes.
static EVENT_IDS: LazyLock<EventIds> = LazyLock::new(EventIds::new);

/// A fresh event id for [`publish_as`].
pub fn new_event_id() -> String {
    EVENT_IDS.next()
}

/// Sends `notify` to a dispatcher under a fresh id; returns the id once it was published to
/// the gateways. An `unavailable` error means it may or may not be delivered: retry.
pub async fn publish(bus: &dyn Bus, notify: &Notify) -> Result<String, HeraldError> {
    publish_as(bus, &new_event_id(), notify).await
}

/// Sends `notify` to a dispatcher as event `id`, asking another dispatcher when the first is
/// silent; publishing the same id again is harmless (gateways deliver it once).
pub async fn publish_as(bus: &dyn Bus, id: &str, notify: &Notify) -> Result<String, HeraldError> {
    let request = NotifyRequest {
        id: id.to_string(),
        notify,
    };
    let request = serde_json::to_vec(&request).map_err(HeraldError::internal)?;
    let reply = failover::request(bus, subjects::NOTIFY, Bytes::from(request), ACCEPT_TIMEOUT)
        .await
        .map_err(|e| match e {
            BusError::NoResponders(_) => {
                HeraldError::unavailable("no dispatcher is running; retry shortly")
            }
            BusError::Timeout(_) => HeraldError::unavailable(
                "no dispatcher accepted the event in time; it may or may not be delivered, retry",
            ),
            BusError::Unavailable(detail) => {
                HeraldError::unavailable(format!("message bus unavailable, retry: {detail}"))
            }
        })?;
    match serde_json::from_slice::<NotifyReply>(&reply) {
        Ok(NotifyReply::Accepted { id }) => Ok(id),
        Ok(NotifyReply::Failed { error }) => Err(error),
        Err(e) => Err(HeraldError::internal(format!("bad dispatcher reply: {e}"))),
    }
}
