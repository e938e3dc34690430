//! One subscribed connection to Redis: connect, `AUTH`, `SUBSCRIBE` or `PSUBSCRIBE`, then hand
//! out messages, pinging when the line is quiet so a dead server is noticed.
//!
//! A reader task pulls frames off the socket into a small bounded queue; the session reads that
//! queue (cancel-safe, unlike a half-read frame) and owns the write half for `PING`.

use super::address::Address;
use super::frame::{command, Frame, FrameReader};
use bytes::Bytes;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long connecting, authenticating and subscribing may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames read ahead of the session: small, so a slow session slows the socket.
const READ_AHEAD: usize = 32;

/// Timing of the keepalive: a `PING` after `idle` without frames, and the connection counts as
/// lost when the `PING` gets no answer within `idle` again.
#[derive(Debug, Clone, Copy)]
pub struct Keepalive {
    /// Quiet time before a `PING`, and time allowed for its answer.
    pub idle: Duration,
}

/// Why a session ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// Shutdown was asked for.
    Shutdown,
    /// The connection is gone; the reason, for the log.
    Lost(String),
}

/// What the session hands out.
#[derive(Debug)]
pub enum Incoming {
    /// A message published on `channel`.
    Message {
        /// The channel it was published on.
        channel: String,
        /// Its body.
        payload: Bytes,
    },
    /// A message too large to read, skipped.
    TooLarge {
        /// The channel it was published on.
        channel: String,
        /// Its size in bytes.
        len: u64,
    },
}

/// Whether `channel` is a pattern (subscribed with `PSUBSCRIBE`).
pub fn is_pattern(channel: &str) -> bool {
    channel.contains(['*', '?', '['])
}

/// A connection subscribed to one channel or pattern.
pub struct Session {
    frames: mpsc::Receiver<io::Result<Frame>>,
    writer: OwnedWriteHalf,
    reader_task: JoinHandle<()>,
    keepalive: Keepalive,
    last_seen: Instant,
    ping_sent: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader_task.abort();
    }
}

impl Session {
    /// Connects, authenticates if the address has credentials, and subscribes to `channel`.
    /// Bulk strings over `max_bulk` bytes are skipped and reported as [`Incoming::TooLarge`].
    pub async fn open(
        address: &Address,
        channel: &str,
        max_bulk: usize,
        keepalive: Keepalive,
    ) -> io::Result<Session> {
        tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            Self::handshake(address, channel, max_bulk, keepalive),
        )
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer from Redis at {address} within {HANDSHAKE_TIMEOUT:?}"),
            )
        })?
    }

    async fn handshake(
        address: &Address,
        channel: &str,
        max_bulk: usize,
        keepalive: Keepalive,
    ) -> io::Result<Session> {
        let stream = TcpStream::connect((address.host.as_str(), address.port)).await?;
        stream.set_nodelay(true)?;
        let (read_half, mut writer) = stream.into_split();
        let mut reader = FrameReader::new(BufReader::new(read_half), max_bulk);
        if let Some(password) = &address.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &address.username {
                args.push(user.as_bytes());
            }
            args.push(password.as_bytes());
            writer.write_all(&command(&args)).await?;
            match reader.read_frame().await? {
                Some(Frame::Simple(_)) => {}
                Some(Frame::Error(e)) => return Err(refused(format!("Redis refused AUTH: {e}"))),
                other => return Err(refused(format!("unexpected answer to AUTH: {other:?}"))),
            }
        }
        let verb: &[u8] = if is_pattern(channel) {
            b"PSUBSCRIBE"
        } else {
            b"SUBSCRIBE"
        };
        writer
            .write_all(&command(&[verb, channel.as_bytes()]))
            .await?;
        match reader.read_frame().await? {
            Some(Frame::Array(items))
                if items.first().and_then(Frame::as_bytes).is_some_and(|kind| {
                    kind.eq_ignore_ascii_case(b"subscribe")
                        || kind.eq_ignore_ascii_case(b"psubscribe")
                }) => {}
            Some(Frame::Error(e)) => {
                return Err(refused(format!("Redis refused the subscription: {e}")))
            }
            other => {
                return Err(refused(format!(
                    "unexpected answer to the subscription: {other:?}"
                )))
            }
        }
        let (tx, frames) = mpsc::channel(READ_AHEAD);
        let reader_task = tokio::spawn(async move {
            loop {
                let frame = reader.read_frame().await;
                let end = !matches!(frame, Ok(Some(_)));
                let item = match frame {
                    Ok(Some(frame)) => Ok(frame),
                    Ok(None) => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "Redis closed the connection",
                    )),
                    Err(e) => Err(e),
                };
                if tx.send(item).await.is_err() || end {
                    return;
                }
            }
        });
        Ok(Session {
            frames,
            writer,
            reader_task,
            keepalive,
            last_seen: Instant::now(),
            ping_sent: false,
        })
    }

    /// The next message, or why the session ended.
    pub async fn next(&mut self, shutdown: &CancellationToken) -> Result<Incoming, SessionEnd> {
        loop {
            let deadline = self.last_seen + self.keepalive.idle;
            let frame = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Err(SessionEnd::Shutdown),
                frame = self.frames.recv() => frame,
                _ = tokio::time::sleep_until(deadline) => {
                    if self.ping_sent {
                        return Err(SessionEnd::Lost(format!(
                            "no answer to PING within {:?}",
                            self.keepalive.idle
                        )));
                    }
                    self.ping().await?;
                    continue;
                }
            };
            let frame = match frame {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Err(SessionEnd::Lost(e.to_string())),
                None => return Err(SessionEnd::Lost("reader stopped".into())),
            };
            self.last_seen = Instant::now();
            self.ping_sent = false;
            if let Some(incoming) = classify(frame) {
                return Ok(incoming);
            }
        }
    }

    async fn ping(&mut self) -> Result<(), SessionEnd> {
        let ping = command(&[b"PING"]);
        match tokio::time::timeout(self.keepalive.idle, self.writer.write_all(&ping)).await {
            Ok(Ok(())) => {
                self.ping_sent = true;
                self.last_seen = Instant::now();
                Ok(())
            }
            Ok(Err(e)) => Err(SessionEnd::Lost(format!("cannot send PING: {e}"))),
            Err(_) => Err(SessionEnd::Lost("cannot send PING: socket blocked".into())),
        }
    }
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, message)
}

