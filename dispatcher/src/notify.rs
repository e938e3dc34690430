//! Notify requests from adapters, and events clients published through their gateway:
//! validated, kept in the history of each target, and published to the gateways holding those
//! targets, under the id the sender chose.

use crate::turns::Turn;
use crate::Context;
use bytes::Bytes;
use herald_core::history::Target;
use herald_core::messages::{
    Delivery, EventAccepted, EventIds, NotifyBatchRequest, NotifyRequest, MAX_BATCH_ITEMS,
};
use herald_core::protocol::notify::{Notify, Targets};
use herald_core::protocol::Positions;
use herald_core::pusher;
use herald_core::requests::Reply;
use herald_core::subjects::{self, ConnId};
use herald_core::{ErrorCode, HeraldError};
use std::sync::Arc;

/// An event's two turns: when it is sent to history, and when it is handed to the gateways.
/// Both follow one order, so the positions of a target's events grow in the order gateways
/// get them.
pub(crate) struct Turns {
    store: Turn,
    hand_over: Turn,
}

impl Turns {
    /// The next event's turns (taken when the request arrives, so that events accepted by this
    /// dispatcher keep the order they came in).
    pub(crate) fn take(context: &Context) -> Turns {
        Turns {
            store: context.store_turns.take(),
            hand_over: context.hand_over_turns.take(),
        }
    }
}

/// Publishes one event from an adapter to the gateways; answers its id.
pub(crate) async fn publish(
    context: Arc<Context>,
    request: NotifyRequest<Notify>,
    turns: Turns,
) -> Result<EventAccepted, HeraldError> {
    let result = match request.from {
        Some(_) => Err(HeraldError::bad_request(
            "an adapter's notify names no publishing client",
        )),
        None => deliver(&context, request, turns).await,
    };
    counted(&context, result)
}

/// Publishes a batch of adapter events in order; answers each one's id or refusal.
pub(crate) async fn publish_batch(
    context: Arc<Context>,
    batch: NotifyBatchRequest<Notify>,
) -> Result<Vec<Reply<EventAccepted>>, HeraldError> {
    if batch.items.len() > MAX_BATCH_ITEMS {
        return Err(HeraldError::bad_request(format!(
            "a batch carries at most {MAX_BATCH_ITEMS} events"
        )));
    }
    let mut replies = Vec::with_capacity(batch.items.len());
    for request in batch.items {
        let turns = Turns::take(&context);
        replies.push(Reply::from(publish(context.clone(), request, turns).await));
    }
    Ok(replies)
}

/// Publishes one event a client published to the gateways, once KV confirms that its
/// connection is identified as the user it names and joined the one channel it targets.
pub(crate) async fn client_published(
    context: Arc<Context>,
    request: NotifyRequest<Notify>,
) -> Result<EventAccepted, HeraldError> {
    if let Err(e) = member_publishing(&context, &request).await {
        return counted(&context, Err(e));
    }
    let client_event = PusherClientEvent::of(&request);
    let result = deliver(&context, request, Turns::take(&context)).await;
    if let (Ok(_), Some(sent)) = (&result, client_event) {
        let at = (sent.channel.as_str(), sent.socket_id.as_str());
        crate::lifecycle::client_event(
            &context,
            at,
            &sent.name,
            sent.data,
            sent.user_id.as_deref(),
        )
        .await;
    }
    counted(&context, result)
}

/// What the `client_event` lifecycle event says of a Pusher client's event.
struct PusherClientEvent {
    channel: String,
    socket_id: String,
    name: String,
    data: serde_json::Value,
    user_id: Option<String>,
}

impl PusherClientEvent {
    /// The client event `request` carries; `None` for other publishes.
    fn of(request: &NotifyRequest<Notify>) -> Option<PusherClientEvent> {
        let notify = &request.notify;
        let channel = notify.targets.channels.first()?;
        if notify.event != pusher::EVENT || pusher::pusher_channel(channel).is_none() {
            return None;
        }
        let envelope: pusher::Envelope = serde_json::from_str(notify.payload.get()).ok()?;
        let conn = ConnId::parse(&request.from.as_ref()?.conn)?;
        Some(PusherClientEvent {
            channel: channel.clone(),
            socket_id: pusher::socket_id(&conn),
            name: envelope.name.into_owned(),
            data: serde_json::from_str(envelope.data.get()).unwrap_or_default(),
            user_id: envelope.user_id.map(|u| u.into_owned()),
        })
    }
}

