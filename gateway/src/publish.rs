//! `publish` frames: a client's event to a channel it joined — permission, per-connection rate,
//! the optional publish hook, then a dispatcher accepts it like a REST notify.

use crate::backend::{self, BackendEndpoint};
use herald_core::messages::{EventIds, Publisher};
use herald_core::protocol::notify::{Notify, Targets};
use herald_core::{token, ErrorCode, HeraldError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Who may publish from a connection, how often, and which backend vets it.
#[derive(Clone, Debug)]
pub struct PublishConfig {
    /// Channel patterns any identified connection may publish to (tokens add their `publish`
    /// claim).
    pub channels: Vec<String>,
    /// Publishes per second one connection may make (bursts of as many).
    pub rate_per_sec: u32,
    /// A backend that may reject or rewrite each publish.
    pub hook: Option<BackendEndpoint>,
    /// How long the hook may take when its table does not say.
    pub hook_timeout: Duration,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            channels: Vec::new(),
            rate_per_sec: herald_core::defaults::CLIENT_PUBLISH_RATE,
            hook: None,
            hook_timeout: Duration::from_millis(herald_core::defaults::RPC_TIMEOUT_MS),
        }
    }
}

/// A connection's publish allowance: a token bucket refilled at the configured rate.
pub(crate) struct PublishBucket {
    tokens: f64,
    refilled: Instant,
}

impl PublishBucket {
    pub(crate) fn new(rate_per_sec: u32) -> Self {
        PublishBucket {
            tokens: f64::from(rate_per_sec),
            refilled: Instant::now(),
        }
    }

    /// Takes one publish, or says when the next one will be allowed.
    pub(crate) fn take(&mut self, rate_per_sec: u32) -> Result<(), HeraldError> {
        let rate = f64::from(rate_per_sec.max(1));
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.refilled).as_secs_f64() * rate).min(rate);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait_ms = ((1.0 - self.tokens) / rate * 1000.0).ceil() as u64;
        Err(HeraldError::new(
            ErrorCode::RateLimited,
            format!(
                "more than {rate_per_sec} publishes per second on this connection; retry in \
                 {wait_ms} ms"
            ),
        ))
    }
}

/// What a publish needs to know about its connection.
pub(crate) struct Publishing<'a> {
    pub user: &'a str,
    pub conn: &'a str,
    /// The token's `publish` claim.
    pub token_patterns: &'a [String],
    pub joined: bool,
}

/// What a client publishes.
pub(crate) struct Outgoing {
    pub channel: String,
    pub event: String,
    pub payload: Value,
}

/// The publish hook's body.
#[derive(Serialize)]
struct HookCall<'a> {
    channel: &'a str,
    event: &'a str,
    payload: &'a Value,
    user: &'a str,
    conn: &'a str,
}

/// The publish hook's answer.
#[derive(Deserialize)]
struct HookAnswer {
    allow: bool,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    message: Option<String>,
}

/// Checks a publish and turns it into the notify a dispatcher accepts, under a fresh id.
pub(crate) async fn prepare(
    config: &PublishConfig,
    client: &reqwest::Client,
    bucket: &mut PublishBucket,
    who: Publishing<'_>,
    outgoing: Outgoing,
    max_payload_bytes: usize,
) -> Result<(String, Notify, Publisher), HeraldError> {
    let channel = &outgoing.channel;
    if !who.joined {
        return Err(HeraldError::new(
            ErrorCode::Forbidden,
            format!("join channel {channel:?} before publishing to it"),
        ));
    }
    if !token::grants_allow(&config.channels, channel)
        && !token::grants_allow(who.token_patterns, channel)
    {
        return Err(HeraldError::new(
            ErrorCode::Forbidden,
            format!(
                "publishing to channel {channel:?} is not allowed: neither the token's `publish` \
                 claim nor the server's `client_publish` patterns match it"
            ),
        ));
    }
    bucket.take(config.rate_per_sec)?;
    let payload = match &config.hook {
        None => outgoing.payload,
        Some(hook) => vetted(config, client, hook, &who, &outgoing, max_payload_bytes).await?,
    };
    let payload = serde_json::value::to_raw_value(&payload).map_err(HeraldError::internal)?;
    if payload.get().len() > max_payload_bytes {
        return Err(HeraldError::new(
            ErrorCode::TooLarge,
            format!(
                "payload of {} bytes exceeds the limit of {max_payload_bytes} bytes",
                payload.get().len()
            ),
        ));
    }
    let notify = Notify {
        event: outgoing.event,
        targets: Targets {
            channels: vec![outgoing.channel],
            ..Targets::default()
        },
        payload,
    };
    let from = Publisher {
        user: who.user.to_string(),
        conn: who.conn.to_string(),
    };
    Ok((EventIds::fresh(), notify, from))
}

/// Asks the publish hook; answers the payload to send (the client's, or the hook's rewrite).
async fn vetted(
    config: &PublishConfig,
    client: &reqwest::Client,
    hook: &BackendEndpoint,
    who: &Publishing<'_>,
    outgoing: &Outgoing,
    max_answer_bytes: usize,
) -> Result<Value, HeraldError> {
    let call = HookCall {
        channel: &outgoing.channel,
        event: &outgoing.event,
        payload: &outgoing.payload,
        user: who.user,
        conn: who.conn,
    };
    let body = serde_json::to_vec(&call).map_err(HeraldError::internal)?;
    let timeout = hook.timeout(config.hook_timeout);
    // The answer may carry a rewritten payload, a little larger than the client's.
    let answer = backend::call(client, hook, timeout, body, max_answer_bytes * 2 + 1024).await?;
    let answer: HookAnswer = serde_json::from_value(answer).map_err(|e| {
        HeraldError::new(
            ErrorCode::Internal,
            format!("the publish hook's answer is not {{\"allow\":bool,…}}: {e}"),
        )
    })?;
    if !answer.allow {
        return Err(HeraldError::new(
            ErrorCode::Forbidden,
            answer
                .message
                .unwrap_or_else(|| "the publish hook refused this publish".into()),
        ));
    }
    Ok(answer.payload.unwrap_or_else(|| outgoing.payload.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_of_rate_then_refuses_with_a_wait() {
        let mut bucket = PublishBucket::new(3);
        for _ in 0..3 {
            bucket.take(3).unwrap();
        }
        let refused = bucket.take(3).unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert!(refused.message.contains("retry in"), "{refused}");
    }
}
