//! What Herald's roles say to each other over the bus: commands, deliveries, queries, control.

use crate::history::Target;
use crate::protocol::client_frames::IdentAuth;
use crate::protocol::notify::Targets;
use crate::protocol::Positions;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Gateway → dispatcher, on [`crate::subjects::CMD`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum GatewayCommand {
    /// Authenticate `conn`; on success the dispatcher records it in KV.
    Ident {
        /// The connection id.
        conn: String,
        /// The credentials the client sent.
        auth: IdentAuth,
    },
    /// `conn` (identified as `user`, holding `grants`) wants to join `channel`.
    Join {
        /// The connection id.
        conn: String,
        /// The connection's user.
        user: String,
        /// Channel patterns the user's token granted.
        grants: Vec<String>,
        /// The channel.
        channel: String,
        /// On a Pusher presence channel: who the connection is among its members.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member: Option<crate::pusher::Member>,
    },
    /// `conn` leaves `channel`.
    Leave {
        /// The connection id.
        conn: String,
        /// The connection's user.
        user: String,
        /// The channel.
        channel: String,
    },
    /// `conn` went away; remove what it left in KV. Idempotent: a gateway sends it again when
    /// it got no answer.
    Closed {
        /// The connection id.
        conn: String,
        /// The connection's user; `None` when the gateway does not know whether an ident went
        /// through (it timed out), so the dispatcher looks the connection up.
        #[serde(default)]
        user: Option<String>,
        /// Channels it had joined, and channels whose join timed out (they may be in KV).
        channels: Vec<String>,
        /// Why it closed (for the presence announcement).
        reason: String,
    },
    /// The gateway is alive; `beat` grows by one each time.
    Heartbeat {
        /// The gateway id.
        gateway: String,
        /// Heartbeat counter.
        beat: u64,
        /// Connections open on the gateway, for the cluster view.
        #[serde(default)]
        connections: u64,
        /// The gateway's public URL (`--public-url`), for the admin console's live tail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
    /// The gateway is shutting down: forget every connection it held.
    Stopped {
        /// The gateway id.
        gateway: String,
    },
}

impl GatewayCommand {
    /// Whether sending the command again, after an answer was lost, does no harm: everything
    /// but a heartbeat (the next beat replaces it). A one-time token's ident is repeatable
    /// too, because the dispatcher remembers which connection spent it.
    pub fn may_repeat(&self) -> bool {
        !matches!(self, GatewayCommand::Heartbeat { .. })
    }
}

/// Dispatcher → gateway: what a [`GatewayCommand`] achieved (a refusal travels as the
/// request layer's [`crate::requests::Reply::Failed`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CommandReply {
    /// Ident succeeded.
    Identified {
        /// The user the credentials name.
        user: String,
        /// Channel patterns the user may join beyond public channels.
        grants: Vec<String>,
        /// Channel patterns the user's token lets it publish to (its `publish` claim).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        publish: Vec<String>,
    },
    /// Join, leave or closed succeeded.
    Done,
    /// A join of a Pusher presence channel succeeded: its members now, each user once.
    Members {
        /// The members.
        members: Vec<crate::pusher::Member>,
    },
}

/// Adapter → dispatcher, on [`crate::subjects::NOTIFY`]: an event under an id the adapter
/// chose, so that a request sent again after a lost answer publishes the same id and gateways
/// drop the second copy.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyRequest<N = crate::protocol::notify::Notify> {
    /// The event id (see [`EventIds`]).
    pub id: String,
    /// The notify body.
    pub notify: N,
    /// Set when a client published it: the publisher, which receivers see and whose own
    /// connection does not get the event back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Publisher>,
    /// A connection not to deliver the event to (Pusher's `socket_id` of the sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<String>,
}

/// Adapter → dispatcher, on [`crate::subjects::NOTIFY_BATCH`]: several events, published in
/// this order; answered with one [`crate::requests::Reply`] per item.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyBatchRequest<N = crate::protocol::notify::Notify> {
    /// The events, each under the id the adapter chose.
    pub items: Vec<NotifyRequest<N>>,
}

/// Most events one batch carries.
pub const MAX_BATCH_ITEMS: usize = 100;

/// The connection a client-published event came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publisher {
    /// Its user, shown to receivers as `"from":{"user":…}`.
    pub user: String,
    /// Its connection id, which is not sent the event.
    pub conn: String,
}

/// Event ids: unique across processes (random prefix), sortable within one (counter).
#[derive(Debug)]
pub struct EventIds {
    prefix: String,
    counter: std::sync::atomic::AtomicU64,
}

