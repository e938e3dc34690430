//! The per-connection state machine shared by WebSocket and SSE: anonymous until `ident`,
//! then identified; turns client frames into dispatcher commands and reply frames.

use crate::outbox::{CloseReason, OutboxReceiver};
use crate::publish::{Outgoing, PublishBucket, Publishing};
use crate::registry::Connection;
use crate::Shared;
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
}

/// How a connection reaches its client.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    WebSocket,
    /// Frames come in through `POST /sse/{conn}`, which must prove it owns the stream.
    Sse,
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
        let connection = Arc::new(Connection::new(id, outbox, sse_secret.clone()));
        if shared.registry.insert(connection.clone()) {
            shared.metrics.connections.inc();
            crate::admission::watch_ident(shared, &connection);
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
        Ok(frame) => Handled::Reply(handle_request(shared, connection, frame).await),
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

/// Handles one decoded client frame other than an RPC and returns the reply frame; the
/// session stays locked meanwhile, so a connection's requests take effect in order.
async fn handle_request(
    shared: &Shared,
    connection: &Arc<Connection>,
    frame: ClientFrame,
) -> String {
    let id = frame.id().cloned();
    let is_ident = matches!(frame, ClientFrame::Ident { .. });
    let mut state = connection.session.lock().await;
    if state.closed {
        let error = HeraldError::bad_request("connection is closing");
        return ServerFrame::error(id, &error).encode();
    }
    if is_ident {
        if let Err(refused) = shared.config.auth_limit.check(state.peer) {
            return ServerFrame::error(id, &refused).encode();
        }
    }
    match execute(shared, connection, &mut state, frame).await {
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
    .encode()
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
        ClientFrame::Ident { id, auth } => {
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
                    shared.registry.identify(connection, &user);
                    state.user = Some(user.clone());
                    state.grants = grants;
                    state.publish_patterns = publish;
                    Ok(ok(id, Some(user), None))
                }
                other => Err(unexpected(other)),
            }
        }
        ClientFrame::Join { id, channel } => {
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
            };
            let joined = command(shared, &join).await;
            if is_unanswered(&joined) {
                state.unsure_channels.insert(channel.clone());
            }
            joined?;
            shared.registry.join(connection, &channel);
            state.channels.insert(channel.clone());
            Ok(ok(id, None, Some(channel)))
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
        .notify_from(&event_id, &notify, Some(from))
        .await?;
    Ok(ServerFrame::Ok {
        id,
        user: None,
        channel: None,
        event_id: Some(event_id),
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
    }
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
