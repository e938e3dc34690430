//! What each presence change means for backends: the lifecycle events it makes (a `join` that
//! was a channel's first member is also `occupied`, …), appended to the event log.
//!
//! `online` / `offline` and `occupied` / `vacated` are decided by counting in KV right after
//! the change. Two changes of one user (or channel) at the same instant on two dispatchers can
//! both count the other's change: then both, or neither, report the transition. Backends that
//! need the exact state at a given moment ask `GET /v1/presence`.

use crate::presence::LostConnection;
use crate::webhooks::WebhookConfig;
use crate::Context;
use herald_core::event_log::{EventLog, MemoryEventLog};
use herald_core::lifecycle::{Kind, LifecycleEvent};
use std::collections::HashSet;
use std::sync::Arc;

/// Which lifecycle events a dispatcher makes, where it keeps them, and the webhooks that read
/// them. Events nobody wants are not made: counting a channel's members on every join and
/// leave costs a KV listing.
#[derive(Clone)]
pub struct Lifecycle {
    /// Where events are appended (and, on NATS, published on `herald.events.<type>`).
    pub log: Arc<dyn EventLog>,
    /// The kinds to make.
    pub kinds: HashSet<Kind>,
    /// The webhooks this dispatcher delivers to.
    pub webhooks: Vec<WebhookConfig>,
}

impl Lifecycle {
    /// No lifecycle events at all.
    pub fn off() -> Self {
        Lifecycle {
            log: Arc::new(MemoryEventLog::new()),
            kinds: HashSet::new(),
            webhooks: Vec::new(),
        }
    }

    /// Events on `log` for `webhooks`, and every kind when `all` (for backends that read
    /// `herald.events.*` on NATS themselves).
    pub fn new(log: Arc<dyn EventLog>, webhooks: Vec<WebhookConfig>, all: bool) -> Self {
        let kinds = if all {
            Kind::ALL.into_iter().collect()
        } else {
            webhooks.iter().flat_map(WebhookConfig::kinds).collect()
        };
        Lifecycle {
            log,
            kinds,
            webhooks,
        }
    }

    fn wants(&self, kind: Kind) -> bool {
        self.kinds.contains(&kind)
    }
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("kinds", &self.kinds)
            .field("webhooks", &self.webhooks.len())
            .finish()
    }
}

/// A connection identified as `user`: `connect`, and `online` if it is the user's first.
pub(crate) async fn identified(context: &Context, conn: &str, user: &str) {
    // Once per connection: an ident sent again after a lost answer reports under the same id.
    let connect = LifecycleEvent::with_id(Kind::Connect, format!("connect-{conn}"))
        .user(user)
        .conn(conn);
    append(context, connect).await;
    if wants(context, Kind::Online) && user_connections(context, user).await == Some(1) {
        append(context, LifecycleEvent::new(Kind::Online).user(user)).await;
    }
}

/// A connection joined `channel`: `join`, and `occupied` if it is the channel's first member.
pub(crate) async fn joined(context: &Context, conn: &str, user: &str, channel: &str) {
    let join = LifecycleEvent::new(Kind::Join)
        .user(user)
        .conn(conn)
        .channel(channel);
    append(context, join).await;
    if wants(context, Kind::Occupied) && members(context, channel).await == Some(1) {
        append(
            context,
            LifecycleEvent::new(Kind::Occupied).channel(channel),
        )
        .await;
    }
}

/// A connection left `channel`: `leave`, and `vacated` if it was the last member.
pub(crate) async fn left(context: &Context, conn: &str, user: &str, channel: &str) {
    let leave = LifecycleEvent::new(Kind::Leave)
        .user(user)
        .conn(conn)
        .channel(channel);
    append(context, leave).await;
    vacated_if_empty(context, channel).await;
}

/// An identified connection went away: `disconnect`, then `vacated` for each channel it left
/// empty and `offline` if it was the user's last connection.
pub(crate) async fn disconnected(
    context: &Context,
    conn: &str,
    user: &str,
    channels: &[String],
    reason: &str,
) {
    let mut disconnect = LifecycleEvent::with_id(Kind::Disconnect, format!("disconnect-{conn}"))
        .user(user)
        .conn(conn);
    disconnect.reason = Some(reason.to_string());
    append(context, disconnect).await;
    for channel in channels {
        vacated_if_empty(context, channel).await;
    }
    if wants(context, Kind::Offline) && user_connections(context, user).await == Some(0) {
        append(context, LifecycleEvent::new(Kind::Offline).user(user)).await;
    }
}

/// A gateway stopped heartbeating and its connections were removed: `gateway_lost` listing
/// them, then what each one's going away means.
pub(crate) async fn gateway_lost(context: &Context, gateway: &str, lost: &[LostConnection]) {
    let mut event = LifecycleEvent::with_id(Kind::GatewayLost, format!("gateway_lost-{gateway}"));
    event.gateway = Some(gateway.to_string());
    event.conns = Some(lost.iter().map(|l| l.conn.to_string()).collect());
    append(context, event).await;
    for connection in lost {
        let conn = connection.conn.to_string();
        disconnected(
            context,
            &conn,
            &connection.user,
            &connection.channels,
            "gateway_lost",
        )
        .await;
    }
}

/// A Pusher presence channel gained (`MemberAdded`) or lost (`MemberRemoved`) a user.
pub(crate) async fn member(context: &Context, kind: Kind, channel: &str, user_id: &str) {
    append(
        context,
        LifecycleEvent::new(kind).channel(channel).user(user_id),
    )
    .await;
}

/// A Pusher client sent `event` with `data` on `channel` from `conn` (as `user_id` on a
/// presence channel).
pub(crate) async fn client_event(
    context: &Context,
    (channel, conn): (&str, &str),
    event: &str,
    data: serde_json::Value,
    user_id: Option<&str>,
) {
    let mut client_event = LifecycleEvent::new(Kind::ClientEvent)
        .channel(channel)
        .conn(conn);
    client_event.user = user_id.map(str::to_string);
    client_event.event = Some(event.to_string());
    client_event.data = Some(data);
    append(context, client_event).await;
}

async fn vacated_if_empty(context: &Context, channel: &str) {
    if wants(context, Kind::Vacated) && members(context, channel).await == Some(0) {
        append(context, LifecycleEvent::new(Kind::Vacated).channel(channel)).await;
    }
}

async fn user_connections(context: &Context, user: &str) -> Option<usize> {
    match context.presence.connections_of(user).await {
        Ok(conns) => Some(conns.len()),
        Err(e) => {
            tracing::warn!(%user, error = %e, "cannot count a user's connections: no online/offline event");
            None
        }
    }
}

async fn members(context: &Context, channel: &str) -> Option<usize> {
    match context.presence.member_count(channel).await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(%channel, error = %e, "cannot count a channel's members: no occupied/vacated event");
            None
        }
    }
}

fn wants(context: &Context, kind: Kind) -> bool {
    context.config.lifecycle.wants(kind)
}

async fn append(context: &Context, event: LifecycleEvent) {
    if !wants(context, event.kind) {
        return;
    }
    match context.config.lifecycle.log.append(&event).await {
        Ok(()) => context.lifecycle_events.inc(),
        Err(e) => {
            context.lifecycle_failed.inc();
            tracing::error!(kind = event.kind.as_str(), id = %event.id, error = %e, "a lifecycle event could not be stored; webhooks will miss it");
        }
    }
}
