//! History reads: a backend's `GET …/history`, and a gateway replaying what a reconnecting
//! client missed. Answered as event frames, each with its position.

use crate::Context;
use herald_core::history::{Position, Target, MAX_PAGE};
use herald_core::messages::Delivery;
use herald_core::protocol::server_frames::encode_event;
use herald_core::protocol::{Positions, Via};
use herald_core::{names, HeraldError};
use serde_json::{json, value::RawValue};

/// Bytes of event frames one answer carries at most (NATS refuses messages over 1 MiB by
/// default); at least one event always goes, and `more` says that others follow.
const MAX_PAGE_BYTES: usize = 512 * 1024;

/// `{"events":[…],"pos":"<top>","recovered":bool,"more":bool}` (`pos` null when the target
/// keeps no history, `recovered` only with `since`).
pub(crate) async fn read(
    context: &Context,
    target: Target,
    since: Option<String>,
    limit: Option<usize>,
) -> Result<serde_json::Value, HeraldError> {
    let kind = match &target {
        Target::Channel(_) => "channel",
        Target::User(_) => "user",
    };
    names::check_name(kind, target.name())?;
    let since = since
        .as_deref()
        .map(|token| {
            Position::parse(token).ok_or_else(|| {
                HeraldError::bad_request(
                    "`since` is not a position Herald gave out; pass the `pos` of an event or \
                     of an earlier answer as it was",
                )
            })
        })
        .transpose()?;
    let limit = match (limit, &since) {
        (None, _) => MAX_PAGE,
        (Some(0), Some(_)) => {
            return Err(HeraldError::bad_request(
                "`limit` must be at least 1 with `since`",
            ))
        }
        (Some(n), _) => n.min(MAX_PAGE),
    };
    let page = context
        .config
        .history
        .read(&target, since, limit)
        .await
        .map_err(|e| HeraldError::unavailable(format!("{e}; try again")))?;
    let mut events: Vec<Box<RawValue>> = Vec::with_capacity(page.events.len());
    let mut bytes = 0;
    let mut more = page.more;
    for (position, stored) in &page.events {
        let frame = frame(&target, *position, stored)?;
        bytes += frame.get().len();
        if bytes > MAX_PAGE_BYTES && !events.is_empty() {
            more = true;
            break;
        }
        events.push(frame);
    }
    let mut answer = json!({
        "events": events,
        "pos": page.top.map(|p| p.to_string()),
        "more": more,
    });
    if let Some(recovered) = page.recovered {
        answer["recovered"] = json!(recovered);
    }
    Ok(answer)
}

/// A stored delivery as the `event` frame its target's members got, `via` that target.
fn frame(target: &Target, position: Position, stored: &[u8]) -> Result<Box<RawValue>, HeraldError> {
    let delivery: Delivery = serde_json::from_slice(stored)
        .map_err(|e| HeraldError::internal(format!("a stored event does not parse: {e}")))?;
    let mut via = Via::default();
    let mut pos = Positions::default();
    match target {
        Target::Channel(name) => {
            via.channels.push(name.clone());
            pos.channels.insert(name.clone(), position.to_string());
        }
        Target::User(name) => {
            via.users.push(name.clone());
            pos.users.insert(name.clone(), position.to_string());
        }
    }
    let from = delivery.from.as_ref().map(|f| f.user.as_str());
    let bytes = encode_event(
        delivery.id,
        delivery.event,
        delivery.payload,
        (&via, &pos),
        from,
    );
    let text = String::from_utf8(bytes.to_vec()).map_err(HeraldError::internal)?;
    RawValue::from_string(text).map_err(HeraldError::internal)
}
