//! The WebSocket transport, at `/ws` (Herald's protocol) and `/app/{key}` (Pusher's): a reader
//! that turns frames into replies and a writer that drains the outbox, pings, and closes with
//! a reason.

use crate::admission::{refusal, Admitted, ClientIp};
use crate::http_error::ErrorReply;
use crate::outbox::{CloseReason, OutboxReceiver};
use crate::pusher::{self, PusherSession};
use crate::registry::Connection;
use crate::session::Handled;
use crate::{delivery, session, Shared};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use herald_core::pusher::PusherApp;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Bytes read from the socket at a time: small, because idle connections are the common case
/// and each holds this buffer, fully touched (tungstenite zero-fills it before each read; its
/// default is 128 KiB). Client frames are small; a larger one just takes several reads.
const READ_BUFFER_BYTES: usize = 1024;
/// Bytes of outgoing frames gathered before a write; frames queued together go out together.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// `GET /ws`: upgrades to a WebSocket speaking client protocol v1.
pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ClientIp(ip): ClientIp,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ErrorReply> {
    let ws = ws?;
    let admitted = match shared.admission.admit(ip) {
        Ok(admitted) => admitted,
        Err(error) => return Ok(refusal(error)),
    };
    Ok(limited(ws, &shared).on_upgrade(move |socket| serve(shared, socket, ip, admitted, None)))
}

/// The `/app/{key}` query: the protocol version the client speaks.
#[derive(serde::Deserialize)]
pub(crate) struct PusherQuery {
    protocol: Option<String>,
}

/// `GET /app/{key}`: upgrades to a WebSocket speaking Pusher's protocol for the app of `key`;
/// an unknown key or protocol is told so in Pusher's words (an error frame, a 4xxx close).
pub(crate) async fn upgrade_pusher(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    Query(query): Query<PusherQuery>,
    ClientIp(ip): ClientIp,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ErrorReply> {
    let ws = ws?;
    let app = match pusher::admit(&shared, &key, query.protocol.as_deref()) {
        Ok(app) => app,
        Err(refused) => {
            return Ok(ws.on_upgrade(move |mut socket| async move {
                let (frame, code) = refused.frames();
                let _ = socket.send(Message::Text(Utf8Bytes::from(frame))).await;
                let close = CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static("refused"),
                };
                let _ = socket.send(Message::Close(Some(close))).await;
            }))
        }
    };
    let admitted = match shared.admission.admit(ip) {
        Ok(admitted) => admitted,
        Err(error) => return Ok(refusal(error)),
    };
    Ok(limited(ws, &shared)
        .on_upgrade(move |socket| serve(shared, socket, ip, admitted, Some(app))))
}

/// The upgrade with this gateway's buffer sizes and frame limits.
fn limited(ws: WebSocketUpgrade, shared: &Shared) -> WebSocketUpgrade {
    let hard_limit = session::hard_frame_limit(shared);
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WRITE_BUFFER_BYTES * 64 + shared.config.max_frame_bytes)
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
}

/// Which protocol a connection speaks, with the state that protocol keeps.
enum Speaker {
    Herald,
    Pusher(PusherSession),
}

async fn serve(
    shared: Arc<Shared>,
    socket: WebSocket,
    peer: Option<IpAddr>,
    _admitted: Admitted,
    app: Option<Arc<PusherApp>>,
) {
    if shared.shutdown.is_cancelled() {
        return;
    }
    let _tracked = shared.tracker.token();
    let (mut speaker, connection, outbox) = match app {
        Some(app) => {
            let (connection, outbox) = session::open(&shared, session::Transport::Pusher);
            let pusher = PusherSession::new(app, &connection);
            connection
                .outbox
                .offer(Utf8Bytes::from(pusher.established(&shared)));
            (Speaker::Pusher(pusher), connection, outbox)
        }
        None => {
            let (connection, outbox) = session::open(&shared, session::Transport::WebSocket);
            session::set_peer(&connection, peer).await;
            connection
                .outbox
                .offer(Utf8Bytes::from(session::welcome(&shared, &connection)));
            (Speaker::Herald, connection, outbox)
        }
    };
    let closing_as = match speaker {
        Speaker::Herald => std::convert::identity,
        Speaker::Pusher(_) => pusher::close_reason,
    };
    let (sink, stream) = socket.split();
    let reader_done = CancellationToken::new();
    let writer = tokio::spawn(write(
        shared.clone(),
        connection.clone(),
        (sink, closing_as),
        outbox,
        reader_done.clone(),
    ));
    read(&shared, &connection, stream, &mut speaker).await;
    reader_done.cancel();
    // The reader returns as soon as the connection must close: presence learns at once, while
    // the writer says goodbye (within its grace) and drops the socket.
    let reason = connection.outbox.close_reason();
    match speaker {
        Speaker::Herald => session::close(&shared, &connection, reason.reason).await,
        Speaker::Pusher(pusher) => pusher.close(&shared, &connection, reason.reason),
    }
    let _ = writer.await;
}

