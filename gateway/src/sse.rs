//! The SSE transport: `GET /sse` streams server frames, `POST /sse/{conn}` carries client
//! frames and answers with the reply frame, forwarded over the bus when another gateway holds
//! the connection.

use crate::admission::{refusal, Admitted, ClientIp};
use crate::http_error::ErrorReply;
use crate::outbox::{CloseReason, OutboxReceiver};
use crate::registry::Connection;
use crate::session::{self, Handled};
use crate::Shared;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use herald_core::bus::BusError;
use herald_core::messages::{SseForward, SseForwardReply};
use herald_core::protocol::server_frames::ServerFrame;
use herald_core::subjects::{self, ConnId};
use herald_core::{ErrorCode, HeraldError};
use std::convert::Infallible;
use std::sync::Arc;

/// `GET /sse`: opens a connection whose server frames arrive as `data:` lines.
pub(crate) async fn stream(State(shared): State<Arc<Shared>>, ClientIp(ip): ClientIp) -> Response {
    if shared.shutdown.is_cancelled() {
        return ErrorReply::new(HeraldError::unavailable(
            "this gateway is shutting down; connect again (to another gateway)",
        ))
        .into_response();
    }
    let admitted = match shared.admission.admit(ip) {
        Ok(admitted) => admitted,
        Err(error) => return refusal(error),
    };
    let (connection, outbox) = session::open(&shared, session::Transport::Sse);
    session::set_peer(&connection, ip).await;
    let welcome = session::welcome(&shared, &connection);
    leave_presence_when_closed(&shared, &connection);
    let frames = frames(
        ConnectionGuard {
            connection,
            _tracked: shared.tracker.token(),
            _admitted: admitted,
        },
        welcome,
        outbox,
    );
    let keep_alive = KeepAlive::new()
        .interval(shared.config.heartbeat)
        .text("keep-alive");
    (
        // Proxies such as nginx would otherwise buffer the stream.
        [("x-accel-buffering", "no"), ("cache-control", "no-cache")],
        Sse::new(frames).keep_alive(keep_alive),
    )
        .into_response()
}

/// Forgets the connection as soon as it must close. The stream itself ends only when the HTTP
/// server polls it again, which for a client that stopped reading (a slow consumer) is when its
/// socket drains: presence must not wait for that. Closing twice is harmless.
fn leave_presence_when_closed(shared: &Arc<Shared>, connection: &Arc<Connection>) {
    let closing = connection.outbox.closer();
    let (shared, connection) = (shared.clone(), connection.clone());
    let tracked = shared.tracker.token();
    tokio::spawn(async move {
        closing.cancelled().await;
        let reason = connection.outbox.close_reason();
        session::close(&shared, &connection, reason.reason).await;
        drop(tracked);
    });
}

/// Closes the connection when the response stream is dropped (the client went away).
struct ConnectionGuard {
    connection: Arc<Connection>,
    _tracked: tokio_util::task::task_tracker::TaskTrackerToken,
    _admitted: Admitted,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        // The watcher started by `leave_presence_when_closed` does the rest.
        self.connection.outbox.close(CloseReason::PEER_GONE);
    }
}

fn frames(
    guard: ConnectionGuard,
    welcome: String,
    outbox: OutboxReceiver,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let state = (guard, Some(welcome), outbox);
    futures::stream::unfold(state, |(guard, welcome, mut outbox)| async move {
        if let Some(welcome) = welcome {
            return Some((Ok(Event::default().data(welcome)), (guard, None, outbox)));
        }
        // Closing ends the stream; the client's EventSource reconnects if it wants to.
        let frame = outbox.recv_until_closed().await?;
        Some((
            Ok(Event::default().data(frame.as_str())),
            (guard, None, outbox),
        ))
    })
}

/// The header an SSE client proves it owns its stream with.
const SECRET_HEADER: &str = "x-herald-secret";

