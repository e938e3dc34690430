//! History and recovery: the last events sent to each channel and user, kept per target with
//! positions a client that missed some can recover from.
//!
//! # Layout
//! - [`position`]: the opaque position tokens clients hold (epoch, sequence, time).
//! - [`policy`]: how much each target keeps (`history_size`, `history_ttl_secs`, per channel
//!   pattern).
//! - [`memory`]: one process (embedded mode); its epoch is new at every start.
//! - [`nats`]: a JetStream stream (`HERALD_HISTORY`), which survives any Herald process dying;
//!   its epoch is the stream's creation time.
//! - [`conformance`]: what every store must do, run against each.
//!
//! A store only keeps messages per subject and reads them back; [`History`] decides, from a
//! client's position, whether every event after it is still there (then it replays all of
//! them: `recovered: true`) or some may be gone (then none: `recovered: false`). Never a
//! partial replay.

pub mod conformance;
pub mod memory;
pub mod nats;
pub mod policy;
pub mod position;

pub use memory::MemoryHistory;
pub use nats::NatsHistory;
pub use policy::{HistoryPolicy, Retention};
pub use position::Position;

use crate::names::key_token;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Why the history store could not answer; the caller answers `unavailable`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("history unavailable: {0}")]
pub struct HistoryError(pub String);

/// A stream of events: a channel's or a user's (`{"channel":"chat"}` / `{"user":"alice"}`).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Events sent to a channel.
    Channel(String),
    /// Events sent to a user.
    User(String),
}

/// Prefix of the subjects history is kept under.
pub const SUBJECT_PREFIX: &str = "herald.hist.";

impl Target {
    /// The subject its events are stored under: `herald.hist.c.<name>` / `herald.hist.u.<name>`
    /// (names as KV key tokens, so any valid name is one subject token).
    pub fn subject(&self) -> String {
        match self {
            Target::Channel(name) => format!("{SUBJECT_PREFIX}c.{}", key_token(name)),
            Target::User(name) => format!("{SUBJECT_PREFIX}u.{}", key_token(name)),
        }
    }

    /// The channel or user name.
    pub fn name(&self) -> &str {
        match self {
            Target::Channel(name) | Target::User(name) => name,
        }
    }
}

/// One stored event: its sequence in the store, when it was stored, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its sequence number: grows with every event stored, across all subjects.
    pub seq: u64,
    /// When it was stored, ms since the Unix epoch.
    pub ms: u64,
    /// What was stored (a delivery's JSON).
    pub body: Bytes,
}

/// An append on its way to the store: it resolves to the epoch the event was stored in and its
/// sequence number.
pub type PendingAppend = futures::future::BoxFuture<'static, Result<(u64, u64), HistoryError>>;

/// Where events are kept: messages per subject, numbered by one sequence across subjects,
/// dropped oldest first (per subject beyond a count, everywhere beyond an age).
#[async_trait]
pub trait HistoryStore: Send + Sync + 'static {
    /// Sends `body` to be stored under `subject`; appends sent one after another are numbered
    /// in that order, whenever their answers come. Storing one `dedupe_id` twice in a short
    /// while keeps the first copy and answers its sequence.
    async fn append(
        &self,
        subject: &str,
        dedupe_id: &str,
        body: Bytes,
    ) -> Result<PendingAppend, HistoryError>;

    /// The store's epoch now: it changes whenever its contents were lost.
    async fn epoch(&self) -> Result<u64, HistoryError>;

    /// The sequence of the newest event under `subject`, if any.
    async fn last(&self, subject: &str) -> Result<Option<u64>, HistoryError>;

    /// Whether the event numbered `seq` is still stored, under `subject`.
    async fn holds(&self, subject: &str, seq: u64) -> Result<bool, HistoryError>;

    /// Up to `max` events under `subject` numbered above `seq`, oldest first.
    async fn after(&self, subject: &str, seq: u64, max: usize)
        -> Result<Vec<Stored>, HistoryError>;
}

/// What a history read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The events, oldest first, each with its position in the target's stream.
    pub events: Vec<(Position, Bytes)>,
    /// The stream's newest position (a client that saw nothing yet recovers from here);
    /// `None` when the target keeps no history.
    pub top: Option<Position>,
    /// Given a `since`: whether every event after it is here (or in the pages that follow).
    pub recovered: Option<bool>,
    /// Whether more events follow this page (read on from the last one's position).
    pub more: bool,
}

/// Clocks of different machines disagree a little: a position this close to the end of its
/// target's time to live is treated as too old.
const CLOCK_MARGIN_MS: u64 = 2_000;