async fn member_publishing(
    context: &Context,
    request: &NotifyRequest<Notify>,
) -> Result<(), HeraldError> {
    let refused = |why: &str| Err(HeraldError::new(ErrorCode::Forbidden, why.to_string()));
    let Some(from) = &request.from else {
        return refused("a client publish must name its connection");
    };
    let targets = &request.notify.targets;
    let [channel] = targets.channels.as_slice() else {
        return refused("a client publishes to exactly one channel");
    };
    if !targets.users.is_empty() || targets.broadcast {
        return refused("a client publishes to exactly one channel");
    }
    let Some(conn) = ConnId::parse(&from.conn) else {
        return Err(HeraldError::bad_request("malformed connection id"));
    };
    let member = context
        .presence
        .is_member(&conn, &from.user, channel)
        .await
        .map_err(|e| {
            HeraldError::unavailable(format!("presence store unavailable, try again: {e}"))
        })?;
    if !member {
        return refused("the publishing connection is not a member of the channel");
    }
    Ok(())
}

fn counted(
    context: &Context,
    result: Result<EventAccepted, HeraldError>,
) -> Result<EventAccepted, HeraldError> {
    match &result {
        Ok(_) => context.events_accepted.inc(),
        Err(_) => context.events_refused.inc(),
    }
    result
}

async fn deliver(
    context: &Context,
    NotifyRequest {
        id,
        notify,
        from,
        except,
    }: NotifyRequest<Notify>,
    mut turns: Turns,
) -> Result<EventAccepted, HeraldError> {
    if !EventIds::is_valid(&id) {
        return Err(HeraldError::bad_request("malformed event id"));
    }
    notify.validate()?;
    let mut delivery = Delivery {
        id: &id,
        event: &notify.event,
        targets: notify.targets.clone(),
        payload: &notify.payload,
        accepted_ms: Delivery::now_ms(),
        from,
        except,
        pos: Positions::default(),
    };
    let targets = targets_of(&delivery.targets);
    delivery.pos = remember(context, &id, &delivery, &targets, turns.store).await?;
    let bytes = Bytes::from(serde_json::to_vec(&delivery).map_err(HeraldError::internal)?);
    turns.hand_over.wait().await;
    let subjects = targets.iter().map(subjects::deliver_to).chain(
        delivery
            .targets
            .broadcast
            .then(|| subjects::DELIVER_BROADCAST.to_string()),
    );
    for subject in subjects {
        context
            .bus
            .publish(&subject, bytes.clone())
            .await
            .map_err(|e| {
                HeraldError::unavailable(format!("could not hand the event to the gateways: {e}"))
            })?;
    }
    Ok(EventAccepted { id })
}

/// Each channel and user an event names, once.
fn targets_of(targets: &Targets) -> Vec<Target> {
    let channels = targets.channels.iter().cloned().map(Target::Channel);
    let users = targets.users.iter().cloned().map(Target::User);
    let mut all: Vec<Target> = channels.chain(users).collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Stores the event in the history of each target that keeps one: sent in its turn, then the
/// answers awaited outside it, so the next event's appends need not wait for this one's.
/// Answers its positions there. An event that could not be kept is refused (the sender
/// retries, under the same id, which history stores once).
async fn remember(
    context: &Context,
    id: &str,
    delivery: &Delivery<'_>,
    targets: &[Target],
    mut turn: Turn,
) -> Result<Positions, HeraldError> {
    let refused = |e: herald_core::history::HistoryError| {
        HeraldError::unavailable(format!(
            "could not keep the event in history, try again: {e}"
        ))
    };
    let history = &context.config.history;
    let stored = Bytes::from(serde_json::to_vec(delivery).map_err(HeraldError::internal)?);
    turn.wait().await;
    let mut sent = Vec::with_capacity(targets.len());
    for target in targets {
        sent.push(
            history
                .send(target, id, stored.clone())
                .await
                .map_err(refused)?,
        );
    }
    drop(turn);
    let kept = futures::future::join_all(sent.into_iter().map(|pending| async move {
        match pending {
            Some(pending) => pending.await.map(Some),
            None => Ok(None),
        }
    }))
    .await;
    let mut positions = Positions::default();
    for (target, position) in targets.iter().zip(kept) {
        let Some(position) = position.map_err(refused)? else {
            continue;
        };
        match target {
            Target::Channel(name) => positions
                .channels
                .insert(name.clone(), position.to_string()),
            Target::User(name) => positions.users.insert(name.clone(), position.to_string()),
        };
    }
    Ok(positions)
}
