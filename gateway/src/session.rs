//! The per-connection state machine shared by WebSocket and SSE: anonymous until `ident`,
//! then identified; turns client frames into dispatcher commands and reply frames.

use crate::outbox::{CloseReason, OutboxReceiver};
use crate::publish::{Outgoing, PublishBucket, Publishing};
use crate::recovery::{Held, Replay};
use crate::registry::Connection;
use crate::Shared;
use axum::extract::ws::Utf8Bytes;
use herald_core::history::{Position, Target};
use herald_core::messages::Query;
use herald_core::messages::{CommandReply, GatewayCommand};
use herald_core::protocol::client_frames::ClientFrame;
use herald_core::protocol::server_frames::ServerFrame;
use herald_core::protocol::RequestId;
use herald_core::subjects::ConnId;
use herald_core::{ErrorCode, HeraldError};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

/// What one connection has established.
#[derive(Default)]
pub struct SessionState {
    /// The identified user; `None` until `ident` succeeds.
    user: Option<String>,
    /// Channel patterns the user's token grants.
    grants: Vec<String>,
    /// Channel patterns the user's token lets it publish to.
    publish_patterns: Vec<String>,
    /// This connection's publish allowance, from its first publish on.
    publish_bucket: Option<PublishBucket>,
    /// Channels joined.
    channels: BTreeSet<String>,
    /// An ident that got no answer in time: the dispatcher may still have recorded it.
    unsure_ident: bool,
    /// Channels whose join got no answer in time: they may be in KV.
    unsure_channels: BTreeSet<String>,
    /// Idents refused so far.
    failed_idents: u32,
    /// The client's address, for the per-address limit on failed idents (`None`: unknown).
    peer: Option<IpAddr>,
    /// Set once the connection closed; later frames are refused.
    closed: bool,
    /// A replay the last request started, handed to the transport with the reply.
    replay: Option<Replay>,
    /// Replays this connection may still ask for.
    replay_budget: crate::recovery::ReplayBudget,
}

/// How a connection reaches its client.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    WebSocket,
    /// Frames come in through `POST /sse/{conn}`, which must prove it owns the stream.
    Sse,
    /// A WebSocket speaking the Pusher protocol: anonymous, so no ident timeout.
    Pusher,
}

impl SessionState {
    /// Whether `ident` succeeded on this connection.
    pub(crate) fn is_identified(&self) -> bool {
        self.user.is_some()
    }
}

/// The largest client frame read at all: frames a little over `max_frame_bytes` are read and
/// answered with `too_large`; far larger ones (over twice the limit) are refused unread (a
/// WebSocket closes with 1009, an SSE POST gets 413), as reading them would cost memory.
pub(crate) fn hard_frame_limit(shared: &Shared) -> usize {
    shared.config.max_frame_bytes * 2 + 4096
}

/// Opens a connection: registers it under a fresh random id (and, for SSE, with a fresh
/// secret) and returns it with the receiving end of its outbox.
pub(crate) fn open(shared: &Shared, transport: Transport) -> (Arc<Connection>, OutboxReceiver) {
    let sse_secret = (transport == Transport::Sse).then(new_secret);
    let (mut outbox, mut receiver) = crate::outbox::Outbox::new(
        shared.config.outbox_capacity,
        shared.config.outbox_max_bytes,
        &shared.shutdown,
    );
    loop {
        let id = ConnId::random(&shared.id);
        let mut connection = Connection::new(id, outbox, sse_secret.clone());
        if transport == Transport::Pusher {
            connection = connection.speaking_pusher();
        }
        let connection = Arc::new(connection);
        if shared.registry.insert(connection.clone()) {
            shared.metrics.connections.inc();
            if transport != Transport::Pusher {
                crate::admission::watch_ident(shared, &connection);
            }
            let receiver = receiver.measure_latency(shared.metrics.delivery_latency.clone());
            return (connection, receiver);
        }
        // 128 random bits collided with a live connection: practically never; draw again.
        (outbox, receiver) = crate::outbox::Outbox::new(
            shared.config.outbox_capacity,
            shared.config.outbox_max_bytes,
            &shared.shutdown,
        );
    }
}