/// History over a store, with each target's retention.
#[derive(Clone)]
pub struct History {
    store: Arc<dyn HistoryStore>,
    policy: Arc<HistoryPolicy>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl History {
    /// History in `store`, keeping what `policy` says.
    pub fn new(store: Arc<dyn HistoryStore>, policy: HistoryPolicy) -> Self {
        History {
            store,
            policy: Arc::new(policy),
        }
    }

    /// How much `target` keeps.
    pub fn retention(&self, target: &Target) -> Retention {
        self.policy.retention(target)
    }

    /// Stores one event for `target`; `None` when the target keeps no history.
    pub async fn append(
        &self,
        target: &Target,
        event_id: &str,
        body: Bytes,
    ) -> Result<Option<Position>, HistoryError> {
        match self.send(target, event_id, body).await? {
            Some(pending) => pending.await.map(Some),
            None => Ok(None),
        }
    }

    /// Sends one event for `target` to the store and returns at once with the wait for its
    /// position: events sent one after another are numbered in that order. `None` when the
    /// target keeps no history.
    pub async fn send(
        &self,
        target: &Target,
        event_id: &str,
        body: Bytes,
    ) -> Result<
        Option<futures::future::BoxFuture<'static, Result<Position, HistoryError>>>,
        HistoryError,
    > {
        if self.retention(target).is_off() {
            return Ok(None);
        }
        let subject = target.subject();
        let dedupe = format!("{event_id}.{subject}");
        let pending = self.store.append(&subject, &dedupe, body).await?;
        Ok(Some(Box::pin(async move {
            let (epoch, seq) = pending.await?;
            Ok(Position {
                epoch,
                seq,
                ms: now_ms(),
            })
        })))
    }

    /// The newest position of `target`'s stream; `None` when it keeps no history.
    pub async fn top(&self, target: &Target) -> Result<Option<Position>, HistoryError> {
        if self.retention(target).is_off() {
            return Ok(None);
        }
        let epoch = self.store.epoch().await?;
        let seq = self.store.last(&target.subject()).await?.unwrap_or(0);
        Ok(Some(Position {
            epoch,
            seq,
            ms: now_ms(),
        }))
    }

    /// Reads `target`'s stream: with `since`, the events after it (all of them, over pages of
    /// `limit`, or none when some may be gone); without, its newest `limit` events (none, only
    /// the top, for 0).
    pub async fn read(
        &self,
        target: &Target,
        since: Option<Position>,
        limit: usize,
    ) -> Result<Page, HistoryError> {
        let retention = self.retention(target);
        if retention.is_off() {
            return Ok(Page {
                events: Vec::new(),
                top: None,
                recovered: since.map(|_| false),
                more: false,
            });
        }
        let top = self.top(target).await?;
        if limit == 0 && since.is_none() {
            return Ok(Page {
                events: Vec::new(),
                top,
                recovered: None,
                more: false,
            });
        }
        let epoch = top.map_or(0, |t| t.epoch);
        let subject = target.subject();
        let now = now_ms();
        let ttl_ms = retention.ttl.as_millis() as u64;
        let alive = |stored: &Stored| now.saturating_sub(stored.ms) < ttl_ms;
        let Some(since) = since else {
            let mut kept = self.store.after(&subject, 0, usize::MAX).await?;
            kept.retain(|s| alive(s));
            let skip = kept.len().saturating_sub(limit.min(retention.size));
            return Ok(Page {
                events: positioned(epoch, kept.into_iter().skip(skip)),
                top,
                recovered: None,
                more: false,
            });
        };
        let refused = Page {
            events: Vec::new(),
            top,
            recovered: Some(false),
            more: false,
        };
        if since.epoch != epoch {
            return Ok(refused);
        }
        // The event at `since` still stored proves that nothing after it was dropped: stores
        // drop oldest first. Otherwise nothing after it may have aged out or been pushed out.
        let anchored = since.seq > 0 && self.store.holds(&subject, since.seq).await?;
        if !anchored && now.saturating_sub(since.ms) + CLOCK_MARGIN_MS >= ttl_ms {
            return Ok(refused);
        }
        let missed = self
            .store
            .after(&subject, since.seq, retention.size + 1)
            .await?;
        let too_many = if anchored {
            missed.len() > retention.size
        } else {
            missed.len() >= retention.size
        };
        if too_many || !missed.iter().all(alive) {
            return Ok(refused);
        }
        let more = missed.len() > limit;
        Ok(Page {
            events: positioned(epoch, missed.into_iter().take(limit)),
            top,
            recovered: Some(true),
            more,
        })
    }
}

fn positioned(epoch: u64, stored: impl Iterator<Item = Stored>) -> Vec<(Position, Bytes)> {
    stored
        .map(|s| {
            (
                Position {
                    epoch,
                    seq: s.seq,
                    ms: s.ms,
                },
                s.body,
            )
        })
        .collect()
}

/// Now, in ms since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Most events one history page carries (a REST `limit`, a replay's page).
pub const MAX_PAGE: usize = 1_000;

/// The default time events are kept.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
