//! The SSE transport: `GET /sse` streams server frames, `POST /sse/{conn}` carries client
//! frames and answers with the reply frame, forwarded over the bus when another gateway holds
//! the connection.

use crate::admission::{refusal, Admitted, ClientIp};
use crate::outbox::OutboxReceiver;
use crate::registry::Connection;
use crate::session::{self, bus_error};
use crate::Shared;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use herald_core::messages::SseForward;
use herald_core::protocol::server_frames::ServerFrame;
use herald_core::subjects::{self, ConnId};
use herald_core::HeraldError;
use std::convert::Infallible;
use std::sync::Arc;

/// `GET /sse`: opens a connection whose server frames arrive as `data:` lines.
pub(crate) async fn stream(State(shared): State<Arc<Shared>>, ClientIp(ip): ClientIp) -> Response {
    if shared.shutdown.is_cancelled() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let admitted = match shared.admission.admit(ip) {
        Ok(admitted) => admitted,
        Err(error) => return refusal(error),
    };
    let (connection, outbox) = session::open(&shared);
    let welcome = session::welcome(&shared, &connection);
    let frames = frames(
        ConnectionGuard {
            shared: shared.clone(),
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

/// Closes the connection when the response stream is dropped (the client went away).
struct ConnectionGuard {
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    _tracked: tokio_util::task::task_tracker::TaskTrackerToken,
    _admitted: Admitted,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let shared = self.shared.clone();
        let connection = self.connection.clone();
        let reason = connection.outbox.close_reason();
        connection.outbox.close(reason);
        let tracked = shared.tracker.token();
        tokio::spawn(async move {
            session::close(&shared, &connection, reason.reason).await;
            drop(tracked);
        });
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
        tokio::select! {
            biased;
            frame = outbox.frames.recv() => {
                let frame = frame?;
                Some((Ok(Event::default().data(frame.as_str())), (guard, None, outbox)))
            }
            // Closing ends the stream; the client's EventSource reconnects if it wants to.
            _ = outbox.closer.cancelled() => None,
        }
    })
}

/// `POST /sse/{conn}`: one client frame in the body, the reply frame in the response.
pub(crate) async fn post_frame(
    State(shared): State<Arc<Shared>>,
    Path(conn): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return reply_error(
            StatusCode::BAD_REQUEST,
            HeraldError::bad_request("body must be UTF-8 JSON"),
        );
    };
    let Some(id) = ConnId::parse(&conn) else {
        return unknown_connection(&conn);
    };
    if id.gateway == shared.id {
        return match shared.registry.get(id.seq) {
            Some(connection) => json_reply(session::handle_frame(&shared, &connection, text).await),
            None => unknown_connection(&conn),
        };
    }
    // Another gateway holds it (a load balancer sent the POST here): forward over the bus.
    let forward = SseForward {
        conn: conn.clone(),
        frame: text.to_string(),
    };
    let body = match serde_json::to_vec(&forward) {
        Ok(b) => b,
        Err(e) => return reply_error(StatusCode::INTERNAL_SERVER_ERROR, HeraldError::internal(e)),
    };
    match shared
        .bus
        .request(
            &subjects::gateway_sse(&id.gateway),
            body.into(),
            shared.config.command_timeout,
        )
        .await
    {
        Ok(reply) => match String::from_utf8(reply.to_vec()) {
            Ok(frame) => json_reply(frame),
            Err(e) => reply_error(StatusCode::INTERNAL_SERVER_ERROR, HeraldError::internal(e)),
        },
        Err(herald_core::bus::BusError::NoResponders(_)) => unknown_connection(&conn),
        Err(e) => reply_error(StatusCode::SERVICE_UNAVAILABLE, bus_error(e)),
    }
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
                    Ok(forward) => match ConnId::parse(&forward.conn)
                        .and_then(|id| shared.registry.get(id.seq))
                    {
                        Some(connection) => {
                            session::handle_frame(&shared, &connection, &forward.frame).await
                        }
                        None => ServerFrame::error(None, &unknown(&forward.conn)).encode(),
                    },
                    Err(e) => ServerFrame::error(None, &HeraldError::internal(e)).encode(),
                };
                let _ = shared.bus.publish(&reply_to, reply.into()).await;
            });
        }
    });
    Ok(())
}

fn unknown(conn: &str) -> HeraldError {
    HeraldError::bad_request(format!(
        "unknown connection {:?}: it closed or never existed; open a new one with GET /sse",
        conn.chars().take(40).collect::<String>()
    ))
}

fn unknown_connection(conn: &str) -> Response {
    reply_error(StatusCode::NOT_FOUND, unknown(conn))
}

fn reply_error(status: StatusCode, error: HeraldError) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        ServerFrame::error(None, &error).encode(),
    )
        .into_response()
}

fn json_reply(frame: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], frame).into_response()
}
