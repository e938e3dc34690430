//! Notify requests from adapters: validated, given an id, published once to every gateway.

use crate::Context;
use bytes::Bytes;
use herald_core::bus::{BusMessage, Subscription};
use herald_core::messages::{Delivery, NotifyReply};
use herald_core::protocol::notify::Notify;
use herald_core::{subjects, HeraldError};
use std::sync::atomic::{AtomicU64, Ordering};
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
    let reply = match publish(context, ids.next(), &message.payload).await {
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

async fn publish(context: &Context, id: String, body: &[u8]) -> Result<String, HeraldError> {
    let notify = Notify::decode(body)?;
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

/// Event ids: unique across dispatchers (random prefix), sortable within one (counter).
struct EventIds {
    prefix: String,
    counter: AtomicU64,
}

impl EventIds {
    fn new() -> Self {
        EventIds {
            prefix: format!("{:08x}", rand::random::<u32>()),
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        format!(
            "{}-{}",
            self.prefix,
            self.counter.fetch_add(1, Ordering::Relaxed)
        )
    }
}