impl EventIds {
    /// A generator with a fresh random prefix.
    pub fn new() -> Self {
        EventIds {
            prefix: format!("{:016x}", rand::random::<u64>()),
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The next id.
    pub fn next(&self) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{n}", self.prefix)
    }

    /// The next id of this process's own generator.
    pub fn fresh() -> String {
        static PROCESS: std::sync::LazyLock<EventIds> = std::sync::LazyLock::new(EventIds::new);
        PROCESS.next()
    }

    /// Whether `id` has the shape of an event id (what a dispatcher accepts from the bus).
    pub fn is_valid(id: &str) -> bool {
        (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }
}

impl Default for EventIds {
    fn default() -> Self {
        EventIds::new()
    }
}

/// Dispatcher → adapter: a notify request was published to the gateways.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventAccepted {
    /// The event id.
    pub id: String,
}

/// Dispatcher → the gateways holding its targets ([`crate::subjects::deliver_to`],
/// [`crate::subjects::DELIVER_BROADCAST`]): one event; also what history keeps of it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Delivery<'a> {
    /// The event id.
    pub id: &'a str,
    /// The event name.
    pub event: &'a str,
    /// Who it is for; each gateway resolves this against the connections it holds.
    pub targets: Targets,
    /// The payload, verbatim.
    #[serde(borrow)]
    pub payload: &'a RawValue,
    /// When a dispatcher accepted it (ms since the Unix epoch): gateways measure delivery
    /// latency from here; 0 when the sender did not say.
    #[serde(default)]
    pub accepted_ms: u64,
    /// The publishing connection of a client-published event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Publisher>,
    /// A connection not to deliver it to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<String>,
    /// Its positions in the streams of the targets that keep history (empty in what is
    /// stored: a stored copy's position is where it is stored).
    #[serde(default, skip_serializing_if = "Positions::is_empty")]
    pub pos: Positions,
}

impl Delivery<'_> {
    /// Now, in ms since the Unix epoch: the clock `accepted_ms` is read against.
    pub fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// REST → dispatcher, on [`crate::subjects::QUERY`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Query {
    /// `GET /v1/users/{user}`.
    User {
        /// The user.
        user: String,
    },
    /// `GET /v1/channels/{channel}`.
    Channel {
        /// The channel.
        channel: String,
    },
    /// `GET /v1/channels`: one page, in name order.
    Channels {
        /// The `cursor` of the request: the page starts after the channel it names.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        /// Most channels on the page (the dispatcher caps it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// `GET /v1/channels/{c}/history`, `GET /v1/users/{u}/history`, and a gateway replaying
    /// what a client missed: `{"events":[…],"pos":…,"recovered":…,"more":…}`.
    History {
        /// Whose stream.
        target: Target,
        /// The position the reader last saw (a token); without it, the newest events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
        /// Most events in the answer (the dispatcher caps it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// `GET /v1/presence`: every user and channel, for a backend that resyncs.
    Presence,
    /// `GET /v1/cluster`: gateways, dispatchers and the message bus, as dispatchers see them.
    Cluster,
    /// `POST /v1/users/{user}/disconnect`.
    DisconnectUser {
        /// The user.
        user: String,
    },
}

/// Dispatcher → every gateway, on [`crate::subjects::CONTROL`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Control {
    /// Close every connection of `user`.
    DisconnectUser {
        /// The user.
        user: String,
    },
}

/// Gateway → gateway, on [`crate::subjects::gateway_sse`]: an SSE POST for a connection the
/// receiving gateway holds, answered with an [`SseForwardReply`]. Its `Debug` hides the secret
/// and the frame (an `ident` carries credentials), so no log line can carry them.
#[derive(Clone, Serialize, Deserialize)]
pub struct SseForward {
    /// The connection id.
    pub conn: String,
    /// The `X-Herald-Secret` the POST carried; the holding gateway checks it.
    #[serde(default)]
    pub secret: Option<String>,
    /// The client frame, as posted.
    pub frame: String,
}

impl std::fmt::Debug for SseForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseForward")
            .field("conn", &self.conn)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("frame_bytes", &self.frame.len())
            .finish()
    }
}

/// Gateway → gateway: the answer to an [`SseForward`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum SseForwardReply {
    /// The connection took the frame; `frame` is the reply to answer the POST with.
    Handled {
        /// The reply frame, as JSON text.
        frame: String,
    },
    /// No such SSE connection, or the secret did not match (deliberately one answer).
    NotFound,
}
