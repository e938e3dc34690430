//! `NatsHistory`: the [`HistoryStore`] on a JetStream stream (`HERALD_HISTORY`, subjects
//! `herald.hist.>`, file storage, direct gets), so history survives any Herald process dying,
//! and at three replicas a NATS node dying. Its epoch is the stream's creation time: a
//! stream deleted and made again starts a new epoch.

use super::{HistoryError, HistoryStore, PendingAppend, Retention, Stored, SUBJECT_PREFIX};
use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The stream's name.
pub const STREAM: &str = "HERALD_HISTORY";
/// Within this window an event stored twice for one target (a notify sent again after a lost
/// answer) is kept once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A [`HistoryStore`] on JetStream.
pub struct NatsHistory {
    inner: Arc<Inner>,
}

/// What appends still waiting for JetStream's acknowledgement share with the store.
struct Inner {
    js: jetstream::Context,
    config: stream::Config,
    /// The stream, reopened (and its epoch read again) after it went missing.
    stream: Mutex<(stream::Stream, u64)>,
    /// When the epoch was last checked against the stream.
    epoch_checked: Mutex<std::time::Instant>,
}

/// How often a dispatcher checks that the stream is still the one whose epoch it knows (an
/// operator may delete it and another dispatcher make it again).
const EPOCH_CHECK: Duration = Duration::from_secs(1);

fn unavailable(what: &str, e: impl std::fmt::Display) -> HistoryError {
    HistoryError(format!("{what}: {e}"))
}

impl NatsHistory {
    /// Opens the stream, creating it with `replicas` copies when missing; an existing stream
    /// is updated to keep what `retention` says (every dispatcher should say the same).
    pub async fn open(
        client: async_nats::Client,
        replicas: usize,
        retention: Retention,
    ) -> Result<Self, HistoryError> {
        let js = jetstream::new(client);
        let config = stream::Config {
            name: STREAM.to_string(),
            subjects: vec![format!("{SUBJECT_PREFIX}>")],
            max_messages_per_subject: retention.size.max(1) as i64,
            max_age: retention.ttl.max(Duration::from_secs(1)),
            storage: stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW.min(retention.ttl.max(Duration::from_secs(1))),
            allow_direct: true,
            ..Default::default()
        };
        let stream = Inner::open_stream(&js, &config).await?;
        let inner = Inner {
            js,
            config,
            stream: Mutex::new(stream),
            epoch_checked: Mutex::new(std::time::Instant::now()),
        };
        Ok(NatsHistory {
            inner: Arc::new(inner),
        })
    }
}

impl Inner {
    /// Whether the epoch is due for a check; if so, the next check is [`EPOCH_CHECK`] away.
    fn epoch_check_due(&self) -> bool {
        let mut checked = self.epoch_checked.lock().unwrap_or_else(|e| e.into_inner());
        let due = checked.elapsed() >= EPOCH_CHECK;
        if due {
            *checked = std::time::Instant::now();
        }
        due
    }

    /// Sends one event to the stream; the acknowledgement comes later.
    async fn publish(
        &self,
        subject: &str,
        dedupe_id: &str,
        body: Bytes,
    ) -> Result<jetstream::context::PublishAckFuture, HistoryError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", dedupe_id);
        self.js
            .publish_with_headers(subject.to_string(), headers, body)
            .await
            .map_err(|e| unavailable("cannot store the event", e))
    }

    async fn open_stream(
        js: &jetstream::Context,
        config: &stream::Config,
    ) -> Result<(stream::Stream, u64), HistoryError> {
        let mut stream = js.get_or_create_stream(config.clone()).await.map_err(|e| {
            unavailable(
                &format!(
                    "cannot open JetStream stream {STREAM} (is JetStream enabled, and may this \
                     NATS user use it? see ops/nats/herald-permissions.conf)"
                ),
                e,
            )
        })?;
        let info = stream.info().await.map_err(|e| unavailable(STREAM, e))?;
        let kept = &info.config;
        if kept.max_messages_per_subject != config.max_messages_per_subject
            || kept.max_age != config.max_age
        {
            let mut wanted = kept.clone();
            wanted.max_messages_per_subject = config.max_messages_per_subject;
            wanted.max_age = config.max_age;
            wanted.allow_direct = true;
            js.update_stream(&wanted)
                .await
                .map_err(|e| unavailable("cannot update the history retention", e))?;
        }
        let epoch = epoch_of(info.created.unix_timestamp_nanos());
        Ok((stream, epoch))
    }

    fn stream(&self) -> (stream::Stream, u64) {
        let guard = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        (guard.0.clone(), guard.1)
    }

    /// The stream is gone (deleted by an operator): make it again, in a new epoch.
    async fn reopen(&self) -> Result<(), HistoryError> {
        let reopened = Inner::open_stream(&self.js, &self.config).await?;
        tracing::warn!(
            stream = STREAM,
            "history stream made again: earlier positions recover nothing"
        );
        *self.stream.lock().unwrap_or_else(|e| e.into_inner()) = reopened;
        Ok(())
    }
}

