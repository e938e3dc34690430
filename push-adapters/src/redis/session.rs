//! One subscribed Redis connection, on the `redis` crate: connect (TLS, `AUTH` and database from
//! the URL), `SUBSCRIBE` or `PSUBSCRIBE`, then hand out messages, pinging when the line is quiet
//! so a dead server is noticed.

use bytes::Bytes;
use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long connecting, authenticating and subscribing may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Timing of the keepalive: a `PING` after `idle` without messages, and the connection counts as
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

/// A message published on `channel`.
#[derive(Debug)]
pub struct Incoming {
    /// The channel it was published on.
    pub channel: String,
    /// Its body.
    pub payload: Bytes,
}

/// Whether `channel` is a pattern (subscribed with `PSUBSCRIBE`).
pub fn is_pattern(channel: &str) -> bool {
    channel.contains(['*', '?', '['])
}

/// A connection subscribed to one channel or pattern.
pub struct Session {
    sink: PubSubSink,
    messages: PubSubStream,
    keepalive: Keepalive,
}

impl Session {
    /// Connects with `client`'s URL and subscribes to `channel`.
    pub async fn open(
        client: &redis::Client,
        channel: &str,
        keepalive: Keepalive,
    ) -> Result<Session, String> {
        let handshake = async {
            let (mut sink, messages) = client.get_async_pubsub().await?.split();
            if is_pattern(channel) {
                sink.psubscribe(channel).await?;
            } else {
                sink.subscribe(channel).await?;
            }
            Ok::<_, redis::RedisError>(Session {
                sink,
                messages,
                keepalive,
            })
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {HANDSHAKE_TIMEOUT:?}")),
        }
    }

    /// The next message; cancel-safe. Ends on shutdown or when the connection is lost (closed,
    /// or a `PING` sent after a quiet `idle` got no answer within `idle`).
    pub async fn next(&mut self, shutdown: &CancellationToken) -> Result<Incoming, SessionEnd> {
        loop {
            let quiet = tokio::select! {
                _ = shutdown.cancelled() => return Err(SessionEnd::Shutdown),
                next = tokio::time::timeout(self.keepalive.idle, self.messages.next()) => next,
            };
            match quiet {
                Ok(Some(message)) => {
                    return Ok(Incoming {
                        channel: message.get_channel_name().to_string(),
                        payload: Bytes::copy_from_slice(message.get_payload_bytes()),
                    })
                }
                Ok(None) => return Err(SessionEnd::Lost("connection closed".into())),
                Err(_) => self.ping(shutdown).await?,
            }
        }
    }

    async fn ping(&mut self, shutdown: &CancellationToken) -> Result<(), SessionEnd> {
        let idle = self.keepalive.idle;
        // In subscribe mode Redis answers a PING with an array; any answer will do.
        let answer = tokio::select! {
            _ = shutdown.cancelled() => return Err(SessionEnd::Shutdown),
            answer = tokio::time::timeout(idle, self.sink.ping::<redis::Value>()) => answer,
        };
        match answer {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(SessionEnd::Lost(format!("PING failed: {e}"))),
            Err(_) => Err(SessionEnd::Lost(format!(
                "no answer to PING within {idle:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// A fake Redis that confirms the subscription (RESP2), then answers a `PING` only if
    /// `answers_pings`, and publishes one message after the first `PING`.
    async fn fake_redis(answers_pings: bool) -> (redis::Client, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut pings = 0;
            while let Ok(Some(line)) = lines.next_line().await {
                if line.eq_ignore_ascii_case("CLIENT") {
                    // The crate names itself (CLIENT SETINFO) on connect.
                    write.write_all(b"+OK\r\n").await.unwrap();
                } else if line.eq_ignore_ascii_case("SUBSCRIBE") {
                    let _ = lines.next_line().await; // $len
                    let _ = lines.next_line().await; // channel
                    write
                        .write_all(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n")
                        .await
                        .unwrap();
                } else if line.eq_ignore_ascii_case("PING") {
                    pings += 1;
                    if answers_pings && pings == 1 {
                        write
                            .write_all(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n")
                            .await
                            .unwrap();
                    }
                }
            }
        });
        let client =
            redis::Client::open(format!("redis://127.0.0.1:{port}/?protocol=resp2")).unwrap();
        (client, task)
    }

    const QUICK: Keepalive = Keepalive {
        idle: Duration::from_millis(200),
    };

    #[tokio::test]
    async fn a_silent_server_is_noticed_through_ping() {
        let (client, server) = fake_redis(false).await;
        let mut session = Session::open(&client, "c", QUICK).await.unwrap();
        let end = session.next(&CancellationToken::new()).await.unwrap_err();
        assert!(
            matches!(&end, SessionEnd::Lost(reason) if reason.contains("no answer to PING")),
            "{end:?}"
        );
        server.abort();
    }

    #[tokio::test]
    async fn an_answered_ping_keeps_the_session_and_shutdown_ends_it() {
        let (client, server) = fake_redis(true).await;
        let mut session = Session::open(&client, "c", QUICK).await.unwrap();
        let shutdown = CancellationToken::new();
        let message = session.next(&shutdown).await.unwrap();
        assert_eq!(
            (message.channel.as_str(), &message.payload[..]),
            ("c", &b"hi"[..])
        );
        shutdown.cancel();
        assert!(matches!(
            session.next(&shutdown).await,
            Err(SessionEnd::Shutdown)
        ));
        server.abort();
    }

    #[test]
    fn patterns_are_told_by_glob_characters() {
        assert!(is_pattern("herald:*"));
        assert!(is_pattern("room-?"));
        assert!(is_pattern("[ab]"));
        assert!(!is_pattern("herald:notify"));
    }
}
