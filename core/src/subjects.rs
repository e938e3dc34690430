//! Every bus subject and KV key Herald uses, built in one place.
//!
//! Subjects (all under `herald.`):
//! - `herald.cmd`: gateway → dispatcher requests (ident, join, leave, closed); queue group.
//! - `herald.heartbeat`: gateway → dispatcher liveness beats; queue group, served apart from
//!   `herald.cmd` so a storm of commands cannot delay them into a false "gateway lost".
//! - `herald.notify`: adapter → dispatcher notify requests; queue group.
//! - `herald.query`: REST → dispatcher presence queries and disconnects; queue group.
//! - `herald.deliver`: dispatcher → every gateway, one message per event.
//! - `herald.control`: dispatcher → every gateway, e.g. "disconnect user".
//! - `herald.gw.<gateway>.sse`: a gateway forwards an SSE POST to the gateway holding it.
//! - `herald.presence`: announcements that connections went away.
//!
//! KV keys (bucket `herald`): `gw.<gw>`, `conn.<gw>.<seq>`, `user.<user>.<gw>.<seq>`,
//! `chan.<channel>.<gw>.<seq>`. Putting the gateway and sequence last lets a dispatcher find
//! everything a dead gateway held with wildcard filters (`chan.*.<gw>.*`).

use crate::names::{key_token, key_token_decode};
use std::fmt;

/// Queue group shared by every dispatcher: NATS hands each request to one of them.
pub const DISPATCHER_QUEUE: &str = "herald-dispatchers";
/// Gateway → dispatcher commands.
pub const CMD: &str = "herald.cmd";
/// Gateway → dispatcher heartbeats (a [`crate::messages::GatewayCommand::Heartbeat`]).
pub const HEARTBEAT: &str = "herald.heartbeat";
/// Adapter → dispatcher notify requests.
pub const NOTIFY: &str = "herald.notify";
/// REST → dispatcher queries.
pub const QUERY: &str = "herald.query";
/// Dispatcher → all gateways: events to deliver.
pub const DELIVER: &str = "herald.deliver";
/// Dispatcher → all gateways: control messages.
pub const CONTROL: &str = "herald.control";
/// Connection-gone announcements.
pub const PRESENCE: &str = "herald.presence";
/// The KV bucket holding presence state.
pub const KV_BUCKET: &str = "herald";
/// The KV bucket remembering spent one-time tokens (entries expire with the bucket's max age).
pub const ONCE_BUCKET: &str = "herald_once";

/// The subject a gateway listens on for SSE POSTs forwarded by other gateways.
pub fn gateway_sse(gateway: &str) -> String {
    format!("herald.gw.{gateway}.sse")
}

/// A connection's cluster-wide id: the gateway holding it and a sequence number on that gateway.
///
/// Written `<gateway>-<seq>` on the wire, so any gateway can tell from the id alone which
/// gateway holds a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    /// The gateway id (lowercase letters and digits).
    pub gateway: String,
    /// Sequence number on that gateway.
    pub seq: u64,
}

impl ConnId {
    /// Parses the wire form `<gateway>-<seq>`.
    pub fn parse(text: &str) -> Option<ConnId> {
        let (gateway, seq) = text.rsplit_once('-')?;
        if gateway.is_empty() || !gateway.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        Some(ConnId {
            gateway: gateway.to_string(),
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.gateway, self.seq)
    }
}

/// KV key of a gateway's heartbeat record.
pub fn gateway_key(gateway: &str) -> String {
    format!("gw.{gateway}")
}

/// KV key of an identified connection (value: its user).
pub fn conn_key(conn: &ConnId) -> String {
    format!("conn.{}.{}", conn.gateway, conn.seq)
}

/// KV key saying `user` holds `conn`.
pub fn user_key(user: &str, conn: &ConnId) -> String {
    format!("user.{}.{}.{}", key_token(user), conn.gateway, conn.seq)
}

/// KV key saying `conn` joined `channel` (value: the connection's user).
pub fn channel_key(channel: &str, conn: &ConnId) -> String {
    format!("chan.{}.{}.{}", key_token(channel), conn.gateway, conn.seq)
}

/// Filter matching every connection of `user`.
pub fn user_filter(user: &str) -> String {
    format!("user.{}.*.*", key_token(user))
}

/// Filter matching every member of `channel`.
pub fn channel_filter(channel: &str) -> String {
    format!("chan.{}.*.*", key_token(channel))
}

/// Filter matching every channel membership.
pub const ALL_CHANNELS_FILTER: &str = "chan.*.*.*";
/// Filter matching every gateway heartbeat.
pub const ALL_GATEWAYS_FILTER: &str = "gw.*";

/// KV key every dispatcher writes before judging heartbeats: a failed write means heartbeats
/// may be failing too, so their silence says nothing.
pub const LIVENESS_PROBE_KEY: &str = "probe.liveness";

/// Filters matching everything a gateway's connections left in KV.
pub fn gateway_filters(gateway: &str) -> [String; 3] {
    [
        format!("conn.{gateway}.*"),
        format!("user.*.{gateway}.*"),
        format!("chan.*.{gateway}.*"),
    ]
}

/// The parts of a `user.` or `chan.` key: the decoded name and the connection.
pub fn parse_member_key(key: &str) -> Option<(String, ConnId)> {
    let mut parts = key.split('.');
    let _kind = parts.next()?;
    let name = key_token_decode(parts.next()?)?;
    let gateway = parts.next()?.to_string();
    let seq = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((name, ConnId { gateway, seq }))
}

/// The gateway id of a `gw.` key.
pub fn parse_gateway_key(key: &str) -> Option<&str> {
    key.strip_prefix("gw.")
}

/// Whether a NATS-style `filter` (tokens separated by `.`, `*` one token, `>` the rest)
/// matches `subject`. The memory bus and memory KV use it, so both seams match like NATS.
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_ids_round_trip() {
        let id = ConnId {
            gateway: "ab12cd".into(),
            seq: 42,
        };
        assert_eq!(id.to_string(), "ab12cd-42");
        assert_eq!(ConnId::parse("ab12cd-42"), Some(id));
        assert_eq!(ConnId::parse("ab.cd-1"), None);
        assert_eq!(ConnId::parse("-1"), None);
        assert_eq!(ConnId::parse("ab-x"), None);
    }

    #[test]
    fn member_keys_parse_back() {
        let conn = ConnId {
            gateway: "g1".into(),
            seq: 7,
        };
        let key = channel_key("room.a@b", &conn);
        assert_eq!(parse_member_key(&key), Some(("room.a@b".to_string(), conn)));
    }

    #[test]
    fn filters_match_like_nats() {
        assert!(subject_matches("chan.*.*.*", "chan.a.g.1"));
        assert!(!subject_matches("chan.*.*.*", "chan.a.g"));
        assert!(subject_matches("herald.>", "herald.a.b"));
        assert!(!subject_matches("herald.>", "herald"));
        assert!(subject_matches("user.*.g1.*", "user.bob.g1.3"));
        assert!(!subject_matches("user.*.g1.*", "user.bob.g2.3"));
        assert!(subject_matches("herald.cmd", "herald.cmd"));
    }
}