async fn read(
    shared: &Arc<Shared>,
    connection: &Arc<Connection>,
    mut stream: SplitStream<WebSocket>,
    speaker: &mut Speaker,
) {
    let closing = connection.outbox.closer();
    let reason = loop {
        let message = tokio::select! {
            _ = closing.cancelled() => return,
            m = stream.next() => m,
        };
        match message {
            Some(Ok(Message::Text(text))) => match speaker {
                Speaker::Pusher(pusher) => {
                    for reply in pusher.handle(shared, connection, text.as_str()).await {
                        delivery::queue(shared, connection, Utf8Bytes::from(reply));
                    }
                }
                Speaker::Herald => answer(shared, connection, text.as_str()).await,
            },
            Some(Ok(Message::Binary(_))) => break UNSUPPORTED_DATA,
            Some(Ok(Message::Pong(_) | Message::Ping(_))) => connection.seen(),
            Some(Ok(Message::Close(_))) | None => break CloseReason::PEER_GONE,
            Some(Err(e)) => {
                tracing::debug!(conn = %connection.id_text, error = %e, "websocket read failed");
                break read_error_reason(e);
            }
        }
    };
    connection.outbox.close(reason);
}

/// Handles one client frame of Herald's protocol: queues its reply now, or when the backend
/// answers an RPC (the socket keeps reading meanwhile).
async fn answer(shared: &Arc<Shared>, connection: &Arc<Connection>, text: &str) {
    match session::handle_frame(shared, connection, text).await {
        Handled::Reply(reply) => {
            delivery::queue(shared, connection, Utf8Bytes::from(reply));
        }
        Handled::Recovered(reply, replay) => {
            delivery::queue(shared, connection, Utf8Bytes::from(reply));
            drop(replay);
        }
        // The answer is queued when it comes (unless the connection closed meanwhile).
        Handled::Call(call) => {
            let (shared, connection) = (shared.clone(), connection.clone());
            shared.clone().tracker.spawn(async move {
                let reply = call.await;
                delivery::queue(&shared, &connection, Utf8Bytes::from(reply));
            });
        }
    }
}

/// The protocol speaks JSON text frames only (close 1003).
const UNSUPPORTED_DATA: CloseReason = CloseReason {
    code: 1003,
    reason: "binary frames are not supported; send JSON text frames",
};
/// A frame over the hard limit (close 1009): reading it would cost memory.
const FRAME_TOO_LARGE: CloseReason = CloseReason {
    code: 1009,
    reason: "frame far over the size limit",
};
/// A text frame that is not UTF-8 (close 1007).
const INVALID_UTF8: CloseReason = CloseReason {
    code: 1007,
    reason: "text frame is not valid UTF-8",
};
/// A frame that breaks RFC 6455 (close 1002): unmasked, reserved bits, bad opcode, ...
const PROTOCOL_ERROR: CloseReason = CloseReason {
    code: 1002,
    reason: "WebSocket protocol error",
};

