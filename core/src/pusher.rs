//! The Pusher Channels protocol's shared facts: its apps, how their channels and sockets are
//! named inside Herald, the signatures that authorize them, and the frames its clients read.
//!
//! A Pusher app's channel `c` is the Herald channel `pusher:<app id>:<c escaped>`: apps never
//! share a channel, and native clients cannot join one without a token granting it (the
//! dispatcher treats the `pusher:` namespace like `private-`). A Pusher event travels as the
//! Herald event [`EVENT`] whose payload is an [`Envelope`]; any other Herald event sent to a
//! Pusher channel reaches Pusher clients under its own name with its payload as `data`.

use crate::subjects::ConnId;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;

/// One `[[pusher_app]]` table.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PusherApp {
    /// The app id of the HTTP API's paths (`/apps/{id}/…`).
    pub id: String,
    /// The public key clients connect with (`/app/{key}`).
    pub key: String,
    /// Signs channel authorizations and HTTP API calls; never sent anywhere.
    pub secret: String,
    /// Largest `data` of one event, in bytes (Pusher's default: 10 KB).
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
    /// Client events one connection may send per second.
    #[serde(default = "default_client_events_per_sec")]
    pub client_events_per_sec: u32,
    /// Where Pusher-format webhooks go (`channel_occupied`, `channel_vacated`, `member_added`,
    /// `member_removed`, `client_event`), signed with `secret`.
    #[serde(default)]
    pub webhook_url: Option<String>,
}

fn default_max_event_bytes() -> usize {
    10 * 1024
}

fn default_client_events_per_sec() -> u32 {
    10
}

impl std::fmt::Debug for PusherApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PusherApp")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The shortest app secret accepted.
pub const MIN_SECRET_BYTES: usize = 16;

impl PusherApp {
    /// Checks one table as configured; the message names the key to fix.
    pub fn check(&self) -> Result<(), String> {
        let plain = |s: &str| {
            (1..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !plain(&self.id) {
            return Err("`id` must be 1-64 letters, digits, `_` or `-`".into());
        }
        if !plain(&self.key) {
            return Err("`key` must be 1-64 letters, digits, `_` or `-`".into());
        }
        if self.secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "`secret` must be at least {MIN_SECRET_BYTES} bytes (`openssl rand -hex 16`)"
            ));
        }
        if !(1..=crate::defaults::MAX_PAYLOAD_BYTES).contains(&self.max_event_bytes) {
            return Err(format!(
                "`max_event_bytes` must be between 1 and {}",
                crate::defaults::MAX_PAYLOAD_BYTES
            ));
        }
        if self.client_events_per_sec == 0 {
            return Err("`client_events_per_sec` must be positive".into());
        }
        if let Some(url) = &self.webhook_url {
            crate::signature::check_endpoint(url, &self.secret)
                .map_err(|e| e.replace("`url`", "`webhook_url`"))?;
        }
        Ok(())
    }
}

/// The configured apps, found by key (clients) or id (the HTTP API).
#[derive(Clone, Debug, Default)]
pub struct PusherApps(Vec<Arc<PusherApp>>);

impl PusherApps {
    /// Checks every table and that no two share an id or key.
    pub fn new(apps: Vec<PusherApp>) -> Result<PusherApps, String> {
        for (n, app) in apps.iter().enumerate() {
            app.check()
                .map_err(|e| format!("[[pusher_app]] table {} ({:?}): {e}", n + 1, app.id))?;
            if apps[..n].iter().any(|a| a.id == app.id || a.key == app.key) {
                return Err(format!(
                    "[[pusher_app]] table {} ({:?}): another app has the same `id` or `key`",
                    n + 1,
                    app.id
                ));
            }
        }
        Ok(PusherApps(apps.into_iter().map(Arc::new).collect()))
    }

    /// The app clients connect to with `key`.
    pub fn by_key(&self, key: &str) -> Option<&Arc<PusherApp>> {
        self.0.iter().find(|app| app.key == key)
    }

    /// The app whose HTTP API lives under `/apps/{id}`.
    pub fn by_id(&self, id: &str) -> Option<&Arc<PusherApp>> {
        self.0.iter().find(|app| app.id == id)
    }

    /// Every app.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<PusherApp>> {
        self.0.iter()
    }

    /// Whether no app is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The Herald event name under which Pusher events travel.