/// An epoch from a stream's creation time in ns since the Unix epoch (fits a u64 until 2554).
fn epoch_of(created_ns: i128) -> u64 {
    (created_ns.max(1) as u64).max(1)
}

fn not_found(e: &async_nats::jetstream::stream::DirectGetError) -> bool {
    matches!(
        e.kind(),
        async_nats::jetstream::stream::DirectGetErrorKind::NotFound
    )
}

#[async_trait]
impl HistoryStore for NatsHistory {
    async fn append(
        &self,
        subject: &str,
        dedupe_id: &str,
        body: Bytes,
    ) -> Result<PendingAppend, HistoryError> {
        let epoch = self.inner.stream().1;
        let ack = self.inner.publish(subject, dedupe_id, body.clone()).await?;
        let (inner, subject, dedupe_id) = (
            self.inner.clone(),
            subject.to_string(),
            dedupe_id.to_string(),
        );
        Ok(Box::pin(async move {
            match ack.await {
                Ok(ack) => Ok((epoch, ack.sequence)),
                // Deleted by an operator: make it again (a new epoch) and store there.
                Err(e) if e.kind() == jetstream::context::PublishErrorKind::StreamNotFound => {
                    inner.reopen().await?;
                    let epoch = inner.stream().1;
                    let ack = inner.publish(&subject, &dedupe_id, body).await?;
                    let ack = ack.await.map_err(|e| {
                        unavailable("the history stream did not store the event", e)
                    })?;
                    Ok((epoch, ack.sequence))
                }
                Err(e) => Err(unavailable("the history stream did not store the event", e)),
            }
        }))
    }

    /// The epoch this dispatcher knows, checked against the stream at most every
    /// [`EPOCH_CHECK`]: a stream info needs the stream's leader, which a NATS node dying takes
    /// seconds to elect again, while ident and join read positions all the time.
    async fn epoch(&self) -> Result<u64, HistoryError> {
        let (stream, known) = self.inner.stream();
        if !self.inner.epoch_check_due() {
            return Ok(known);
        }
        match tokio::time::timeout(EPOCH_CHECK, stream.get_info()).await {
            Ok(Ok(info)) => {
                let epoch = epoch_of(info.created.unix_timestamp_nanos());
                if epoch != known {
                    self.inner.reopen().await?;
                }
                Ok(epoch)
            }
            Ok(Err(e)) if e.to_string().contains("not found") => {
                self.inner.reopen().await?;
                Ok(self.inner.stream().1)
            }
            // No leader just now: the epoch known a moment ago stands.
            Ok(Err(_)) | Err(_) => Ok(known),
        }
    }

    async fn last(&self, subject: &str) -> Result<Option<u64>, HistoryError> {
        match self
            .inner
            .stream()
            .0
            .direct_get_last_for_subject(subject)
            .await
        {
            Ok(message) => Ok(Some(message.sequence)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(unavailable("cannot read history", e)),
        }
    }

    async fn holds(&self, subject: &str, seq: u64) -> Result<bool, HistoryError> {
        match self.inner.stream().0.direct_get(seq).await {
            Ok(message) => Ok(message.subject.as_str() == subject),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(unavailable("cannot read history", e)),
        }
    }

    async fn after(
        &self,
        subject: &str,
        seq: u64,
        max: usize,
    ) -> Result<Vec<Stored>, HistoryError> {
        let stream = self.inner.stream().0;
        let mut found = Vec::new();
        let mut from = seq + 1;
        while found.len() < max {
            match stream
                .direct_get_next_for_subject(subject, Some(from))
                .await
            {
                Ok(message) => {
                    from = message.sequence + 1;
                    found.push(Stored {
                        seq: message.sequence,
                        ms: (message.time.unix_timestamp_nanos() / 1_000_000).max(0) as u64,
                        body: message.payload,
                    });
                }
                Err(e) if not_found(&e) => break,
                Err(e) => return Err(unavailable("cannot read history", e)),
            }
        }
        Ok(found)
    }
}
