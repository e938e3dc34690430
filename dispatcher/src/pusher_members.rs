//! Members of Pusher presence channels: a user's first connection in a channel announces it to
//! the others (`member_added`), its last one leaving — by leave, close or a dead gateway —
//! announces its going (`member_removed`).
//!
//! A user's membership is a KV record created by its first connection: of several connections
//! joining at once, on any dispatchers, exactly one creates it and announces the user. The last
//! connection to leave deletes it and announces the user gone; two leaving at the same instant
//! on two dispatchers may both announce it (clients ignore the repeat).

use crate::notify::Turns;
use crate::Context;
use herald_core::lifecycle::Kind;
use herald_core::messages::{EventIds, NotifyRequest};
use herald_core::protocol::notify::{Notify, Targets};
use herald_core::pusher::{members, ChannelKind, Member};
use herald_core::subjects::ConnId;
use herald_core::HeraldError;
use serde_json::json;
use std::sync::Arc;

/// Whether `channel` (a Herald name) is a Pusher presence channel.
pub(crate) fn is_presence(channel: &str) -> bool {
    herald_core::pusher::pusher_channel(channel)
        .is_some_and(|(_, name)| ChannelKind::of(&name) == ChannelKind::Presence)
}

/// `conn` joined the presence `channel` as `member`: recorded, announced if it is the user's
/// first connection there; answers the members, each user once.
pub(crate) async fn joined(
    context: &Arc<Context>,
    conn: &ConnId,
    channel: &str,
    member: Member,
) -> Result<Vec<Member>, HeraldError> {
    let (all, first) = context
        .presence
        .member_joined(conn, channel, &member)
        .await
        .map_err(crate::commands::kv_down)?;
    if first {
        let data = json!({"user_id": member.user_id, "user_info": member.user_info});
        announce(context, channel, members::ADDED, data, Some(conn)).await;
        crate::lifecycle::member(context, Kind::MemberAdded, channel, &member.user_id).await;
    }
    let mut distinct: Vec<Member> = Vec::with_capacity(all.len());
    for (_, m) in all {
        if !distinct.iter().any(|d| d.user_id == m.user_id) {
            distinct.push(m);
        }
    }
    Ok(distinct)
}

/// `conn` left `channels` (some may be presence channels): forgotten there, and announced
/// gone where it was the user's last connection.
pub(crate) async fn left(context: &Arc<Context>, conn: &ConnId, channels: &[String]) {
    for channel in channels.iter().filter(|c| is_presence(c)) {
        match context.presence.member_left(conn, channel).await {
            Ok(Some(member)) => {
                removed_if_gone(context, channel, &member.user_id, Some(conn)).await
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%channel, error = %e, "could not forget a presence member");
            }
        }
    }
}

/// A gateway died: its connections' members are forgotten and announced gone where they were
/// their users' last.
pub(crate) async fn gateway_lost(context: &Arc<Context>, gateway: &str) {
    let lost = match context.presence.forget_gateway_members(gateway).await {
        Ok(lost) => lost,
        Err(e) => {
            tracing::warn!(%gateway, error = %e, "could not forget a dead gateway's presence members");
            return;
        }
    };
    let mut announced: Vec<(&str, &str)> = Vec::new();
    for (channel, member) in &lost {
        let key = (channel.as_str(), member.user_id.as_str());
        if !announced.contains(&key) {
            announced.push(key);
            removed_if_gone(context, channel, &member.user_id, None).await;
        }
    }
}

/// Announces `user_id` gone from `channel` if it is, to everyone but `leaving` (the connection
/// that left, which its gateway may not have let go of yet).
async fn removed_if_gone(
    context: &Arc<Context>,
    channel: &str,
    user_id: &str,
    leaving: Option<&ConnId>,
) {
    match context.presence.member_gone(channel, user_id).await {
        Ok(true) => {
            let data = json!({ "user_id": user_id });
            announce(context, channel, members::REMOVED, data, leaving).await;
            crate::lifecycle::member(context, Kind::MemberRemoved, channel, user_id).await;
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(%channel, error = %e, "cannot count a presence channel's members: no member_removed");
        }
    }
}

/// Sends the members of `channel` (but `except`) a member event, the way any event goes.
async fn announce(
    context: &Arc<Context>,
    channel: &str,
    event: &str,
    data: serde_json::Value,
    except: Option<&ConnId>,
) {
    let notify = Notify {
        event: event.to_string(),
        targets: Targets {
            channels: vec![channel.to_string()],
            ..Default::default()
        },
        payload: serde_json::value::to_raw_value(&data)
            .unwrap_or_else(|_| unreachable!("a JSON value serializes")),
    };
    let request = NotifyRequest {
        id: EventIds::fresh(),
        notify,
        from: None,
        except: except.map(ConnId::to_string),
    };
    let turns = Turns::take(context);
    if let Err(e) = crate::notify::publish(context.clone(), request, turns).await {
        tracing::warn!(%channel, event, error = %e.message, "could not announce a presence change");
    }
}