/// `POST /sse/{conn}`: one client frame in the body, the reply frame in the response. The
/// `X-Herald-Secret` header must carry the secret the stream's `welcome` did.
pub(crate) async fn post_frame(
    State(shared): State<Arc<Shared>>,
    conn: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ErrorReply> {
    let Path(conn) = conn?;
    let body = body?;
    let secret = headers
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Ok(text) = std::str::from_utf8(&body) else {
        return Err(HeraldError::bad_request("body must be UTF-8 JSON").into());
    };
    let Some(id) = ConnId::parse(&conn) else {
        return Err(not_found());
    };
    if id.gateway == shared.id {
        return match handle_owned(&shared, &id, secret.as_deref(), text).await {
            Some(reply) => Ok(json_reply(reply)),
            None => Err(not_found()),
        };
    }
    // Another gateway holds it (a load balancer sent the POST here): forward over the bus.
    let forward = SseForward {
        conn,
        secret,
        frame: text.to_string(),
    };
    let body = serde_json::to_vec(&forward).map_err(HeraldError::internal)?;
    let reply = shared
        .bus
        .request(
            &subjects::gateway_sse(&id.gateway),
            body.into(),
            shared.config.command_timeout,
        )
        .await;
    match reply {
        Ok(reply) => match serde_json::from_slice::<SseForwardReply>(&reply) {
            Ok(SseForwardReply::Handled { frame }) => Ok(json_reply(frame)),
            Ok(SseForwardReply::NotFound) => Err(not_found()),
            Err(e) => Err(HeraldError::internal(format!("bad forwarded SSE reply: {e}")).into()),
        },
        // The holding gateway is gone, and its connections with it.
        Err(BusError::NoResponders(_)) => Err(not_found()),
        Err(BusError::Timeout(_)) => Err(HeraldError::unavailable(
            "the gateway holding this connection did not answer in time; try again",
        )
        .into()),
        Err(BusError::Unavailable(detail)) => Err(HeraldError::unavailable(format!(
            "message bus unavailable, try again: {detail}"
        ))
        .into()),
    }
}

/// Hands `frame` to the SSE connection `id` of this gateway if `secret` proves the caller owns
/// it; `None` for an unknown id, a WebSocket connection or a missing or wrong secret alike.
async fn handle_owned(
    shared: &Arc<Shared>,
    id: &ConnId,
    secret: Option<&str>,
    frame: &str,
) -> Option<String> {
    let connection = shared.registry.get(id.local)?;
    if !connection.is_sse_secret(secret?) {
        return None;
    }
    // An SSE POST's response carries its reply, so it waits for an RPC's answer.
    Some(
        match session::handle_frame(shared, &connection, frame).await {
            Handled::Reply(reply) => reply,
            Handled::Call(call) => call.await,
            // The reply goes back in the POST's response; the replay, on the stream.
            Handled::Recovered(reply, replay) => {
                drop(replay);
                reply
            }
        },
    )
}

/// Answers SSE frames other gateways forward for connections this one holds.
pub(crate) async fn start_forwarding(shared: &Arc<Shared>) -> anyhow::Result<()> {
    let mut forwarded = shared
        .bus
        .subscribe(&subjects::gateway_sse(&shared.id), None)
        .await?;
    let shared = shared.clone();
    let tracker = shared.tracker.clone();
    tracker.spawn(async move {
        loop {
            let message = tokio::select! {
                _ = shared.shutdown.cancelled() => break,
                m = forwarded.next() => match m { Some(m) => m, None => break },
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let Some(reply_to) = message.reply else {
                    return;
                };
                let reply = match serde_json::from_slice::<SseForward>(&message.payload) {
                    Ok(forward) => {
                        let id = ConnId::parse(&forward.conn).filter(|id| id.gateway == shared.id);
                        let handled = match id {
                            Some(id) => {
                                let secret = forward.secret.as_deref();
                                handle_owned(&shared, &id, secret, &forward.frame).await
                            }
                            None => None,
                        };
                        match handled {
                            Some(frame) => SseForwardReply::Handled { frame },
                            None => SseForwardReply::NotFound,
                        }
                    }
                    Err(e) => SseForwardReply::Handled {
                        frame: ServerFrame::error(None, &HeraldError::internal(e)).encode(),
                    },
                };
                match serde_json::to_vec(&reply) {
                    Ok(reply) => {
                        let _ = shared.bus.publish(&reply_to, reply.into()).await;
                    }
                    Err(e) => tracing::error!(error = %e, "cannot encode a forwarded SSE reply"),
                }
            });
        }
    });
    Ok(())
}

/// The one answer for every POST that does not prove it owns an SSE connection, so nobody
/// can tell which connection ids exist.
fn not_found() -> ErrorReply {
    HeraldError::new(
        ErrorCode::NotFound,
        "no such SSE connection, or the X-Herald-Secret header does not match it; \
         open a new one with GET /sse and send the secret its welcome carried",
    )
    .into()
}

fn json_reply(frame: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], frame).into_response()
}
