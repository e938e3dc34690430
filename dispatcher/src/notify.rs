//! Notify requests from adapters: validated and published once to every gateway, under the id
//! the adapter chose.

use crate::Context;
use bytes::Bytes;
use herald_core::messages::{Delivery, EventAccepted, EventIds, NotifyRequest};
use herald_core::protocol::notify::Notify;
use herald_core::{subjects, HeraldError};
use std::sync::Arc;

/// Publishes one event to the gateways; answers its id.
pub(crate) async fn publish(
    context: Arc<Context>,
    request: NotifyRequest<Notify>,
) -> Result<EventAccepted, HeraldError> {
    let result = deliver(&context, request).await;
    match &result {
        Ok(_) => context.events_accepted.inc(),
        Err(_) => context.events_refused.inc(),
    }
    result
}

async fn deliver(
    context: &Context,
    NotifyRequest { id, notify, from }: NotifyRequest<Notify>,
) -> Result<EventAccepted, HeraldError> {
    if !EventIds::is_valid(&id) {
        return Err(HeraldError::bad_request("malformed event id"));
    }
    notify.validate()?;
    let delivery = Delivery {
        id: &id,
        event: &notify.event,
        targets: notify.targets.clone(),
        payload: &notify.payload,
        accepted_ms: Delivery::now_ms(),
        from,
    };
    let bytes = serde_json::to_vec(&delivery).map_err(HeraldError::internal)?;
    context
        .bus
        .publish(subjects::DELIVER, Bytes::from(bytes))
        .await
        .map_err(|e| {
            HeraldError::unavailable(format!("could not hand the event to the gateways: {e}"))
        })?;
    Ok(EventAccepted { id })
}