/// Why reading failed, as the close the client gets: a close frame with the code RFC 6455 names
/// for the problem, or none when the peer is gone. axum wraps tungstenite's error, which must be
/// the version axum uses for the downcast to match (an unknown error counts as a peer gone).
fn read_error_reason(error: axum::Error) -> CloseReason {
    use tungstenite::error::{Error, ProtocolError};
    match error.into_inner().downcast::<Error>().map(|e| *e) {
        Ok(Error::Capacity(_)) => FRAME_TOO_LARGE,
        Ok(Error::Utf8(_)) => INVALID_UTF8,
        Ok(Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => CloseReason::PEER_GONE,
        Ok(Error::Protocol(_)) => PROTOCOL_ERROR,
        _ => CloseReason::PEER_GONE,
    }
}

/// How long a slow consumer's close frame may take to write: its socket is full by definition,
/// so this is a courtesy to a client that happens to read again right now, not a wait.
const SLOW_CONSUMER_CLOSE_GRACE: Duration = Duration::from_millis(100);
/// How long other closes may take to flush queued replies and the close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What the writer does next.
enum Step {
    Frame(Utf8Bytes),
    Ping,
}

/// How a connection's protocol words a close.
type ClosingAs = fn(CloseReason) -> CloseReason;

async fn write(
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    (mut sink, closing_as): (SplitSink<WebSocket, Message>, ClosingAs),
    mut outbox: OutboxReceiver,
    reader_done: CancellationToken,
) {
    let heartbeat = shared.config.heartbeat;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let dead_after_ms = 2 * heartbeat.as_millis() as u64;
    // Built once: rebuilding the future on every wake showed in profiles.
    let closing = outbox.closer.clone();
    let closing = closing.cancelled();
    tokio::pin!(closing);
    loop {
        let step = tokio::select! {
            biased;
            frame = outbox.recv() => match frame {
                Some(frame) => Step::Frame(frame),
                None => break,
            },
            _ = &mut closing => break,
            _ = ping.tick() => Step::Ping,
        };
        if let Step::Ping = step {
            if connection.silent_for_ms() > dead_after_ms {
                connection.outbox.close(CloseReason::HEARTBEAT_TIMEOUT);
                break;
            }
        }
        // A write waits for a client that does not read: a close request (slow consumer,
        // heartbeat timeout, backend) interrupts it instead of waiting for the client.
        let write = write_step(&mut sink, &mut outbox, step);
        tokio::pin!(write);
        let written = tokio::select! {
            biased;
            written = &mut write => written,
            _ = &mut closing => {
                if connection.outbox.close_reason() == CloseReason::SLOW_CONSUMER {
                    break;
                }
                // Finish the write under way (it may be the reply that asked for the close),
                // then say goodbye.
                let _ = tokio::time::timeout(CLOSE_GRACE, write).await;
                break;
            }
        };
        if written.is_err() {
            break;
        }
    }
    connection.outbox.close(CloseReason::PEER_GONE);
    let reason = connection.outbox.close_reason();
    let grace = match reason {
        CloseReason::PEER_GONE => return,
        CloseReason::SLOW_CONSUMER => SLOW_CONSUMER_CLOSE_GRACE,
        _ => CLOSE_GRACE,
    };
    let goodbye = async {
        if reason != CloseReason::SLOW_CONSUMER {
            // The reply that asked for the close (the last refused ident) is queued after the
            // request to close: once the reader is done, every reply is in the queue.
            reader_done.cancelled().await;
            while let Some(frame) = outbox.try_recv() {
                sink.feed(Message::Text(frame)).await?;
            }
        }
        let said = closing_as(reason);
        let close = CloseFrame {
            code: said.code,
            reason: Utf8Bytes::from_static(said.reason),
        };
        sink.send(Message::Close(Some(close))).await
    };
    // Dropping the sink (with the reader's half, already gone) drops the TCP connection.
    let _ = tokio::time::timeout(grace, goodbye).await;
}

/// Writes one frame, with whatever else is queued, in one flush; or a ping.
async fn write_step(
    sink: &mut SplitSink<WebSocket, Message>,
    outbox: &mut OutboxReceiver,
    step: Step,
) -> Result<(), axum::Error> {
    match step {
        Step::Frame(frame) => {
            sink.feed(Message::Text(frame)).await?;
            // Whatever else is queued goes out in the same write.
            while let Some(frame) = outbox.try_recv() {
                sink.feed(Message::Text(frame)).await?;
            }
            sink.flush().await
        }
        Step::Ping => sink.send(Message::Ping(Default::default())).await,
    }
}
