//! The Redis adapter: subscribes to a Redis pub/sub channel (default `herald:notify`; a name
//! with `*`, `?` or `[` is a pattern, subscribed with `PSUBSCRIBE`) whose messages are notify
//! bodies, the same JSON as `POST /v1/notify`, and publishes each one.
//!
//! Invalid messages are logged with the reason, counted (`herald_redis_invalid_total`) and
//! skipped. When Redis goes away the adapter reconnects with capped exponential backoff, logging
//! a warning on the loss and an info line on the reconnect.
//!
//! Guarantee: Redis pub/sub is at-most-once. A message published while the adapter is not
//! subscribed (down, reconnecting) is lost; Redis also drops a subscriber that falls too far
//! behind (its `client-output-buffer-limit pubsub`). A message that did arrive is published
//! before the next one is read, retried while no dispatcher can take it.
//!
//! Memory: a message is read whole before its size is checked; Redis bounds it, as it drops a
//! subscriber whose pending output passes `client-output-buffer-limit pubsub` (32 MiB hard by
//! default).
//!
//! # Layout
//! - `session`: one subscribed connection on the `redis` crate (TLS with `rediss://`, `AUTH`
//!   and database from the URL), with a `PING` keepalive.
//! - [`events`]: what is logged and counted.

pub mod events;
mod session;

use crate::retry::{publish_until_accepted, Backoff, Outcome};
use anyhow::Context;
use events::Events;
use herald_core::bus::Bus;
use herald_core::metrics::Metrics;
use herald_core::protocol::notify::Notify;
use herald_core::requests::Requester;
use session::{Incoming, Keepalive, Session, SessionEnd};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The default Redis URL.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";
/// The default channel.
pub const DEFAULT_CHANNEL: &str = "herald:notify";
/// Bytes a message may have beyond the payload limit (event name, targets, punctuation), as for
/// REST bodies.
const ENVELOPE_BYTES: usize = 256 * 1024;
/// Waits between reconnect attempts: the first, and the cap.
const RECONNECT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(5));
/// Waits between attempts to publish a message no dispatcher could take: the first, and the cap.
const RETRY_BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));
/// Quiet time on the subscription before a `PING`.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);

/// What the Redis adapter needs to know.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[[user]:password@]host[:port][/db]`, or `rediss://…` for TLS (the system's
    /// roots, or the CA bundle named by `SSL_CERT_FILE`).
    pub url: String,
    /// Channel, or pattern, to subscribe to.
    pub channel: String,
    /// Largest event payload in bytes; messages with larger ones are invalid.
    pub max_payload_bytes: usize,
}

impl RedisConfig {
    /// Checks the URL and the channel without connecting.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.client()?;
        if self.channel.is_empty() {
            anyhow::bail!("the Redis channel name is empty");
        }
        Ok(())
    }
}

impl RedisConfig {
    fn client(&self) -> anyhow::Result<redis::Client> {
        redis::Client::open(self.url.as_str()).map_err(|e| {
            anyhow::anyhow!(
                "invalid Redis URL (expected redis://[[user]:password@]host[:port][/db] or \
                 rediss://…): {e}"
            )
        })
    }
}

/// Where the adapter connects, for logs: host and port, never the credentials.
#[derive(Clone)]
pub(crate) struct Address(String);

impl Address {
    fn of(client: &redis::Client) -> Address {
        Address(client.get_connection_info().addr().to_string())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: DEFAULT_URL.into(),
            channel: DEFAULT_CHANNEL.into(),
            max_payload_bytes: herald_core::defaults::MAX_PAYLOAD_BYTES,
        }
    }
}

/// A Redis adapter subscribed and ready to run.
pub struct RedisAdapter {
    config: RedisConfig,
    client: redis::Client,
    address: Address,
    session: Session,
    events: Events,
    metrics: Metrics,
}

impl RedisAdapter {
    /// Connects and subscribes, failing at once if Redis cannot be reached or refuses: a wrong
    /// URL shows at start, not as an endless reconnect loop.
    pub async fn connect(config: RedisConfig, metrics: &Metrics) -> anyhow::Result<RedisAdapter> {
        config.validate()?;
        let client = config.client()?;
        let address = Address::of(&client);
        let session = Session::open(&client, &config.channel, keepalive())
            .await
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("cannot subscribe to Redis at {address}"))?;
        let events = Events::new(metrics);
        events.subscribed(
            &address,
            &config.channel,
            session::is_pattern(&config.channel),
        );
        Ok(RedisAdapter {
            config,
            client,
            address,
            session,
            events,
            metrics: metrics.clone(),
        })
    }

    /// Publishes every message until `shutdown`, reconnecting whenever Redis goes away. A
    /// message being published when shutdown comes is finished first.
    pub async fn run(self, bus: Arc<dyn Bus>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let RedisAdapter {
            config,
            client,
            address,
            mut session,
            events,
            metrics,
        } = self;
        let mut retry = Backoff::new(RETRY_BACKOFF.0, RETRY_BACKOFF.1);
        let requests = crate::publish::requester(bus, &metrics);
        loop {
            let reason = match serve(
                &mut session,
                &requests,
                &config,
                &events,
                &mut retry,
                &shutdown,
            )
            .await
            {
                SessionEnd::Shutdown => return Ok(()),
                SessionEnd::Lost(reason) => reason,
            };
            drop(session);
            events.lost(&address, &reason);
            session = match reconnect(&client, &address, &config, &events, &shutdown).await {
                Some(session) => session,
                None => return Ok(()),
            };
        }
    }
}

