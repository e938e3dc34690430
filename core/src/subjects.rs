//! Every bus subject and KV key Herald uses, built in one place.
//!
//! Subjects (all under `herald.`):
//! - `herald.cmd`: gateway → dispatcher requests (ident, join, leave, closed); queue group.
//! - `herald.heartbeat`: gateway → dispatcher liveness beats; queue group, served apart from
//!   `herald.cmd` so a storm of commands cannot delay them into a false "gateway lost".
//! - `herald.notify`: adapter → dispatcher notify requests; queue group.
//! - `herald.query`: REST → dispatcher presence queries and disconnects; queue group.
//! - `herald.history`: gateway or REST → dispatcher history reads; queue group.
//! - `herald.to.c.<channel>`, `herald.to.u.<user>`: dispatcher → the gateways holding a member
//!   of that channel or a connection of that user (they subscribe by interest), one message
//!   per event and target; `herald.to.all`: broadcasts, to every gateway.
//! - `herald.hist.c.<channel>`, `herald.hist.u.<user>`: the history kept per target (see
//!   [`crate::history`]).
//! - `herald.control`: dispatcher → every gateway, e.g. "disconnect user".
//! - `herald.gw.<gateway>.sse`: a gateway forwards an SSE POST to the gateway holding it.
//! - `herald.events.<type>`: lifecycle events for backends (see [`crate::lifecycle`]).
//!
//! KV keys (bucket `herald`): `gw.<gw>`, `conn.<gw>.<local>`, `user.<user>.<gw>.<local>`,
//! `chan.<channel>.<gw>.<local>`, where `<gw>-<local>` is the connection id. Putting the gateway
//! and connection last lets a dispatcher find everything a dead gateway held with wildcard
//! filters (`chan.*.<gw>.*`).

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
/// Adapter → dispatcher: up to 100 notify requests at once, published in order.
pub const NOTIFY_BATCH: &str = "herald.notify.batch";
/// Gateway → dispatcher: events clients published (checked against KV before they go out).
pub const PUBLISH: &str = "herald.publish";
/// Gateway → RPC backends on NATS: `herald.rpc.<method>`, answered by request/reply.
pub const RPC_PREFIX: &str = "herald.rpc.";
/// REST → dispatcher queries.
pub const QUERY: &str = "herald.query";
/// Gateway or REST → dispatcher: history reads only (so a gateway may read history without
/// being able to ask anything else of [`QUERY`]).
pub const HISTORY: &str = "herald.history";
/// Dispatcher → every gateway: broadcast events.
pub const DELIVER_BROADCAST: &str = "herald.to.all";
/// Every user's events: what a gateway subscribes to instead of one subject per user when
/// users are not routed by interest.
pub const DELIVER_ALL_USERS: &str = "herald.to.u.*";

/// Dispatcher → the gateways interested in `target`: its events.
pub fn deliver_to(target: &crate::history::Target) -> String {
    match target {
        crate::history::Target::Channel(name) => format!("herald.to.c.{}", key_token(name)),
        crate::history::Target::User(name) => format!("herald.to.u.{}", key_token(name)),
    }
}
/// Dispatcher → all gateways: control messages.
pub const CONTROL: &str = "herald.control";
/// The KV bucket holding presence state.
pub const KV_BUCKET: &str = "herald";
/// The KV bucket remembering spent one-time tokens (entries expire with the bucket's max age).
pub const ONCE_BUCKET: &str = "herald_once";

/// The subject a gateway listens on for SSE POSTs forwarded by other gateways.
pub fn gateway_sse(gateway: &str) -> String {
    format!("herald.gw.{gateway}.sse")
}

/// A connection's cluster-wide id: the gateway holding it and 128 random bits.
///
/// Written `<gateway>-<local>` on the wire (`<local>` in lowercase hex), so any gateway can
/// tell from the id alone which gateway holds a connection, while nobody can guess the id of
/// another connection from their own. Only letters, digits and `-`, so it fits in KV keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    /// The gateway id (lowercase letters and digits).
    pub gateway: String,
    /// The connection's id on that gateway: random, from a CSPRNG.
    pub local: u128,
}

impl ConnId {
    /// A fresh id on `gateway`, its local part drawn from the thread's CSPRNG (ChaCha seeded
    /// from the OS).
    pub fn random(gateway: &str) -> ConnId {
        ConnId {
            gateway: gateway.to_string(),
            local: rand::random(),
        }
    }

    /// Parses the wire form `<gateway>-<local>`; only the form [`ConnId`]'s `Display` writes
    /// (no leading zeros, lowercase hex) is accepted, so one connection has one spelling.
    pub fn parse(text: &str) -> Option<ConnId> {
        let (gateway, local) = text.split_once('-')?;
        if gateway.is_empty() || !gateway.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        Some(ConnId {
            gateway: gateway.to_string(),
            local: parse_local(local)?,
        })
    }
}

/// Parses the hex local part of a connection id, as `Display` writes it.
fn parse_local(text: &str) -> Option<u128> {
    let canonical = !text.is_empty()
        && text.len() <= 32
        && !text.starts_with('0')
        && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !canonical {
        return None;
    }
    u128::from_str_radix(text, 16).ok()
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:x}", self.gateway, self.local)
    }
}

/// KV key of a gateway's heartbeat record.
pub fn gateway_key(gateway: &str) -> String {
    format!("gw.{gateway}")
}