pub const EVENT: &str = "pusher";

/// The namespace of Pusher channels among Herald channels.
pub const NAMESPACE: &str = "pusher:";

/// Longest Pusher channel name (Pusher's limit).
pub const MAX_CHANNEL_LEN: usize = 164;

/// Longest event name (Pusher's limit).
pub const MAX_EVENT_NAME_LEN: usize = 200;

/// The prefix of the channel a signed-in user's own events go to.
pub const USER_CHANNEL_PREFIX: &str = "#server-to-user-";

/// What a channel's name makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Anyone may subscribe.
    Public,
    /// `private-`: subscribing takes an authorization signed by the backend.
    Private,
    /// `private-encrypted-`: as private; the payloads are encrypted end to end by the backend.
    Encrypted,
    /// `presence-`: authorized, and members know each other.
    Presence,
    /// `#server-to-user-<id>`: a signed-in user's own events; nobody subscribes to it.
    User,
}

impl ChannelKind {
    /// The kind of `channel`.
    pub fn of(channel: &str) -> ChannelKind {
        if channel.starts_with("private-encrypted-") {
            ChannelKind::Encrypted
        } else if channel.starts_with("private-") {
            ChannelKind::Private
        } else if channel.starts_with("presence-") {
            ChannelKind::Presence
        } else if channel.starts_with('#') {
            ChannelKind::User
        } else {
            ChannelKind::Public
        }
    }

    /// Whether subscribing needs an authorization.
    pub fn needs_auth(self) -> bool {
        !matches!(self, ChannelKind::Public)
    }

    /// Whether members may send each other `client-` events (Pusher: private and presence
    /// channels, not encrypted ones, whose payloads the server cannot check).
    pub fn allows_client_events(self) -> bool {
        matches!(self, ChannelKind::Private | ChannelKind::Presence)
    }
}

/// Whether `channel` is a cache channel (`cache-`, `private-cache-`,
/// `private-encrypted-cache-`, `presence-cache-`): a subscriber first gets its last event, or
/// `pusher:cache_miss`.
pub fn is_cache(channel: &str) -> bool {
    [
        "cache-",
        "private-cache-",
        "private-encrypted-cache-",
        "presence-cache-",
    ]
    .iter()
    .any(|prefix| channel.starts_with(prefix))
}

/// Whether `channel` is a Pusher channel name: 1–164 of `A-Za-z0-9_-=@,.;`, or a user channel.
pub fn is_valid_channel(channel: &str) -> bool {
    let body = channel.strip_prefix(USER_CHANNEL_PREFIX).unwrap_or(channel);
    !body.is_empty()
        && channel.len() <= MAX_CHANNEL_LEN
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'=' | b'@' | b',' | b'.' | b';')
        })
}

/// The Herald channel of `app`'s `channel`, or why there is none.
///
/// The characters a Pusher name may have that a Herald name may not (`=`, `,`, `;`, `#`), and
/// the escape `@` itself, are written `@XX` (hex); the mapping is reversible.
pub fn herald_channel(app: &str, channel: &str) -> Result<String, String> {
    if !is_valid_channel(channel) {
        return Err(format!(
            "invalid channel name {:?}: use 1-{MAX_CHANNEL_LEN} characters of letters, digits \
             and _-=@,.;",
            crate::protocol::excerpt(channel)
        ));
    }
    let mut name = format!("{NAMESPACE}{app}:");
    for b in channel.bytes() {
        match b {
            b'=' | b',' | b';' | b'#' | b'@' => name.push_str(&format!("@{b:02X}")),
            _ => name.push(b as char),
        }
    }
    if name.len() > crate::names::MAX_NAME_LEN {
        return Err(format!(
            "channel name {:?} is too long for this server: with its app it must fit in {} \
             characters",
            crate::protocol::excerpt(channel),
            crate::names::MAX_NAME_LEN
        ));
    }
    Ok(name)
}