/// Publishes the session's messages until it ends.
async fn serve(
    session: &mut Session,
    requests: &Requester,
    config: &RedisConfig,
    events: &Events,
    retry: &mut Backoff,
    shutdown: &CancellationToken,
) -> SessionEnd {
    loop {
        let incoming = match session.next(shutdown).await {
            Ok(incoming) => incoming,
            Err(end) => return end,
        };
        events.received();
        let Incoming {
            channel,
            payload: body,
        } = incoming;
        let limit = max_message_bytes(config);
        if body.len() > limit {
            let len = body.len();
            events.invalid(
                &channel,
                &format!("message of {len} bytes exceeds {limit} bytes"),
                b"",
            );
            continue;
        }
        let notify = match decode(&body, config.max_payload_bytes) {
            Ok(notify) => notify,
            Err(reason) => {
                events.invalid(&channel, &reason, &body);
                continue;
            }
        };
        let mut first = true;
        let outcome = publish_until_accepted(requests, &notify, retry, shutdown, |error, delay| {
            events.retrying(error, delay, first);
            first = false;
        })
        .await;
        match outcome {
            Outcome::Accepted(_) => events.published(),
            Outcome::Refused(error) => events.refused(&channel, &error),
            Outcome::Cancelled => return SessionEnd::Shutdown,
        }
    }
}

/// Decodes and checks one message; the reason when it is not a valid notify body.
fn decode(body: &[u8], max_payload_bytes: usize) -> Result<Notify, String> {
    let notify = Notify::decode(body).map_err(|e| e.message)?;
    let size = notify.payload.get().len();
    if size > max_payload_bytes {
        return Err(format!(
            "payload of {size} bytes exceeds the limit of {max_payload_bytes} bytes"
        ));
    }
    Ok(notify)
}

/// Reconnects with capped exponential backoff; `None` on shutdown.
async fn reconnect(
    client: &redis::Client,
    address: &Address,
    config: &RedisConfig,
    events: &Events,
    shutdown: &CancellationToken,
) -> Option<Session> {
    let lost_at = Instant::now();
    let mut backoff = Backoff::new(RECONNECT_BACKOFF.0, RECONNECT_BACKOFF.1);
    let mut attempt = 0u32;
    loop {
        let delay = backoff.next_delay();
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(delay) => {}
        }
        attempt += 1;
        let opened = tokio::select! {
            _ = shutdown.cancelled() => return None,
            opened = Session::open(client, &config.channel, keepalive()) => opened,
        };
        match opened {
            Ok(session) => {
                events.reconnected(address, attempt, lost_at.elapsed());
                return Some(session);
            }
            Err(error) => events.reconnect_failed(address, attempt, &error, delay),
        }
    }
}

fn max_message_bytes(config: &RedisConfig) -> usize {
    config.max_payload_bytes + ENVELOPE_BYTES
}

fn keepalive() -> Keepalive {
    Keepalive {
        idle: KEEPALIVE_IDLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_notify_bodies_and_explains_refusals() {
        let ok = decode(
            br#"{"event":"E","targets":{"channels":["logs"]},"payload":{"n":1}}"#,
            100,
        );
        assert_eq!(ok.unwrap().targets.channels, vec!["logs"]);
        for (body, reason) in [
            (&b"not json"[..], "invalid notify body"),
            (br#"{"event":"E","targets":{}}"#, "names nobody"),
            (
                br#"{"event":"E","targets":{"broadcast":true},"payload":"0123456789"}"#,
                "exceeds the limit",
            ),
        ] {
            let error = decode(body, 10).unwrap_err();
            assert!(error.contains(reason), "{error}");
        }
    }

    #[tokio::test]
    async fn fails_fast_when_redis_is_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let config = RedisConfig {
            url: format!("redis://127.0.0.1:{port}"),
            ..Default::default()
        };
        let error = RedisAdapter::connect(config, &Metrics::new())
            .await
            .err()
            .unwrap();
        assert!(
            format!("{error:#}").contains("cannot subscribe to Redis at 127.0.0.1"),
            "{error:#}"
        );
    }
}
