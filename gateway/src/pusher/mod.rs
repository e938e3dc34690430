//! The Pusher Channels protocol (version 7) at `/app/{key}`: Pusher frames in, the dispatcher
//! commands `/ws` sends out, Pusher frames back.
//!
//! A Pusher connection is anonymous: it subscribes to channels with the authorization the
//! app's backend signed, checked here against the app's secret. Each subscription is a join of
//! the app's Herald channel (see [`herald_core::pusher`]) under the connection's Pusher user:
//! the presence member's `user_id`, else the signed-in user's id, else the `socket_id`.

mod wire;

pub(crate) use wire::{close_reason, error_frame, event_frames};
use wire::{
    data, member_of, refused, subscription_error, text_frame, ClientFrame, Refused, SigninData,
    SubscribeData, UnsubscribeData,
};

use crate::publish::PublishBucket;
use crate::registry::Connection;
use crate::{session, Shared};
use herald_core::history::Target;
use herald_core::messages::{CommandReply, GatewayCommand, NotifyRequest, Publisher, Query};
use herald_core::protocol::notify::{Notify, Targets};
use herald_core::pusher::{self, ChannelKind, Member, PusherApp};
use herald_core::{ErrorCode, HeraldError};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Seconds of silence after which a client pings (Pusher's default).
const ACTIVITY_TIMEOUT_SECS: u64 = 120;

/// The protocol versions spoken (pusher-js 8 speaks 7).
const PROTOCOLS: std::ops::RangeInclusive<u32> = 5..=7;

/// Why a connection is refused before it starts, as Pusher says it.
pub(crate) struct Refusal {
    code: u16,
    message: String,
}

/// Checks the `/app/{key}` request: a known app key and a protocol version spoken.
pub(crate) fn admit(
    shared: &Shared,
    key: &str,
    protocol: Option<&str>,
) -> Result<Arc<PusherApp>, Refusal> {
    let Some(app) = shared.config.pusher_apps.by_key(key) else {
        return Err(Refusal {
            code: 4001,
            message: format!(
                "App key {:?} does not exist on this server; check the key the client uses",
                herald_core::protocol::excerpt(key)
            ),
        });
    };
    match protocol.map(str::parse::<u32>) {
        None => {}
        Some(Ok(version)) if PROTOCOLS.contains(&version) => {}
        Some(_) => {
            return Err(Refusal {
                code: 4007,
                message: format!(
                    "Unsupported protocol version; this server speaks versions {} to {}",
                    PROTOCOLS.start(),
                    PROTOCOLS.end()
                ),
            })
        }
    }
    Ok(app.clone())
}

impl Refusal {
    /// The `pusher:error` frame and the close that end a refused connection.
    pub(crate) fn frames(&self) -> (String, u16) {
        (error_frame(Some(self.code), &self.message), self.code)
    }
}

/// What is counted per Pusher app (label `app`).
pub(crate) struct AppMetrics {
    connections: Arc<herald_core::metrics::Metric>,
    client_events: Arc<herald_core::metrics::Metric>,
}

impl AppMetrics {
    /// The metrics of every app, by app id.
    pub(crate) fn for_apps(
        apps: &herald_core::pusher::PusherApps,
        metrics: &herald_core::metrics::Metrics,
    ) -> HashMap<String, AppMetrics> {
        apps.iter()
            .map(|app| {
                let labelled = metrics.labelled(&[("app", &app.id)]);
                let counted = AppMetrics {
                    connections: labelled.gauge(
                        "herald_pusher_connections",
                        "Pusher protocol connections open on this gateway.",
                    ),
                    client_events: labelled.counter(
                        "herald_pusher_client_events_total",
                        "Client events Pusher connections sent (accepted).",
                    ),
                };
                (app.id.clone(), counted)
            })
            .collect()
    }
}

/// One subscription: the Herald channel, and the user its membership is recorded under.
struct Subscription {
    herald: String,
    user: String,
    kind: ChannelKind,
}

/// What one Pusher connection has established.
pub(crate) struct PusherSession {
    app: Arc<PusherApp>,
    socket_id: String,
    subscriptions: HashMap<String, Subscription>,
    /// The signed-in user's id.
    user: Option<String>,
    client_events: PublishBucket,
    /// Channels whose join got no answer in time: they may be in KV, so closing removes them.
    unsure: std::collections::BTreeSet<String>,
}

impl PusherSession {
    /// A session for `connection` of `app`.
    pub(crate) fn new(app: Arc<PusherApp>, connection: &Connection) -> Self {
        let rate = app.client_events_per_sec;
        PusherSession {
            socket_id: pusher::socket_id(&connection.id),
            app,
            subscriptions: HashMap::new(),
            user: None,
            client_events: PublishBucket::new(rate),
            unsure: Default::default(),
        }
    }

    /// `pusher:connection_established`, the first frame; the connection counts as open.
    pub(crate) fn established(&self, shared: &Shared) -> String {
        if let Some(counted) = shared.metrics.pusher.get(&self.app.id) {
            counted.connections.inc();
        }
        let data = json!({"socket_id": self.socket_id, "activity_timeout": ACTIVITY_TIMEOUT_SECS});
        text_frame("pusher:connection_established", None, &data.to_string())
    }

    /// Handles one client frame; answers the frames to send back.
    pub(crate) async fn handle(
        &mut self,
        shared: &Shared,
        connection: &Arc<Connection>,
        text: &str,
    ) -> Vec<String> {
        connection.seen();
        if text.len() > shared.config.max_frame_bytes {
            return vec![error_frame(
                None,
                &format!(
                    "frame of {} bytes exceeds the limit of {} bytes",
                    text.len(),
                    shared.config.max_frame_bytes
                ),
            )];
        }
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => {
                return vec![error_frame(
                    None,
                    &format!(
                        "malformed frame: {e}; send {{\"event\":…,\"data\":…}} JSON text frames"
                    ),
                )]
            }
        };
        match frame.event.as_str() {
            "pusher:ping" => vec![text_frame("pusher:pong", None, "{}")],
            "pusher:pong" => Vec::new(),
            "pusher:subscribe" => match data::<SubscribeData>(&frame) {
                Ok(data) => self.subscribe(shared, connection, data).await,
                Err(message) => vec![error_frame(None, &message)],
            },
            "pusher:unsubscribe" => match data::<UnsubscribeData>(&frame) {
                Ok(data) => {
                    self.unsubscribe(shared, connection, &data.channel).await;
                    Vec::new()
                }
                Err(message) => vec![error_frame(None, &message)],
            },
            "pusher:signin" => match data::<SigninData>(&frame) {
                Ok(data) => vec![self.sign_in(shared, connection, data).await],
                Err(message) => vec![error_frame(None, &message)],
            },
            name if name.starts_with("client-") => self
                .client_event(shared, connection, frame)
                .await
                .err()
                .into_iter()
                .collect(),
            name => vec![error_frame(
                None,
                &format!(
                    "unknown event {:?}: clients send pusher:subscribe, pusher:unsubscribe, \
                     pusher:signin, pusher:ping or client- events",
                    herald_core::protocol::excerpt(name)
                ),
            )],
        }
    }

    async fn subscribe(
        &mut self,
        shared: &Shared,
        connection: &Arc<Connection>,
        data: SubscribeData,
    ) -> Vec<String> {
        let channel = data.channel.clone();
        match self.join(shared, connection, data).await {
            Ok(succeeded) if pusher::is_cache(&channel) => {
                vec![succeeded, self.cached(shared, &channel).await]
            }
            Ok(succeeded) => vec![succeeded],
            Err(why) => vec![subscription_error(&channel, why)],
        }
    }

    /// A cache channel's last event, from its history, or `pusher:cache_miss` when it has none
    /// (or history cannot be read now).
    async fn cached(&self, shared: &Shared, channel: &str) -> String {
        let last = match self.subscriptions.get(channel) {
            Some(subscription) => {
                let query = Query::History {
                    target: Target::Channel(subscription.herald.clone()),
                    since: None,
                    limit: Some(1),
                };
                shared.requests.query(&query).await.ok()
            }
            None => None,
        };
        let event = last.as_ref().and_then(|answer| answer["events"].get(0));
        let rendered = event.and_then(|event| {
            let payload = serde_json::value::to_raw_value(&event["payload"]).ok()?;
            Some(pusher::event_frame(
                channel,
                event["event"].as_str()?,
                &payload,
            ))
        });
        rendered.unwrap_or_else(|| text_frame("pusher:cache_miss", Some(channel), "{}"))
    }

    /// Subscribes, answering `subscription_succeeded`, or why not as (status, type, message).
    async fn join(
        &mut self,
        shared: &Shared,
        connection: &Arc<Connection>,
        data: SubscribeData,
    ) -> Result<String, Refused> {
        let channel = data.channel;
        let herald = pusher::herald_channel(&self.app.id, &channel)
            .map_err(|e| (400, "InvalidChannel", e))?;
        let kind = ChannelKind::of(&channel);
        if kind == ChannelKind::User {
            // Signing in subscribed the connection already; clients then subscribe again.
            if !self.subscriptions.contains_key(&channel) {
                return Err((
                    403,
                    "AuthError",
                    "a user's channel is only for that user: sign in (pusher:signin) first".into(),
                ));
            }
            return Ok(text_frame(
                "pusher_internal:subscription_succeeded",
                Some(&channel),
                "{}",
            ));
        }
        let member = self.authorize(&channel, kind, &data.auth, &data.channel_data)?;
        if !self.subscriptions.contains_key(&channel) {
            let limit = shared.config.max_channels_per_connection;
            if self.subscriptions.len() >= limit {
                return Err((
                    403,
                    "LimitReached",
                    format!("this connection has subscribed to {limit} channels, the most one may"),
                ));
            }
        }
        let user = match &member {
            Some(member) => member.user_id.clone(),
            None => self.user.clone().unwrap_or_else(|| self.socket_id.clone()),
        };
        let members = match self
            .record_join(shared, connection, &herald, &user, member)
            .await
        {
            Ok(members) => members,
            Err(e) => {
                if e.code == ErrorCode::Unavailable {
                    self.unsure.insert(herald);
                }
                return Err(refused("ServerError", e));
            }
        };
        self.subscriptions
            .entry(channel.clone())
            .or_insert(Subscription { herald, user, kind });
        let data = match members {
            Some(members) => {
                let ids: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
                let hash: serde_json::Map<String, serde_json::Value> = members
                    .iter()
                    .map(|m| (m.user_id.clone(), m.user_info.clone()))
                    .collect();
                json!({"presence": {"ids": ids, "hash": hash, "count": ids.len()}})
            }
            None => json!({}),
        };
        Ok(text_frame(
            "pusher_internal:subscription_succeeded",
            Some(&channel),
            &data.to_string(),
        ))
    }

    /// Checks a private or presence channel's authorization; answers the presence member.
    fn authorize(
        &self,
        channel: &str,
        kind: ChannelKind,
        auth: &Option<String>,
        channel_data: &Option<String>,
    ) -> Result<Option<Member>, Refused> {
        if !kind.needs_auth() {
            return Ok(None);
        }
        let unauthorized = |why: &str| {
            (
                401,
                "AuthError",
                format!("{why}; the backend signs `<socket_id>:<channel>` with the app secret"),
            )
        };
        let Some(auth) = auth.as_deref().filter(|a| !a.is_empty()) else {
            return Err(unauthorized("this channel needs an `auth` signature"));
        };
        let mut signed = format!("{}:{channel}", self.socket_id);
        if kind == ChannelKind::Presence {
            let Some(channel_data) = channel_data else {
                return Err((
                    400,
                    "AuthError",
                    "a presence channel needs `channel_data` with a `user_id`".into(),
                ));
            };
            signed = format!("{signed}:{channel_data}");
            if !pusher::authorizes(&self.app, auth, &signed) {
                return Err(unauthorized("invalid signature"));
            }
            return member_of(channel_data)
                .map(Some)
                .map_err(|e| (400, "AuthError", e));
        }
        if !pusher::authorizes(&self.app, auth, &signed) {
            return Err(unauthorized("invalid signature"));
        }
        Ok(None)
    }

    /// Joins `herald` in KV (once per connection), then here; answers a presence channel's
    /// members.
    async fn record_join(
        &self,
        shared: &Shared,
        connection: &Arc<Connection>,
        herald: &str,
        user: &str,
        member: Option<Member>,
    ) -> Result<Option<Vec<Member>>, HeraldError> {
        let join = GatewayCommand::Join {
            conn: connection.id_text.clone(),
            user: user.to_string(),
            grants: vec![herald.to_string()],
            channel: herald.to_string(),
            member,
        };
        let members = match session::command(shared, &join).await? {
            CommandReply::Members { members } => Some(members),
            _ => None,
        };
        let already = self.subscriptions.values().any(|s| s.herald == herald);
        if !already {
            let target = Target::Channel(herald.to_string());
            if let Err(e) = shared.interest.hold(&target).await {
                shared.interest.release(&target);
                return Err(e);
            }
            shared.registry.join(connection, herald);
        }
        Ok(members)
    }

    async fn unsubscribe(&mut self, shared: &Shared, connection: &Arc<Connection>, channel: &str) {
        let Some(subscription) = self.subscriptions.remove(channel) else {
            return;
        };
        let leave = GatewayCommand::Leave {
            conn: connection.id_text.clone(),
            user: subscription.user,
            channel: subscription.herald.clone(),
        };
        if let Err(e) = session::command(shared, &leave).await {
            tracing::warn!(conn = %connection.id_text, error = %e.message, "unsubscribe not recorded");
        }
        shared
            .registry
            .leave(connection.id.local, &subscription.herald);
        shared
            .interest
            .release(&Target::Channel(subscription.herald));
    }

    /// `pusher:signin`: checks `<socket_id>::user::<user_data>`, then subscribes the connection
    /// to the user's own channel.
    async fn sign_in(
        &mut self,
        shared: &Shared,
        connection: &Arc<Connection>,
        data: SigninData,
    ) -> String {
        let signed = format!("{}::user::{}", self.socket_id, data.user_data);
        if !pusher::authorizes(&self.app, &data.auth, &signed) {
            return error_frame(
                Some(4009),
                "sign-in refused: invalid signature; the backend signs \
                 `<socket_id>::user::<user_data>` with the app secret",
            );
        }
        let id = serde_json::from_str::<serde_json::Value>(&data.user_data)
            .ok()
            .and_then(|user| match &user["id"] {
                serde_json::Value::String(id) if !id.is_empty() => Some(id.clone()),
                _ => None,
            });
        let Some(id) = id else {
            return error_frame(
                Some(4009),
                "sign-in refused: `user_data` must be a JSON object with a non-empty string `id`",
            );
        };
        let channel = format!("{}{id}", pusher::USER_CHANNEL_PREFIX);
        let herald = match pusher::herald_channel(&self.app.id, &channel) {
            Ok(herald) => herald,
            Err(e) => return error_frame(Some(4009), &format!("sign-in refused: {e}")),
        };
        if self.user.as_deref() != Some(id.as_str()) {
            if let Err(e) = self
                .record_join(shared, connection, &herald, &id, None)
                .await
            {
                return error_frame(None, &format!("sign-in failed, try again: {}", e.message));
            }
            self.subscriptions.insert(
                channel,
                Subscription {
                    herald,
                    user: id.clone(),
                    kind: ChannelKind::User,
                },
            );
            shared
                .registry
                .identify(connection, &pusher::user_name(&self.app.id, &id));
            self.user = Some(id);
        }
        let data = json!({"user_data": data.user_data});
        text_frame("pusher:signin_success", None, &data.to_string())
    }

    /// A `client-` event: sent to the channel's other members through a dispatcher, which
    /// checks the membership again in KV.
    async fn client_event(
        &mut self,
        shared: &Shared,
        connection: &Arc<Connection>,
        frame: ClientFrame,
    ) -> Result<(), String> {
        let refused = |message: &str| error_frame(None, message);
        let channel = frame.channel.as_deref().unwrap_or_default();
        let Some(subscription) = self.subscriptions.get(channel) else {
            return Err(refused(&format!(
                "client event refused: not subscribed to {:?}",
                herald_core::protocol::excerpt(channel)
            )));
        };
        if !subscription.kind.allows_client_events() {
            return Err(refused(
                "client event refused: client events go on private and presence channels only",
            ));
        }
        if frame.event.len() > pusher::MAX_EVENT_NAME_LEN {
            return Err(refused(&format!(
                "client event refused: event names have at most {} characters",
                pusher::MAX_EVENT_NAME_LEN
            )));
        }
        let data = frame.data.unwrap_or_else(|| pusher::json_string("{}"));
        if data.get().len() > self.app.max_event_bytes {
            return Err(refused(&format!(
                "client event refused: data of {} bytes exceeds the limit of {} bytes",
                data.get().len(),
                self.app.max_event_bytes
            )));
        }
        if self
            .client_events
            .take(self.app.client_events_per_sec)
            .is_err()
        {
            return Err(error_frame(
                Some(4301),
                &format!(
                    "client event rejected due to rate limit: at most {} per second",
                    self.app.client_events_per_sec
                ),
            ));
        }
        let user_id = (subscription.kind == ChannelKind::Presence)
            .then_some(std::borrow::Cow::Borrowed(subscription.user.as_str()));
        let envelope = pusher::Envelope {
            name: std::borrow::Cow::Borrowed(&frame.event),
            data: &data,
            user_id,
        };
        let notify = Notify {
            event: pusher::EVENT.to_string(),
            targets: Targets {
                channels: vec![subscription.herald.clone()],
                ..Default::default()
            },
            payload: serde_json::value::to_raw_value(&envelope)
                .map_err(|e| refused(&e.to_string()))?,
        };
        let request = NotifyRequest {
            id: herald_core::messages::EventIds::fresh(),
            notify: &notify,
            from: Some(Publisher {
                user: subscription.user.clone(),
                conn: connection.id_text.clone(),
            }),
            except: None,
        };
        shared
            .requests
            .notify_request(&request)
            .await
            .map_err(|e| refused(&format!("client event not sent: {}", e.message)))?;
        if let Some(counted) = shared.metrics.pusher.get(&self.app.id) {
            counted.client_events.inc();
        }
        Ok(())
    }

    /// Forgets a connection that closed, here and in KV.
    pub(crate) fn close(self, shared: &Shared, connection: &Connection, reason: &str) {
        let channels: Vec<String> = self
            .subscriptions
            .values()
            .map(|s| s.herald.clone())
            .collect();
        let reported: Vec<String> = channels
            .iter()
            .chain(self.unsure.iter().filter(|u| !channels.contains(u)))
            .cloned()
            .collect();
        let user = self
            .user
            .as_ref()
            .map(|id| pusher::user_name(&self.app.id, id));
        shared
            .registry
            .remove(connection.id.local, user.as_deref(), &channels);
        for channel in &channels {
            shared.interest.release(&Target::Channel(channel.clone()));
        }
        shared.metrics.connections.dec();
        if let Some(counted) = shared.metrics.pusher.get(&self.app.id) {
            counted.connections.dec();
        }
        if shared.shutdown.is_cancelled() || reported.is_empty() {
            return;
        }
        shared.close_reports.report(GatewayCommand::Closed {
            conn: connection.id_text.clone(),
            user: Some(self.socket_id),
            channels: reported,
            reason: reason.to_string(),
        });
    }
}
