//! Presence questions and disconnects from the REST adapter.

use crate::Context;
use bytes::Bytes;
use herald_core::messages::{Control, Query};
use herald_core::protocol::page;
use herald_core::{names, subjects, HeraldError};
use serde_json::json;
use std::sync::Arc;

/// Answers a history read, the one query gateways may send (on `herald.history`).
pub(crate) async fn answer_history(
    context: Arc<Context>,
    query: Query,
) -> Result<serde_json::Value, HeraldError> {
    match query {
        Query::History { .. } => answer(context, query).await,
        _ => Err(HeraldError::new(
            herald_core::ErrorCode::Forbidden,
            "only history reads are answered on herald.history",
        )),
    }
}

/// Answers one query with the REST body.
pub(crate) async fn answer(
    context: Arc<Context>,
    query: Query,
) -> Result<serde_json::Value, HeraldError> {
    let down = |e: herald_core::kv::KvError| HeraldError::unavailable(e.to_string());
    match query {
        Query::User { user } => {
            names::check_name("user", &user)?;
            context.presence.user_info(&user).await.map_err(down)
        }
        Query::Channel { channel } => {
            names::check_name("channel", &channel)?;
            context.presence.channel_info(&channel).await.map_err(down)
        }
        Query::Channels { cursor, limit } => {
            let after = cursor.as_deref().map(page::decode_cursor).transpose()?;
            let limit = page::page_limit(limit)?;
            context
                .presence
                .channels(after.as_deref(), limit)
                .await
                .map_err(down)
        }
        Query::History {
            target,
            since,
            limit,
        } => crate::history::read(&context, target, since, limit).await,
        Query::Presence => context.presence.snapshot().await.map_err(down),
        Query::Cluster => {
            // A dispatcher silent for ten liveness rounds is gone.
            let forget_after = context.config.liveness_interval.as_millis() as u64 * 10;
            let mut cluster = context.presence.cluster(forget_after).await.map_err(down)?;
            let lifecycle = &context.config.lifecycle;
            let mut kinds: Vec<&str> = lifecycle.kinds.iter().map(|k| k.as_str()).collect();
            kinds.sort_unstable();
            cluster["answered_by"] = json!(context.id);
            cluster["bus"] = json!({ "connected": context.bus.is_connected() });
            cluster["store"] = json!({ "ready": context.presence.is_ready().await });
            cluster["lifecycle"] = json!({ "webhooks": lifecycle.webhooks.len(), "types": kinds });
            Ok(cluster)
        }
        Query::DisconnectUser { user } => {
            names::check_name("user", &user)?;
            let connections = context
                .presence
                .connections_of(&user)
                .await
                .map_err(down)?
                .len();
            let control = serde_json::to_vec(&Control::DisconnectUser { user: user.clone() })
                .map_err(HeraldError::internal)?;
            context
                .bus
                .publish(subjects::CONTROL, Bytes::from(control))
                .await
                .map_err(|e| HeraldError::unavailable(e.to_string()))?;
            Ok(json!({ "user": user, "connections": connections }))
        }
    }
}
