//! Hands a notify to a dispatcher over the bus and waits until it was accepted.

use bytes::Bytes;
use herald_core::bus::{Bus, BusError};
use herald_core::messages::NotifyReply;
use herald_core::protocol::notify::Notify;
use herald_core::{subjects, HeraldError};
use std::time::Duration;

/// How long an adapter waits for a dispatcher to accept an event.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `notify` to a dispatcher; returns the event id once it was published to the gateways.
/// An `unavailable` error means nothing was published and the caller should retry.
pub async fn publish(bus: &dyn Bus, notify: &Notify) -> Result<String, HeraldError> {
    let reply = bus
        .request(
            subjects::NOTIFY,
            Bytes::from(notify.encode()),
            ACCEPT_TIMEOUT,
        )
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