/// A message, or `None` for frames that only keep the session going (confirmations, pongs).
fn classify(frame: Frame) -> Option<Incoming> {
    let Frame::Array(mut items) = frame else {
        if let Frame::Error(e) = frame {
            tracing::warn!(error = %e, "Redis sent an error on the subscription");
        }
        return None;
    };
    let kind = items.first().and_then(Frame::as_bytes)?;
    let (channel_at, payload_at) = if kind.eq_ignore_ascii_case(b"message") && items.len() == 3 {
        (1, 2)
    } else if kind.eq_ignore_ascii_case(b"pmessage") && items.len() == 4 {
        (2, 3)
    } else {
        return None;
    };
    let channel = items[channel_at]
        .as_bytes()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default();
    match items.swap_remove(payload_at) {
        Frame::Bulk(payload) => Some(Incoming::Message { channel, payload }),
        Frame::TooLarge(len) => Some(Incoming::TooLarge { channel, len }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(text.as_bytes()))
    }

    /// A fake Redis that confirms the subscription, then answers `PING`s with `pong` only if
    /// `answers_pings`, and publishes one message after the first `PING`.
    async fn fake_redis(answers_pings: bool) -> (Address, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address =
            Address::parse(&format!("redis://{}", listener.local_addr().unwrap())).unwrap();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = tokio::io::BufReader::new(read).lines();
            let mut pings = 0;
            while let Ok(Some(line)) = lines.next_line().await {
                if line.eq_ignore_ascii_case("SUBSCRIBE") {
                    write
                        .write_all(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n")
                        .await
                        .unwrap();
                } else if line.eq_ignore_ascii_case("PING") {
                    pings += 1;
                    if answers_pings && pings == 1 {
                        write
                            .write_all(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
                            .await
                            .unwrap();
                        write
                            .write_all(b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n")
                            .await
                            .unwrap();
                    }
                }
            }
        });
        (address, server)
    }

    #[tokio::test]
    async fn a_silent_server_is_noticed_through_ping() {
        let (address, _server) = fake_redis(false).await;
        let keepalive = Keepalive {
            idle: Duration::from_millis(100),
        };
        let mut session = Session::open(&address, "c", 1024, keepalive).await.unwrap();
        let started = std::time::Instant::now();
        let end = session.next(&CancellationToken::new()).await.unwrap_err();
        assert!(
            matches!(&end, SessionEnd::Lost(reason) if reason.contains("no answer to PING")),
            "{end:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn an_answered_ping_keeps_the_session_and_shutdown_ends_it() {
        let (address, _server) = fake_redis(true).await;
        let keepalive = Keepalive {
            idle: Duration::from_millis(100),
        };
        let mut session = Session::open(&address, "c", 1024, keepalive).await.unwrap();
        let shutdown = CancellationToken::new();
        let incoming = session.next(&shutdown).await.unwrap();
        assert!(matches!(incoming, Incoming::Message { payload, .. } if payload == "hi"));
        shutdown.cancel();
        assert!(matches!(
            session.next(&shutdown).await,
            Err(SessionEnd::Shutdown)
        ));
    }

    #[test]
    fn patterns_are_told_by_glob_characters() {
        assert!(!is_pattern("herald:notify"));
        assert!(is_pattern("herald:*"));
        assert!(is_pattern("herald:notif?"));
        assert!(is_pattern("herald:[ab]"));
    }

    #[test]
    fn picks_messages_out_of_subscribe_mode_frames() {
        let message = classify(Frame::Array(vec![bulk("message"), bulk("c"), bulk("body")]));
        assert!(
            matches!(message, Some(Incoming::Message { channel, payload }) if channel == "c" && payload == "body")
        );
        let pmessage = classify(Frame::Array(vec![
            bulk("pmessage"),
            bulk("c*"),
            bulk("c1"),
            bulk("x"),
        ]));
        assert!(matches!(pmessage, Some(Incoming::Message { channel, .. }) if channel == "c1"));
        let large = classify(Frame::Array(vec![
            bulk("message"),
            bulk("c"),
            Frame::TooLarge(9),
        ]));
        assert!(matches!(large, Some(Incoming::TooLarge { len: 9, .. })));
        assert!(classify(Frame::Array(vec![
            bulk("subscribe"),
            bulk("c"),
            Frame::Integer(1)
        ]))
        .is_none());
        assert!(classify(Frame::Array(vec![bulk("pong"), bulk("")])).is_none());
        assert!(classify(Frame::Simple("PONG".into())).is_none());
        assert!(classify(Frame::Error("ERR x".into())).is_none());
    }
}
