//! Lifecycle events for backends: who connected, joined, left, went away; which users came
//! online or went offline and which channels were occupied or vacated; which gateway was lost.

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A connection identified (its `ident` succeeded).
    Connect,
    /// An identified connection went away (`reason` says why).
    Disconnect,
    /// A connection joined a channel.
    Join,
    /// A connection left a channel (not when it disconnected: see `disconnect`).
    Leave,
    /// A user's first connection, cluster-wide.
    Online,
    /// A user's last connection went away.
    Offline,
    /// A channel's first member connection joined.
    Occupied,
    /// A channel's last member connection left or went away.
    Vacated,
    /// A gateway stopped heartbeating; its connections (`conns`) are gone.
    GatewayLost,
    /// A user's first connection subscribed to a Pusher presence channel.
    MemberAdded,
    /// A user's last connection left a Pusher presence channel.
    MemberRemoved,
    /// A Pusher client sent a `client-` event (`event`, `data`).
    ClientEvent,
}

impl Kind {
    /// Every kind, in documentation order.
    pub const ALL: [Kind; 12] = [
        Kind::Connect,
        Kind::Disconnect,
        Kind::Join,
        Kind::Leave,
        Kind::Online,
        Kind::Offline,
        Kind::Occupied,
        Kind::Vacated,
        Kind::GatewayLost,
        Kind::MemberAdded,
        Kind::MemberRemoved,
        Kind::ClientEvent,
    ];

    /// The name on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Connect => "connect",
            Kind::Disconnect => "disconnect",
            Kind::Join => "join",
            Kind::Leave => "leave",
            Kind::Online => "online",
            Kind::Offline => "offline",
            Kind::Occupied => "occupied",
            Kind::Vacated => "vacated",
            Kind::GatewayLost => "gateway_lost",
            Kind::MemberAdded => "member_added",
            Kind::MemberRemoved => "member_removed",
            Kind::ClientEvent => "client_event",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The bus subject events of this kind are published on: `herald.events.<kind>`.
    pub fn subject(self) -> String {
        format!("{}{}", SUBJECT_PREFIX, self.as_str())
    }
}

/// Prefix of every lifecycle subject.
pub const SUBJECT_PREFIX: &str = "herald.events.";

/// One lifecycle event, as backends receive it; fields that do not apply are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// Unique per event; the same event delivered twice carries the same id, so a backend can
    /// drop the copy.
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// When a dispatcher saw it, ms since the Unix epoch.
    pub time_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Why a connection went away (`disconnect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The gateway that was lost (`gateway_lost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The connections it held (`gateway_lost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conns: Option<Vec<String>>,
    /// The client event's name (`client_event`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The client event's data, as the client sent it (`client_event`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl LifecycleEvent {
    /// An event of `kind` happening now, with a fresh random id.
    pub fn new(kind: Kind) -> LifecycleEvent {
        LifecycleEvent::with_id(kind, format!("{:032x}", rand::random::<u128>()))
    }

    /// An event of `kind` happening now under `id`: for events that happen once per thing
    /// (a connection's `disconnect`, a gateway's loss), so that two dispatchers reporting the
    /// same thing report it under one id.
    pub fn with_id(kind: Kind, id: String) -> LifecycleEvent {
        LifecycleEvent {
            id,
            kind,
            time_ms: crate::messages::Delivery::now_ms(),
            user: None,
            conn: None,
            channel: None,
            reason: None,
            gateway: None,
            conns: None,
            event: None,
            data: None,
        }
    }

    /// Sets the user.
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_string());
        self
    }

    /// Sets the connection.
    pub fn conn(mut self, conn: &str) -> Self {
        self.conn = Some(conn.to_string());
        self
    }

    /// Sets the channel.
    pub fn channel(mut self, channel: &str) -> Self {
        self.channel = Some(channel.to_string());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_encode_with_only_the_fields_that_apply() {
        let mut event = LifecycleEvent::with_id(Kind::Join, "e1".into())
            .user("alice")
            .conn("g-1")
            .channel("chat");
        event.time_ms = 7;
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"id":"e1","type":"join","time_ms":7,"user":"alice","conn":"g-1","channel":"chat"}"#
        );
        assert_eq!(Kind::GatewayLost.subject(), "herald.events.gateway_lost");
        assert_eq!(Kind::parse("vacated"), Some(Kind::Vacated));
        assert_eq!(Kind::parse("nope"), None);
    }
}