/// 32 bytes from the thread's CSPRNG, base64url without padding.
fn new_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Notes the client's address (from the socket that opened the connection).
pub(crate) async fn set_peer(connection: &Connection, peer: Option<IpAddr>) {
    connection.session.lock().await.peer = peer;
}

/// The first frame of every connection (with the secret, for SSE).
pub(crate) fn welcome(shared: &Shared, connection: &Connection) -> String {
    ServerFrame::Welcome {
        conn: connection.id_text.clone(),
        heartbeat_ms: shared.config.heartbeat.as_millis() as u64,
        secret: connection.sse_secret().map(str::to_string),
    }
    .encode()
}

/// RPCs one connection may have waiting for their backends at once; more get `rate_limited`.
pub(crate) const MAX_RPCS_IN_FLIGHT: u8 = 8;

/// What handling a client frame gives: its reply now, or an RPC whose reply comes when the
/// backend answers (the connection's other frames need not wait for it).
pub(crate) enum Handled {
    Reply(String),
    Call(std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>),
    /// An `ok` to `ident` or `join` with `since`: queue it, then drop the replay, which queues
    /// the missed events and the live ones that waited behind them.
    Recovered(String, Replay),
}

/// Handles one client frame. May ask the connection to close (after the reply is sent), e.g.
/// after too many failed idents.
pub(crate) async fn handle_frame(
    shared: &Arc<Shared>,
    connection: &Arc<Connection>,
    text: &str,
) -> Handled {
    connection.seen();
    if text.len() > shared.config.max_frame_bytes {
        let error = HeraldError::new(
            ErrorCode::TooLarge,
            format!(
                "frame of {} bytes exceeds the limit of {} bytes",
                text.len(),
                shared.config.max_frame_bytes
            ),
        );
        return Handled::Reply(ServerFrame::error(None, &error).encode());
    }
    match ClientFrame::decode(text) {
        Ok(ClientFrame::Rpc { id, method, data }) => {
            rpc(shared, connection, id, method, data).await
        }
        Ok(frame) => match handle_request(shared, connection, frame).await {
            (reply, Some(replay)) => Handled::Recovered(reply, replay),
            (reply, None) => Handled::Reply(reply),
        },
        Err(e) => Handled::Reply(ServerFrame::error(e.id, &e.error).encode()),
    }
}

/// Starts an RPC: checks it may run, then hands back the call, which holds no lock.
async fn rpc(
    shared: &Arc<Shared>,
    connection: &Arc<Connection>,
    id: Option<RequestId>,
    method: String,
    data: serde_json::Value,
) -> Handled {
    let user = {
        let state = connection.session.lock().await;
        if state.closed {
            Err(HeraldError::bad_request("connection is closing"))
        } else {
            identified(&state)
        }
    };
    let user = match user {
        Ok(user) => user,
        Err(error) => return Handled::Reply(ServerFrame::error(id, &error).encode()),
    };
    let in_flight = &connection.rpcs_in_flight;
    if in_flight.fetch_add(1, std::sync::atomic::Ordering::AcqRel) >= MAX_RPCS_IN_FLIGHT {
        in_flight.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        let error = HeraldError::new(
            ErrorCode::RateLimited,
            format!(
                "{MAX_RPCS_IN_FLIGHT} RPCs of this connection are waiting for their backends; \
                 wait for an answer"
            ),
        );
        return Handled::Reply(ServerFrame::error(id, &error).encode());
    }
    let (shared, connection) = (shared.clone(), connection.clone());
    Handled::Call(Box::pin(async move {
        let via = (
            &shared.backend_client,
            shared.bus.as_ref(),
            shared.metrics.rpc_durations.as_ref(),
        );
        let who = (user.as_str(), connection.id_text.as_str());
        let reply = shared.rpc.call(via, id, &method, &data, who).await.encode();
        connection
            .rpcs_in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        reply
    }))
}

