//! The WebSocket transport at `/ws`: a reader that turns frames into replies and a writer that
//! drains the outbox, pings, and closes with a reason.

use crate::admission::{refusal, Admitted, ClientIp};
use crate::outbox::{CloseReason, OutboxReceiver};
use crate::registry::Connection;
use crate::{session, Shared};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;

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
    ws: WebSocketUpgrade,
) -> Response {
    let admitted = match shared.admission.admit(ip) {
        Ok(admitted) => admitted,
        Err(error) => return refusal(error),
    };
    // Frames a little over the limit are read and answered with `too_large`; far larger ones
    // (over twice the limit) end the connection, as reading them would cost memory.
    let hard_limit = shared.config.max_frame_bytes * 2 + 4096;
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WRITE_BUFFER_BYTES * 64 + shared.config.max_frame_bytes)
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| serve(shared, socket, admitted))
}

async fn serve(shared: Arc<Shared>, socket: WebSocket, _admitted: Admitted) {
    if shared.shutdown.is_cancelled() {
        return;
    }
    let _tracked = shared.tracker.token();
    let (connection, outbox) = session::open(&shared);
    connection
        .outbox
        .offer(Utf8Bytes::from(session::welcome(&shared, &connection)));
    let (sink, stream) = socket.split();
    let writer = tokio::spawn(write(shared.clone(), connection.clone(), sink, outbox));
    read(&shared, &connection, stream).await;
    let _ = writer.await;
    let reason = connection.outbox.close_reason();
    session::close(&shared, &connection, reason.reason).await;
}

async fn read(shared: &Shared, connection: &Arc<Connection>, mut stream: SplitStream<WebSocket>) {
    let closing = connection.outbox.closer();
    loop {
        let message = tokio::select! {
            _ = closing.cancelled() => return,
            m = stream.next() => m,
        };
        match message {
            Some(Ok(Message::Text(text))) => {
                let reply = session::handle_frame(shared, connection, text.as_str()).await;
                connection.outbox.offer(Utf8Bytes::from(reply));
            }
            Some(Ok(Message::Binary(_))) => {
                let error = herald_core::HeraldError::bad_request(
                    "binary frames are not supported; send JSON text frames",
                );
                let reply = herald_core::protocol::server_frames::ServerFrame::error(None, &error);
                connection.outbox.offer(Utf8Bytes::from(reply.encode()));
            }
            Some(Ok(Message::Pong(_) | Message::Ping(_))) => connection.seen(),
            Some(Ok(Message::Close(_))) | None => break,
            Some(Err(e)) => {
                tracing::debug!(conn = %connection.id_text, error = %e, "websocket read failed");
                break;
            }
        }
    }
    connection.outbox.close(CloseReason::PEER_GONE);
}

async fn write(
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    mut sink: SplitSink<WebSocket, Message>,
    mut outbox: OutboxReceiver,
) {
    let heartbeat = shared.config.heartbeat;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let dead_after_ms = 2 * heartbeat.as_millis() as u64;
    // Built once: rebuilding the future on every wake showed in profiles.
    let closing = outbox.closer.clone();
    let closing = closing.cancelled();
    tokio::pin!(closing);
    loop {
        tokio::select! {
            biased;
            frame = outbox.frames.recv() => {
                let Some(frame) = frame else { break };
                if sink.feed(Message::Text(frame)).await.is_err() {
                    break;
                }
                // Whatever else is queued goes out in the same write.
                while let Ok(frame) = outbox.frames.try_recv() {
                    if sink.feed(Message::Text(frame)).await.is_err() {
                        break;
                    }
                }
                if sink.flush().await.is_err() {
                    break;
                }
            }
            _ = &mut closing => {
                let reason = connection.outbox.close_reason();
                if reason != CloseReason::SLOW_CONSUMER && reason != CloseReason::PEER_GONE {
                    // Replies already queued (the error before a close) still go out.
                    while let Ok(frame) = outbox.frames.try_recv() {
                        let _ = sink.feed(Message::Text(frame)).await;
                    }
                }
                if reason != CloseReason::PEER_GONE {
                    let close = CloseFrame { code: reason.code, reason: Utf8Bytes::from_static(reason.reason) };
                    let send = sink.send(Message::Close(Some(close)));
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), send).await;
                }
                break;
            }
            _ = ping.tick() => {
                if connection.silent_for_ms() > dead_after_ms {
                    connection.outbox.close(CloseReason::HEARTBEAT_TIMEOUT);
                    continue;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    connection.outbox.close(CloseReason::PEER_GONE);
}
