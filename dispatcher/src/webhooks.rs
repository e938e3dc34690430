//! Webhooks: each `[[webhook]]` reads the lifecycle event log in batches and POSTs them, signed,
//! retrying with capped backoff until the backend answers 2xx; only then is the batch
//! acknowledged, so every event is delivered at least once.

use herald_core::event_log::{EventLog, EventReader};
use herald_core::lifecycle::{Kind, LifecycleEvent};
use herald_core::messages::Delivery;
use herald_core::metrics::Metric;
use herald_core::signature;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// First wait after a failed delivery; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// One `[[webhook]]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL the batches are POSTed to.
    pub url: String,
    /// Key of the `X-Herald-Signature` HMAC; at least 16 bytes.
    pub secret: String,
    /// Event types to send (`connect`, `disconnect`, `join`, `leave`, `online`, `offline`,
    /// `occupied`, `vacated`, `gateway_lost`); all when absent.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Most events in one POST.
    #[serde(default = "default_batch_max")]
    pub batch_max: usize,
    /// Longest wait for a batch to fill before it is sent, ms.
    #[serde(default = "default_batch_ms")]
    pub batch_ms: u64,
    /// Set for a Pusher app's webhook: only that app's channels, in Pusher's format.
    #[serde(skip)]
    pub pusher: Option<PusherHook>,
}

/// The Pusher app a webhook speaks for: its events only, in Pusher's body, signed with
/// `X-Pusher-Key` / `X-Pusher-Signature` (hex HMAC-SHA256 of the body under the app secret).
#[derive(Clone, Debug)]
pub struct PusherHook {
    /// The app id.
    pub app_id: String,
    /// The app key, sent as `X-Pusher-Key`.
    pub key: String,
}

/// The lifecycle kinds Pusher webhooks are made of.
const PUSHER_KINDS: [Kind; 5] = [
    Kind::Occupied,
    Kind::Vacated,
    Kind::MemberAdded,
    Kind::MemberRemoved,
    Kind::ClientEvent,
];

fn default_batch_max() -> usize {
    100
}

fn default_batch_ms() -> u64 {
    200
}

impl WebhookConfig {
    /// The webhook of a Pusher app with a `webhook_url`.
    pub fn pusher(app: &herald_core::pusher::PusherApp) -> Option<WebhookConfig> {
        Some(WebhookConfig {
            url: app.webhook_url.clone()?,
            secret: app.secret.clone(),
            events: Some(
                PUSHER_KINDS
                    .iter()
                    .map(|k| k.as_str().to_string())
                    .collect(),
            ),
            batch_max: default_batch_max(),
            batch_ms: default_batch_ms(),
            pusher: Some(PusherHook {
                app_id: app.id.clone(),
                key: app.key.clone(),
            }),
        })
    }