/// Handles one decoded client frame other than an RPC and returns the reply frame, and the
/// replay it started if any; the session stays locked meanwhile, so a connection's requests
/// take effect in order.
async fn handle_request(
    shared: &Shared,
    connection: &Arc<Connection>,
    frame: ClientFrame,
) -> (String, Option<Replay>) {
    let id = frame.id().cloned();
    let is_ident = matches!(frame, ClientFrame::Ident { .. });
    let mut state = connection.session.lock().await;
    if state.closed {
        let error = HeraldError::bad_request("connection is closing");
        return (ServerFrame::error(id, &error).encode(), None);
    }
    if is_ident {
        if let Err(refused) = shared.config.auth_limit.check(state.peer) {
            return (ServerFrame::error(id, &refused).encode(), None);
        }
    }
    let reply = match execute(shared, connection, &mut state, frame).await {
        Ok(reply) => reply,
        Err(error) => {
            if is_ident && error.code == ErrorCode::Unauthorized {
                shared.config.auth_limit.failed(state.peer);
                state.failed_idents += 1;
                if state.failed_idents >= shared.config.max_failed_idents {
                    tracing::info!(conn = %connection.id_text, "closing after too many failed idents");
                    connection.outbox.close(CloseReason::TOO_MANY_FAILED_IDENTS);
                }
            }
            ServerFrame::error(id, &error)
        }
    }
    .encode();
    (reply, state.replay.take())
}

async fn execute(
    shared: &Shared,
    connection: &Arc<Connection>,
    state: &mut SessionState,
    frame: ClientFrame,
) -> Result<ServerFrame, HeraldError> {
    let conn = connection.id_text.clone();
    match frame {
        ClientFrame::Ping { id } => Ok(ServerFrame::Pong { id }),
        ClientFrame::Ident { id, auth, since } => {
            if state.user.is_some() {
                return Err(HeraldError::bad_request(
                    "already identified; open a new connection to change user",
                ));
            }
            let identified = command(shared, &GatewayCommand::Ident { conn, auth }).await;
            state.unsure_ident |= is_unanswered(&identified);
            match identified? {
                CommandReply::Identified {
                    user,
                    grants,
                    publish,
                } => {
                    let target = Target::User(user.clone());
                    if let Err(e) = shared.interest.hold(&target).await {
                        shared.interest.release(&target);
                        state.unsure_ident = true;
                        return Err(e);
                    }
                    let (since, refused) = budgeted(state, since);
                    let replay = since.map(|_| Replay::begin(connection, capacity(shared)));
                    shared.registry.identify(connection, &user);
                    state.user = Some(user.clone());
                    state.grants = grants;
                    state.publish_patterns = publish;
                    let recovery = recover(shared, connection, &target, since, replay).await;
                    state.replay = recovery.replay;
                    Ok(ServerFrame::Ok {
                        id,
                        user: Some(user),
                        channel: None,
                        event_id: None,
                        pos: recovery.pos,
                        recovered: recovery.recovered.or(refused),
                    })
                }
                other => Err(unexpected(other)),
            }
        }
        ClientFrame::Join { id, channel, since } => {
            let user = identified(state)?;
            if state.channels.contains(&channel) {
                return Ok(ok(id, None, Some(channel)));
            }
            // Each membership is a KV row and a registry entry: bound what one socket holds.
            let limit = shared.config.max_channels_per_connection;
            if state.channels.len() >= limit {
                return Err(HeraldError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "this connection has joined {limit} channels, the most one connection \
                         may; leave one first, or open another connection"
                    ),
                ));
            }
            let join = GatewayCommand::Join {
                conn,
                user,
                grants: state.grants.clone(),
                channel: channel.clone(),
                member: None,
            };
            let joined = command(shared, &join).await;
            if is_unanswered(&joined) {
                state.unsure_channels.insert(channel.clone());
            }
            joined?;
            let target = Target::Channel(channel.clone());
            if let Err(e) = shared.interest.hold(&target).await {
                shared.interest.release(&target);
                state.unsure_channels.insert(channel.clone());
                return Err(e);
            }
            let (since, refused) = budgeted(state, since);
            let replay = since.map(|_| Replay::begin(connection, capacity(shared)));
            shared.registry.join(connection, &channel);
            state.channels.insert(channel.clone());
            let recovery = recover(shared, connection, &target, since, replay).await;
            state.replay = recovery.replay;
            Ok(ServerFrame::Ok {
                id,
                user: None,
                channel: Some(channel),
                event_id: None,
                pos: recovery.pos,
                recovered: recovery.recovered.or(refused),
            })
        }
        ClientFrame::Publish {
            id,
            channel,
            event,
            payload,
        } => publish(shared, connection, state, id, (channel, event), payload).await,
        // `handle_frame` runs RPCs apart, without the session lock.
        ClientFrame::Rpc { .. } => Err(HeraldError::internal("an rpc frame reached execute")),
        ClientFrame::Leave { id, channel } => {
            let user = identified(state)?;
            if !state.channels.contains(&channel) {
                return Err(HeraldError::bad_request(format!(
                    "not a member of channel {channel:?}; nothing to leave"
                )));
            }
            let leave = GatewayCommand::Leave {
                conn,
                user,
                channel: channel.clone(),
            };
            command(shared, &leave).await?;
            shared.registry.leave(connection.id.local, &channel);
            shared.interest.release(&Target::Channel(channel.clone()));
            state.channels.remove(&channel);
            Ok(ok(id, None, Some(channel)))
        }
    }
}