/// The app and Pusher channel a Herald channel stands for; `None` for native channels.
pub fn pusher_channel(herald: &str) -> Option<(&str, String)> {
    let rest = herald.strip_prefix(NAMESPACE)?;
    let (app, escaped) = rest.split_once(':')?;
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'@' {
            out.push(u8::from_str_radix(escaped.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some((app, String::from_utf8(out).ok()?))
}

/// The `socket_id` of a connection: `<gateway>.<local>` in decimal, the only form Pusher's
/// SDKs accept (`\d+\.\d+`). The gateway id (base 36) is read behind a leading `1` so that its
/// leading zeros survive; [`conn_of_socket`] reverses it.
pub fn socket_id(conn: &ConnId) -> String {
    let gateway = u64::from_str_radix(&format!("1{}", conn.gateway), 36).unwrap_or(0);
    format!("{gateway}.{}", conn.local)
}

/// The connection a `socket_id` names, if it is one [`socket_id`] wrote.
pub fn conn_of_socket(socket_id: &str) -> Option<ConnId> {
    let (gateway, local) = socket_id.split_once('.')?;
    if !gateway.bytes().all(|b| b.is_ascii_digit()) || !local.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut number: u64 = gateway.parse().ok()?;
    let mut digits = Vec::new();
    while number > 0 {
        let d = (number % 36) as u32;
        digits.push(std::char::from_digit(d, 36)?);
        number /= 36;
    }
    if digits.pop() != Some('1') {
        return None;
    }
    let gateway: String = digits.into_iter().rev().collect();
    if gateway.is_empty() {
        return None;
    }
    Some(ConnId {
        gateway,
        local: local.parse().ok()?,
    })
}

/// The Herald user a signed-in Pusher user of `app` goes by, which `terminate_connections`
/// disconnects.
pub fn user_name(app: &str, id: &str) -> String {
    format!("{NAMESPACE}{app}:{id}")
}

/// HMAC-SHA256 of `text` under `secret`, in lowercase hex: how Pusher signs everything.
pub fn sign(secret: &str, text: &str) -> String {
    crate::signature::hmac_sha256_hex(secret.as_bytes(), text.as_bytes())
}

/// Whether `signature` is [`sign`] of `text`, compared in constant time.
pub fn verify(secret: &str, text: &str, signature: &str) -> bool {
    use subtle::ConstantTimeEq;
    sign(secret, text)
        .as_bytes()
        .ct_eq(signature.as_bytes())
        .into()
}

/// Whether `auth` (`<key>:<signature>`) authorizes `text` for `app`.
pub fn authorizes(app: &PusherApp, auth: &str, text: &str) -> bool {
    match auth.split_once(':') {
        Some((key, signature)) => key == app.key && verify(&app.secret, text, signature),
        None => false,
    }
}

/// The payload of a Herald [`EVENT`]: one Pusher event.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<'a> {
    /// The Pusher event name.
    pub name: std::borrow::Cow<'a, str>,
    /// Its data as the sender gave it: a string from the HTTP API, any JSON from a client.
    #[serde(borrow)]
    pub data: &'a RawValue,
    /// A client event's sender on a presence channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<std::borrow::Cow<'a, str>>,
}

/// A Pusher frame, as clients read it: `{"event","channel","data"[,"user_id"]}`.
#[derive(Serialize)]
pub struct Frame<'a> {
    /// The event name.
    pub event: &'a str,
    /// The channel, when the event is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'a str>,
    /// The data.
    pub data: &'a RawValue,
    /// A client event's sender on a presence channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
}

impl Frame<'_> {
    /// The frame as JSON text.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// JSON text of a string: how Pusher sends structured `data` (a string holding JSON).
pub fn json_string(value: &str) -> Box<RawValue> {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_string());
    RawValue::from_string(text).unwrap_or_else(|_| unreachable!("a JSON string is valid JSON"))
}

/// The frame a Pusher client gets for a Herald event on `channel` (a Pusher name): an
/// [`EVENT`] unwrapped, any other event under its own name with its payload as a JSON string.
pub fn event_frame(channel: &str, event: &str, payload: &RawValue) -> String {
    if event == EVENT {
        if let Ok(envelope) = serde_json::from_str::<Envelope>(payload.get()) {
            return Frame {
                event: &envelope.name,
                channel: Some(channel),
                data: envelope.data,
                user_id: envelope.user_id.as_deref(),
            }
            .encode();
        }
    }
    let data = json_string(payload.get());
    Frame {
        event,
        channel: Some(channel),
        data: &data,
        user_id: None,
    }
    .encode()
}

/// A member of a presence channel, as its authorization's `channel_data` names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The user id.
    pub user_id: String,
    /// What the backend tells the other members about the user.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub user_info: serde_json::Value,
}

