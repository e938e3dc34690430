//! Webhooks: each `[[webhook]]` reads the lifecycle event log in batches and POSTs them, signed,
//! retrying with capped backoff until the backend answers 2xx; only then is the batch
//! acknowledged, so every event is delivered at least once.

use herald_core::event_log::{EventLog, EventReader};
use herald_core::lifecycle::{Kind, LifecycleEvent};
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
}

fn default_batch_max() -> usize {
    100
}

fn default_batch_ms() -> u64 {
    200
}

impl WebhookConfig {
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
        let digest = Sha256::digest(self.url.as_bytes());
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
            if !wanted.is_empty() && !self.deliver(&wanted, reader.as_mut()).await {
                // Shut down mid-retry: the batch goes back to the log unacknowledged.
                return Ok(());
            }
            reader.acknowledge().await.map_err(|e| e.to_string())?;
        }
    }

    /// POSTs one batch until a 2xx; false when shutdown came first.
    async fn deliver(&self, events: &[LifecycleEvent], reader: &mut dyn EventReader) -> bool {
        let body = match serde_json::to_vec(&serde_json::json!({ "events": events })) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a webhook batch; dropping it");
                return true;
            }
        };
        let signature = signature::sign(self.hook.secret.as_bytes(), &body);
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let sent = self
                .client
                .post(&self.hook.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(signature::HEADER, &signature)
                .body(body.clone())
                .send()
                .await;
            let failure = match sent {
                Ok(response) if response.status().is_success() => {
                    self.metrics.delivered.add(events.len() as i64);
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
                tracing::warn!(url = %self.hook.url, attempt, events = events.len(), %failure, "webhook delivery failed; retrying");
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
