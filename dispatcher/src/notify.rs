//! Notify requests from adapters: validated and published once to every gateway, under the id
//! the adapter chose (or a new one for a bare notify body).

use crate::Context;
use bytes::Bytes;
use herald_core::bus::{BusMessage, Subscription};
use herald_core::messages::{Delivery, EventIds, NotifyReply, NotifyRequest};
use herald_core::protocol::notify::Notify;
use herald_core::{subjects, HeraldError};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Handles notify requests one after another, so events reach gateways in the order this
/// dispatcher accepted them.
pub(crate) async fn serve_in_order(
    mut subscription: Subscription,
    context: Arc<Context>,
    shutdown: CancellationToken,
) {
    let ids = EventIds::new();
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = subscription.next() => match m { Some(m) => m, None => break },
        };
        handle(&context, &ids, &message).await;
    }
}

async fn handle(context: &Context, ids: &EventIds, message: &BusMessage) {
    let reply = match publish(context, ids, &message.payload).await {
        Ok(id) => {
            context.events_accepted.inc();
            NotifyReply::Accepted { id }
        }
        Err(error) => {
            context.events_refused.inc();
            NotifyReply::Failed { error }
        }
    };
    context
        .reply(message, serde_json::to_vec(&reply).unwrap_or_default())
        .await;
}

async fn publish(context: &Context, ids: &EventIds, body: &[u8]) -> Result<String, HeraldError> {
    let (id, notify) = match serde_json::from_slice::<NotifyRequest>(body) {
        Ok(request) if EventIds::is_valid(&request.id) => {
            request.notify.validate()?;
            (request.id, request.notify)
        }
        Ok(_) => return Err(HeraldError::bad_request("malformed event id")),
        Err(_) => (ids.next(), Notify::decode(body)?),
    };
    let delivery = Delivery {
        id: &id,
        event: &notify.event,
        targets: notify.targets.clone(),
        payload: &notify.payload,
    };
    let bytes = serde_json::to_vec(&delivery).map_err(HeraldError::internal)?;
    context
        .bus
        .publish(subjects::DELIVER, Bytes::from(bytes))
        .await
        .map_err(|e| {
            HeraldError::unavailable(format!("could not hand the event to the gateways: {e}"))
        })?;
    Ok(id)
}