/// KV key of an identified connection (value: its user).
pub fn conn_key(conn: &ConnId) -> String {
    format!("conn.{}.{:x}", conn.gateway, conn.local)
}

/// The connection a `conn.` key is about.
pub fn parse_conn_key(key: &str) -> Option<ConnId> {
    let mut parts = key.split('.');
    if parts.next()? != "conn" {
        return None;
    }
    let gateway = parts.next()?.to_string();
    let local = parse_local(parts.next()?)?;
    parts.next().is_none().then_some(ConnId { gateway, local })
}

/// KV key saying `user` holds `conn`.
pub fn user_key(user: &str, conn: &ConnId) -> String {
    format!("user.{}.{}.{:x}", key_token(user), conn.gateway, conn.local)
}

/// KV key saying `conn` joined `channel` (value: the connection's user).
pub fn channel_key(channel: &str, conn: &ConnId) -> String {
    format!(
        "chan.{}.{}.{:x}",
        key_token(channel),
        conn.gateway,
        conn.local
    )
}

/// Filter matching every connection of `user`.
pub fn user_filter(user: &str) -> String {
    format!("user.{}.*.*", key_token(user))
}

/// Filter matching every member of `channel`.
pub fn channel_filter(channel: &str) -> String {
    format!("chan.{}.*.*", key_token(channel))
}

/// KV key of a Pusher presence channel's member on `conn` (value: the [`crate::pusher::Member`]).
pub fn member_key(channel: &str, conn: &ConnId) -> String {
    format!(
        "pmem.{}.{}.{:x}",
        key_token(channel),
        conn.gateway,
        conn.local
    )
}

/// KV key saying `user_id` is among the members of the Pusher presence `channel`: created by
/// the user's first connection there (whoever creates it announces the user), deleted with the
/// last. The user id (any text) is hashed into the key.
pub fn presence_user_key(channel: &str, user_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(user_id.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("puser.{}.{hex}", key_token(channel))
}

/// Filter matching every member of the Pusher presence `channel`.
pub fn member_filter(channel: &str) -> String {
    format!("pmem.{}.*.*", key_token(channel))
}

/// Filter matching every presence member on `gateway`'s connections.
pub fn gateway_members_filter(gateway: &str) -> String {
    format!("pmem.*.{gateway}.*")
}

/// Filter matching every channel `conn` joined.
pub fn connection_channels_filter(conn: &ConnId) -> String {
    format!("chan.*.{}.{:x}", conn.gateway, conn.local)
}

/// Filter matching every channel membership.
pub const ALL_CHANNELS_FILTER: &str = "chan.*.*.*";
/// Filter matching every user's connections.
pub const ALL_USERS_FILTER: &str = "user.*.*.*";

/// Prefix of the keys each running dispatcher refreshes.
pub const DISPATCHER_KEY_PREFIX: &str = "disp.";

/// Filter matching every dispatcher's key.
pub const ALL_DISPATCHERS_FILTER: &str = "disp.*";

/// The key dispatcher `id` refreshes while it runs.
pub fn dispatcher_key(id: &str) -> String {
    format!("{DISPATCHER_KEY_PREFIX}{id}")
}

/// Filter matching every gateway heartbeat.
pub const ALL_GATEWAYS_FILTER: &str = "gw.*";

/// Filters matching everything a gateway's connections left in KV.
pub fn gateway_filters(gateway: &str) -> [String; 3] {
    [
        format!("conn.{gateway}.*"),
        format!("user.*.{gateway}.*"),
        format!("chan.*.{gateway}.*"),
    ]
}

/// The parts of a `user.`, `chan.` or `pmem.` key: the decoded name and the connection.
pub fn parse_member_key(key: &str) -> Option<(String, ConnId)> {
    let mut parts = key.split('.');
    let _kind = parts.next()?;
    let name = key_token_decode(parts.next()?)?;
    let gateway = parts.next()?.to_string();
    let local = parse_local(parts.next()?)?;
    if parts.next().is_some() {
        return None;
    }
    Some((name, ConnId { gateway, local }))
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
            local: 0x42,
        };
        assert_eq!(id.to_string(), "ab12cd-42");
        assert_eq!(ConnId::parse("ab12cd-42"), Some(id));
        for bad in [
            "ab.cd-1", "-1", "ab-x", "ab-", "ab-042", "ab-4A", "ab-+4", "ab-1-2",
        ] {
            assert_eq!(ConnId::parse(bad), None, "{bad}");
        }
        assert_eq!(ConnId::parse(&format!("ab-{}", "f".repeat(33))), None);
    }

    #[test]
    fn random_ids_are_unguessable_and_fit_in_keys() {
        let ids: Vec<ConnId> = (0..100).map(|_| ConnId::random("gw1")).collect();
        let distinct: std::collections::HashSet<u128> = ids.iter().map(|id| id.local).collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids {
            assert_eq!(ConnId::parse(&id.to_string()).as_ref(), Some(id));
            assert_eq!(parse_conn_key(&conn_key(id)).as_ref(), Some(id));
            let key = user_key("a@b.c", id);
            assert!(key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'.')));
        }
        // Consecutive ids are not neighbours: an attacker's own id says nothing of the next.
        assert!(ids
            .windows(2)
            .all(|w| w[0].local.abs_diff(w[1].local) > 1 << 64));
    }

    #[test]
    fn member_keys_parse_back() {
        let conn = ConnId {
            gateway: "g1".into(),
            local: 7,
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