    /// Checks the table; the message names what to fix.
    pub fn check(&self) -> Result<(), String> {
        signature::check_endpoint(&self.url, &self.secret)?;
        if !(1..=1000).contains(&self.batch_max) {
            return Err("`batch_max` must be between 1 and 1000".into());
        }
        if !(1..=60_000).contains(&self.batch_ms) {
            return Err("`batch_ms` must be between 1 and 60000".into());
        }
        for name in self.events.iter().flatten() {
            if Kind::parse(name).is_none() {
                let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                return Err(format!(
                    "unknown event type {name:?} in `events`; known: {}",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The event types this webhook wants.
    pub fn kinds(&self) -> HashSet<Kind> {
        match &self.events {
            None => Kind::ALL.into_iter().collect(),
            Some(names) => names.iter().filter_map(|n| Kind::parse(n)).collect(),
        }
    }

    /// The log reader's name: one per URL, shared by every dispatcher, so each event reaches
    /// the URL once whichever dispatcher sends it.
    fn reader_name(&self) -> String {
        let mut named = self.url.clone();
        if let Some(pusher) = &self.pusher {
            named.push_str(&format!(" pusher app {}", pusher.app_id));
        }
        let digest = Sha256::digest(named.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("webhook-{hex}")
    }
}

/// What a webhook sender counts.
#[derive(Clone)]
pub(crate) struct WebhookMetrics {
    pub delivered: Arc<Metric>,
    pub failures: Arc<Metric>,
}

/// Opens each webhook's reader of the log, so events from now on are kept for it even before
/// its sender runs (a new reader sees only what is appended after it exists).
pub(crate) async fn open_readers(
    log: &dyn EventLog,
    hooks: &[WebhookConfig],
) -> Result<(), herald_core::event_log::LogError> {
    for hook in hooks {
        log.reader(&hook.reader_name()).await?;
    }
    Ok(())
}

/// Delivers the log's events to one webhook until `shutdown`.
pub(crate) async fn run(
    log: Arc<dyn EventLog>,
    hook: WebhookConfig,
    metrics: WebhookMetrics,
    shutdown: CancellationToken,
) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(POST_TIMEOUT)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let kinds = hook.kinds();
    let mut backoff = FIRST_BACKOFF;
    while !shutdown.is_cancelled() {
        let reader = match log.reader(&hook.reader_name()).await {
            Ok(reader) => reader,
            Err(e) => {
                tracing::warn!(url = %hook.url, error = %e, "webhook cannot read the event log; retrying");
                pause(&shutdown, &mut backoff).await;
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        let sender = Sender {
            client: &client,
            hook: &hook,
            kinds: &kinds,
            metrics: &metrics,
            shutdown: &shutdown,
        };
        if let Err(e) = sender.serve(reader).await {
            tracing::warn!(url = %hook.url, error = %e, "webhook lost the event log; reopening");
            pause(&shutdown, &mut backoff).await;
        }
    }
}

/// One batch as it is POSTed.
struct Post {
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
    /// Events in the body.
    events: usize,
}

struct Sender<'a> {
    client: &'a reqwest::Client,
    hook: &'a WebhookConfig,
    kinds: &'a HashSet<Kind>,
    metrics: &'a WebhookMetrics,
    shutdown: &'a CancellationToken,
}

impl Sender<'_> {
    /// Reads, sends and acknowledges batches until shutdown or a log failure.
    async fn serve(&self, mut reader: Box<dyn EventReader>) -> Result<(), String> {
        let wait = Duration::from_millis(self.hook.batch_ms);
        loop {
            let batch = tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(()),
                batch = reader.next_batch(self.hook.batch_max, wait) => batch.map_err(|e| e.to_string())?,
            };
            let wanted: Vec<LifecycleEvent> = batch
                .into_iter()
                .filter(|e| self.kinds.contains(&e.kind))
                .collect();
            if let Some(post) = self.encode(&wanted) {
                if !self.deliver(&post, reader.as_mut()).await {
                    // Shut down mid-retry: the batch goes back to the log unacknowledged.
                    return Ok(());
                }
            }
            reader.acknowledge().await.map_err(|e| e.to_string())?;
        }
    }

    /// The POST of `events` in this webhook's format (Herald's, or a Pusher app's with only
    /// that app's events); `None` when there is nothing to send.
    fn encode(&self, events: &[LifecycleEvent]) -> Option<Post> {
        match &self.hook.pusher {
            Some(app) => {
                let said: Vec<_> = events.iter().filter_map(|e| pusher_event(app, e)).collect();
                if said.is_empty() {
                    return None;
                }
                let body = serde_json::json!({ "time_ms": Delivery::now_ms(), "events": said });
                let body = body.to_string();
                let signature = herald_core::pusher::sign(&self.hook.secret, &body);
                Some(Post {
                    events: said.len(),
                    body: body.into_bytes(),
                    headers: vec![
                        ("X-Pusher-Key", app.key.clone()),
                        ("X-Pusher-Signature", signature),
                    ],
                })
            }
            None if events.is_empty() => None,
            None => {
                let body = serde_json::json!({ "events": events })
                    .to_string()
                    .into_bytes();
                let signature = signature::sign(self.hook.secret.as_bytes(), &body);
                Some(Post {
                    events: events.len(),
                    body,
                    headers: vec![(signature::HEADER, signature)],
                })
            }
        }
    }

    /// POSTs one batch until a 2xx; false when shutdown came first.
    async fn deliver(&self, post: &Post, reader: &mut dyn EventReader) -> bool {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut request = self
                .client
                .post(&self.hook.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json");
            for (name, value) in &post.headers {
                request = request.header(*name, value);
            }
            let sent = request.body(post.body.clone()).send().await;
            let failure = match sent {
                Ok(response) if response.status().is_success() => {
                    self.metrics.delivered.add(post.events as i64);
                    if attempt > 1 {
                        tracing::info!(url = %self.hook.url, attempt, "webhook delivered after retrying");
                    }
                    return true;
                }
                Ok(response) => format!("answered HTTP {}", response.status()),
                Err(e) => format!("unreachable: {}", e.without_url()),
            };
            self.metrics.failures.inc();
            // Loud on the first failure, then every 8th attempt (about every 40 s once capped).
            if attempt == 1 || attempt.is_multiple_of(8) {
                tracing::warn!(url = %self.hook.url, attempt, events = post.events, %failure, "webhook delivery failed; retrying");
            }
            let _ = reader.still_working().await;
            if !pause(self.shutdown, &mut backoff).await {
                return false;
            }
        }
    }
}

/// Waits `backoff` (then doubles it, capped); false when shutdown came first.
async fn pause(shutdown: &CancellationToken, backoff: &mut Duration) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}

/// A lifecycle event as `app`'s Pusher webhook says it; `None` when it is not about one of the
/// app's channels (users' own channels included) or not a kind Pusher reports.
fn pusher_event(app: &PusherHook, event: &LifecycleEvent) -> Option<serde_json::Value> {
    use herald_core::pusher::{pusher_channel, ChannelKind};
    let (event_app, channel) = pusher_channel(event.channel.as_deref()?)?;
    if event_app != app.app_id || ChannelKind::of(&channel) == ChannelKind::User {
        return None;
    }
    let name = match event.kind {
        Kind::Occupied => "channel_occupied",
        Kind::Vacated => "channel_vacated",
        Kind::MemberAdded => "member_added",
        Kind::MemberRemoved => "member_removed",
        Kind::ClientEvent => "client_event",
        _ => return None,
    };
    let mut said = serde_json::json!({ "name": name, "channel": channel });
    match event.kind {
        Kind::MemberAdded | Kind::MemberRemoved => said["user_id"] = serde_json::json!(event.user),
        Kind::ClientEvent => {
            said["event"] = serde_json::json!(event.event);
            said["data"] = match &event.data {
                Some(serde_json::Value::String(text)) => serde_json::json!(text),
                Some(other) => serde_json::json!(other.to_string()),
                None => serde_json::json!("{}"),
            };
            said["socket_id"] = serde_json::json!(event.conn);
            if let Some(user) = &event.user {
                said["user_id"] = serde_json::json!(user);
            }
        }
        _ => {}
    }
    Some(said)
}