/// The events a dispatcher sends presence channels' members.
pub mod members {
    /// A user's first connection subscribed (data: `{"user_id","user_info"}`).
    pub const ADDED: &str = "pusher_internal:member_added";
    /// A user's last connection left (data: `{"user_id"}`).
    pub const REMOVED: &str = "pusher_internal:member_removed";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_map_both_ways_and_keep_apps_apart() {
        for channel in ["chat", "presence-room.1", "a=b,c;d@e", "#server-to-user-42"] {
            let herald = herald_channel("123", channel).unwrap();
            assert!(crate::names::is_valid_name(&herald), "{herald}");
            assert_eq!(pusher_channel(&herald), Some(("123", channel.to_string())));
        }
        assert_ne!(
            herald_channel("1", "chat").unwrap(),
            herald_channel("2", "chat").unwrap()
        );
        assert_eq!(pusher_channel("chat"), None);
        assert!(herald_channel("1", "no spaces").is_err());
        assert!(herald_channel("1", "").is_err());
        assert!(herald_channel("1", "#server-to-user-").is_err());
        assert!(herald_channel("1", &"x".repeat(120))
            .unwrap_err()
            .contains("too long"));
    }

    #[test]
    fn apps_are_checked_and_must_differ() {
        let app = |id: &str, key: &str| PusherApp {
            id: id.into(),
            key: key.into(),
            secret: "0123456789abcdef".into(),
            max_event_bytes: 10240,
            client_events_per_sec: 10,
            webhook_url: None,
        };
        let apps = PusherApps::new(vec![app("1", "a"), app("2", "b")]).unwrap();
        assert_eq!(apps.by_key("b").map(|a| a.id.as_str()), Some("2"));
        assert!(PusherApps::new(vec![app("1", "a"), app("2", "a")])
            .unwrap_err()
            .contains("same `id` or `key`"));
        let weak = PusherApp {
            secret: "short".into(),
            ..app("1", "a")
        };
        assert!(weak.check().unwrap_err().contains("secret"));
        let bad_hook = PusherApp {
            webhook_url: Some("ftp://x".into()),
            ..app("1", "a")
        };
        assert!(bad_hook.check().unwrap_err().contains("webhook_url"));
        assert!(!format!("{:?}", app("1", "a")).contains("0123456789abcdef"));
    }

    #[test]
    fn socket_ids_have_pushers_form_and_name_their_connection() {
        for gateway in ["0abcdefghz", "zzzzzzzzzz", "g1"] {
            let conn = ConnId::random(gateway);
            let socket = socket_id(&conn);
            let (a, b) = socket.split_once('.').unwrap();
            assert!(a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()));
            assert_eq!(conn_of_socket(&socket), Some(conn));
        }
        for bad in ["", "1", "1.x", "a.1", "1.2.3", "0.1"] {
            assert_eq!(conn_of_socket(bad), None, "{bad}");
        }
    }

    #[test]
    fn signatures_match_pushers_documented_example() {
        // From Pusher's "Authenticating users" documentation.
        let app = PusherApp {
            id: "1".into(),
            key: "278d425bdf160c739803".into(),
            secret: "7ad3773142a6692b25b8".into(),
            max_event_bytes: 10240,
            client_events_per_sec: 10,
            webhook_url: None,
        };
        let text = "1234.1234:private-foobar";
        let expected = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
        assert_eq!(sign(&app.secret, text), expected);
        assert!(authorizes(&app, &format!("{}:{expected}", app.key), text));
        assert!(!authorizes(&app, &format!("other:{expected}"), text));
        assert!(!authorizes(&app, expected, text));
    }

    #[test]
    fn events_render_as_pusher_frames() {
        let payload =
            RawValue::from_string(r#"{"name":"App\\Events\\Shipped","data":"{\"id\":1}"}"#.into())
                .unwrap();
        assert_eq!(
            event_frame("orders", EVENT, &payload),
            r#"{"event":"App\\Events\\Shipped","channel":"orders","data":"{\"id\":1}"}"#
        );
        let native = RawValue::from_string(r#"{"n":1}"#.into()).unwrap();
        assert_eq!(
            event_frame("orders", "NEWS", &native),
            r#"{"event":"NEWS","channel":"orders","data":"{\"n\":1}"}"#
        );
    }
}