/// A client's publish: checked here, vetted by the hook if one is configured, accepted by a
/// dispatcher like a REST notify.
async fn publish(
    shared: &Shared,
    connection: &Connection,
    state: &mut SessionState,
    id: Option<RequestId>,
    (channel, event): (String, String),
    payload: serde_json::Value,
) -> Result<ServerFrame, HeraldError> {
    let user = identified(state)?;
    let config = &shared.config.publish;
    let who = Publishing {
        user: &user,
        conn: &connection.id_text,
        token_patterns: &state.publish_patterns,
        joined: state.channels.contains(&channel),
    };
    let bucket = state
        .publish_bucket
        .get_or_insert_with(|| PublishBucket::new(config.rate_per_sec));
    let (event_id, notify, from) = crate::publish::prepare(
        config,
        &shared.backend_client,
        bucket,
        who,
        Outgoing {
            channel,
            event,
            payload,
        },
        shared.config.max_frame_bytes,
    )
    .await?;
    let event_id = shared
        .requests
        .notify_request(&herald_core::messages::NotifyRequest {
            id: event_id,
            notify: &notify,
            from: Some(from),
            except: None,
        })
        .await?;
    Ok(ServerFrame::Ok {
        id,
        user: None,
        channel: None,
        event_id: Some(event_id),
        pos: None,
        recovered: None,
    })
}

/// Forgets a connection that closed, here and (for identified ones) in KV.
pub(crate) async fn close(shared: &Shared, connection: &Connection, reason: &str) {
    let mut state = connection.session.lock().await;
    if state.closed {
        return;
    }
    state.closed = true;
    let channels: Vec<String> = state.channels.iter().cloned().collect();
    shared
        .registry
        .remove(connection.id.local, state.user.as_deref(), &channels);
    let targets = state.user.iter().cloned().map(Target::User);
    for target in targets.chain(channels.iter().cloned().map(Target::Channel)) {
        shared.interest.release(&target);
    }
    shared.metrics.connections.dec();
    // On shutdown the gateway reports its departure once instead of each connection.
    if shared.shutdown.is_cancelled() {
        return;
    }
    if state.user.is_some() || state.unsure_ident {
        let closed = GatewayCommand::Closed {
            conn: connection.id_text.clone(),
            user: state.user.clone(),
            channels: channels
                .into_iter()
                .chain(state.unsure_channels.iter().cloned())
                .collect(),
            reason: reason.to_string(),
        };
        shared.close_reports.report(closed);
    }
}

/// Whether a command failed without an answer, so the dispatcher may still have carried it out.
fn is_unanswered(result: &Result<CommandReply, HeraldError>) -> bool {
    matches!(result, Err(e) if e.code == ErrorCode::Unavailable)
}

fn ok(id: Option<RequestId>, user: Option<String>, channel: Option<String>) -> ServerFrame {
    ServerFrame::Ok {
        id,
        user,
        channel,
        event_id: None,
        pos: None,
        recovered: None,
    }
}

/// Live events one connection may have waiting behind a replay: as many as its outbox holds.
fn capacity(shared: &Shared) -> usize {
    shared.config.outbox_capacity
}

/// `since` if the connection's replay budget allows it; else none, and `recovered: false` to
/// say so.
fn budgeted(state: &mut SessionState, since: Option<Position>) -> (Option<Position>, Option<bool>) {
    match since {
        Some(_) if !state.replay_budget.take() => (None, Some(false)),
        since => (since, None),
    }
}

/// What `ok` says of a target's history, and the replay to hand to the transport.
struct Recovery {
    pos: Option<String>,
    recovered: Option<bool>,
    replay: Option<Replay>,
}

/// How long an `ident` or `join` without `since` waits for its stream's position.
const POSITION_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Pages of history a replay reads at most (each up to 1,000 events or 512 KiB).
const MAX_REPLAY_PAGES: usize = 16;

/// Reads `target`'s position and, with `since`, the events the client missed into `replay`.
/// History that cannot be read leaves the join or ident standing, with no position and
/// `recovered: false`: the client reloads its state, as after any gap.
async fn recover(
    shared: &Shared,
    connection: &Connection,
    target: &Target,
    since: Option<Position>,
    mut replay: Option<Replay>,
) -> Recovery {
    let mut query_since = since.map(|p| p.to_string());
    let mut pos = None;
    let mut recovered = None;
    for page in 0..MAX_REPLAY_PAGES {
        let query = Query::History {
            target: target.clone(),
            limit: query_since.is_none().then_some(0),
            since: query_since.clone(),
        };
        // A position alone is worth little waiting for: while JetStream elects a leader (a NATS
        // node died) the join or ident goes on without one.
        let wait = match &since {
            Some(_) => shared.config.command_timeout,
            None => POSITION_WAIT,
        };
        let answer = tokio::time::timeout(wait, shared.requests.query(&query))
            .await
            .unwrap_or_else(|_| {
                Err(HeraldError::unavailable(format!(
                    "no history position within {} ms",
                    wait.as_millis()
                )))
            });
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(conn = %connection.id_text, error = %e.message, "could not read history");
                if page > 0 {
                    connection.outbox.close(CloseReason::RECOVERY_INTERRUPTED);
                }
                return Recovery {
                    pos,
                    recovered: since.map(|_| false),
                    replay,
                };
            }
        };
        let page_recovered = answer["recovered"].as_bool();
        if page == 0 {
            pos = answer["pos"].as_str().map(str::to_string);
            if let Some(pos) = &pos {
                shared.interest.starts_at(target, pos);
            }
            recovered = page_recovered;
        } else if page_recovered != Some(true) {
            // Events went while the replay was read: what was replayed is not all there is.
            connection.outbox.close(CloseReason::RECOVERY_INTERRUPTED);
            break;
        }
        let (frames, last) = replayed_frames(target, &answer);
        if let Some(replay) = replay.as_mut() {
            replay.extend(frames);
        }
        match (answer["more"].as_bool(), last) {
            (Some(true), Some(last)) if page_recovered == Some(true) => query_since = Some(last),
            _ => break,
        }
    }
    Recovery {
        pos,
        recovered,
        replay,
    }
}

/// The event frames of a history answer, and the position of the last one in `target`.
fn replayed_frames(target: &Target, answer: &serde_json::Value) -> (Vec<Held>, Option<String>) {
    let (kind, name) = match target {
        Target::Channel(name) => ("channels", name),
        Target::User(name) => ("users", name),
    };
    let mut last = None;
    let frames = answer["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|event| {
            last = event["pos"][kind][name.as_str()]
                .as_str()
                .map(str::to_string);
            Some(Held {
                id: event["id"].as_str()?.to_string(),
                frame: Utf8Bytes::from(event.to_string()),
                accepted_ms: 0,
            })
        })
        .collect();
    (frames, last)
}

fn identified(state: &SessionState) -> Result<String, HeraldError> {
    state.user.clone().ok_or_else(|| {
        HeraldError::new(
            ErrorCode::Unauthorized,
            "identify first: send an `ident` frame with a token",
        )
    })
}

fn unexpected(reply: CommandReply) -> HeraldError {
    HeraldError::internal(format!("unexpected dispatcher reply {reply:?}"))
}

/// Sends a command to a dispatcher and waits for its answer.
pub(crate) async fn command(
    shared: &Shared,
    command: &GatewayCommand,
) -> Result<CommandReply, HeraldError> {
    shared.requests.command(command).await
}
