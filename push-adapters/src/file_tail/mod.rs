//! The file-tail adapter: follows files and publishes each new line as an event to a channel.
//!
//! A line that is valid JSON is the payload as is; any other line becomes `{"line":"..."}`; a
//! line whose payload would exceed the payload limit is cut and marked
//! (`{"line":"<head>","truncated":true,"original_bytes":N}`), never dropped.
//!
//! Guarantees, within one run: every complete line appended to a followed file is published in
//! file order, each only after the previous one was accepted by a dispatcher (retried while none
//! can take it). A line is published twice only if a dispatcher accepted it but its answer was
//! lost (an accept timeout). Rotations by rename-and-create and by copy-truncate are followed;
//! see [`rotation`] for how, and for the one case that can lose lines (copy-truncate without a
//! `<path>.1` copy). Nothing is remembered across restarts: a restarted adapter starts at the end
//! of the file again (or at its start with `from_start`).
//!
//! # Layout
//! - [`line`]: bytes to lines with bounded memory, and a line to its payload.
//! - [`rotation`]: how a rotation is recognised (pure decisions, unit-tested).
//! - `source`: reads one path as one stream of lines across rotations (blocking I/O).
//! - `watch`: wakes the follower on file-system events; a timer backs it up.
//! - [`events`]: what is logged and counted.

pub mod events;
pub mod line;
pub mod rotation;
mod source;
mod watch;

use crate::retry::{publish_until_accepted, Backoff, Outcome};
use anyhow::{bail, Context};
use events::Events;
use herald_core::bus::Bus;
use herald_core::metrics::Metrics;
use herald_core::names::check_name;
use herald_core::protocol::notify::{Notify, Targets};
use serde::Deserialize;
use source::{Step, TailSource};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Payload limit used when a file's config names none.
pub const DEFAULT_MAX_LINE_BYTES: usize = herald_core::defaults::MAX_PAYLOAD_BYTES;
/// How often a follower looks at its file without being woken: the safety net for missed
/// file-system events, rotations included.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// First and longest wait between attempts to publish a line no dispatcher could take.
const RETRY_BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

/// One followed file: a `[[file_tail]]` table in the TOML file, or the `--file` flags.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTailConfig {
    /// The file to follow. It may not exist yet (it is read from its start once created); its
    /// directory must exist.
    pub path: PathBuf,
    /// The channel every line is published to.
    pub channel: String,
    /// The event name of every line, e.g. `LOG:LINE`.
    pub event: String,
    /// Read the lines already in the file at start too; by default only lines appended after
    /// the start are published.
    #[serde(default)]
    pub from_start: bool,
    /// Largest payload of one line in bytes; longer lines are cut and marked. Defaults to the
    /// `max_payload_bytes` setting; at least 128.
    #[serde(default)]
    pub max_line_bytes: Option<usize>,
}

impl FileTailConfig {
    /// Checks names and that the file's directory exists, so a typo fails at start.
    pub fn validate(&self) -> anyhow::Result<()> {
        check_name("channel", &self.channel).map_err(|e| anyhow::anyhow!("{}", e.message))?;
        check_name("event", &self.event).map_err(|e| anyhow::anyhow!("{}", e.message))?;
        if self.path.file_name().is_none() {
            bail!("file-tail path {} names no file", self.path.display());
        }
        let directory = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => std::path::Path::new("."),
        };
        if !directory.is_dir() {
            bail!(
                "the directory of file-tail path {} does not exist",
                self.path.display()
            );
        }
        Ok(())
    }

    fn limit(&self) -> usize {
        self.max_line_bytes
            .unwrap_or(DEFAULT_MAX_LINE_BYTES)
            .max(line::MIN_LIMIT)
    }
}

/// Followed files, opened and positioned: every line appended from here on will be published
/// once [`FileTail::run`] runs.
pub struct FileTail {
    followers: Vec<Follower>,
}

/// One followed file and what wakes it.
struct Follower {
    config: FileTailConfig,
    source: TailSource,
    wake: Arc<tokio::sync::Notify>,
    _watch: Option<watch::DirectoryWatch>,
    events: Events,
    metrics: Metrics,
}

impl FileTail {
    /// Validates every config, watches each file's directory and opens the files that exist
    /// (at their end, or their start with `from_start`). Fails at once on an invalid config or
    /// an unreadable file, so the caller can report "running" only when reading has begun.
    pub fn start(configs: Vec<FileTailConfig>, metrics: &Metrics) -> anyhow::Result<FileTail> {
        let events = Events::new(metrics);
        let mut followers = Vec::with_capacity(configs.len());
        for config in configs {
            config.validate()?;
            let wake = Arc::new(tokio::sync::Notify::new());
            // Watch before opening, so no change between the two goes unnoticed.
            let watch = watch::watch_directory_of(&config.path, wake.clone());
            let mut source = TailSource::new(
                config.path.clone(),
                config.from_start,
                config.limit(),
                events.clone(),
            );
            source
                .open_if_present()
                .with_context(|| format!("cannot read {}", config.path.display()))?;
            followers.push(Follower {
                config,
                source,
                wake,
                _watch: watch,
                events: events.clone(),
                metrics: metrics.clone(),
            });
        }
        Ok(FileTail { followers })
    }

    /// Follows every file until `shutdown`, publishing each line once a dispatcher accepted the
    /// one before it (per file). A line being published when shutdown comes is finished first.
    pub async fn run(self, bus: Arc<dyn Bus>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let followers = self
            .followers
            .into_iter()
            .map(|follower| follower.run(bus.clone(), shutdown.clone()));
        for result in futures::future::join_all(followers).await {
            result?;
        }
        Ok(())
    }
}

/// Follows every file of `configs` until `shutdown`: [`FileTail::start`], then
/// [`FileTail::run`].
pub async fn run_all(
    bus: Arc<dyn Bus>,
    configs: Vec<FileTailConfig>,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    FileTail::start(configs, &metrics)?.run(bus, shutdown).await
}

/// Follows one file until `shutdown`: [`run_all`] for one config.
pub async fn run(
    bus: Arc<dyn Bus>,
    config: FileTailConfig,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_all(bus, vec![config], metrics, shutdown).await
}

impl Follower {
    async fn run(self, bus: Arc<dyn Bus>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Follower {
            config,
            source,
            wake,
            _watch,
            events,
            metrics,
        } = self;
        let limit = config.limit();
        let mut source = Some(source);
        let mut backoff = Backoff::new(RETRY_BACKOFF.0, RETRY_BACKOFF.1);
        let mut failing = false;
        let requests = crate::publish::requester(bus, &metrics);
        let target = Targets {
            channels: vec![config.channel.clone()],
            ..Default::default()
        };
        while !shutdown.is_cancelled() {
            let Some(mut reader) = source.take() else {
                bail!("file-tail source for {} lost", config.path.display());
            };
            let (reader, step) = tokio::task::spawn_blocking(move || {
                let step = reader.step();
                (reader, step)
            })
            .await
            .context("file-tail reader task failed")?;
            source = Some(reader);
            if step.is_ok() && std::mem::take(&mut failing) {
                events.read_recovered(&config.path);
            }
            match step {
                Ok(Step::Lines(lines)) => {
                    for line in lines {
                        if shutdown.is_cancelled() {
                            return Ok(());
                        }
                        let payload = line::payload(&line, limit);
                        events.line_read(payload.cut);
                        let notify = Notify {
                            event: config.event.clone(),
                            targets: target.clone(),
                            payload: payload.json,
                        };
                        let mut first_retry = true;
                        let outcome = publish_until_accepted(
                            &requests,
                            &notify,
                            &mut backoff,
                            &shutdown,
                            |error, delay| {
                                events.retrying(&config.path, error, delay, first_retry);
                                first_retry = false;
                            },
                        )
                        .await;
                        match outcome {
                            Outcome::Accepted(_) => events.published(),
                            Outcome::Refused(error) => events.refused(&config.path, &error),
                            Outcome::Cancelled => return Ok(()),
                        }
                    }
                }
                Ok(Step::Idle) => wait(&wake, &shutdown, POLL_INTERVAL).await,
                Err(error) => {
                    events.read_error(&config.path, &error, !failing);
                    failing = true;
                    wait(&wake, &shutdown, POLL_INTERVAL).await;
                }
            }
        }
        Ok(())
    }
}

/// Waits for a file-system event, the poll interval, or shutdown.
async fn wait(wake: &tokio::sync::Notify, shutdown: &CancellationToken, interval: Duration) {
    tokio::select! {
        _ = wake.notified() => {}
        _ = tokio::time::sleep(interval) => {}
        _ = shutdown.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::bus::MemoryBus;
    use herald_core::messages::{EventAccepted, NotifyRequest};
    use herald_core::requests::Reply;
    use herald_core::subjects;
    use std::io::Write;

    fn config(path: PathBuf) -> FileTailConfig {
        FileTailConfig {
            path,
            channel: "logs".into(),
            event: "LOG:LINE".into(),
            from_start: false,
            max_line_bytes: None,
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let ok = config(dir.path().join("app.log"));
        assert!(ok.validate().is_ok());
        let cases = [
            (
                FileTailConfig {
                    channel: "bad channel".into(),
                    ..ok.clone()
                },
                "invalid channel",
            ),
            (
                FileTailConfig {
                    event: String::new(),
                    ..ok.clone()
                },
                "invalid event",
            ),
            (config(dir.path().join("missing/app.log")), "does not exist"),
        ];
        for (config, expected) in cases {
            let error = format!("{:#}", config.validate().unwrap_err());
            assert!(error.contains(expected), "{error}");
        }
        let error = toml::from_str::<FileTailConfig>(
            "path = 'a'\nchannel = 'c'\nevent = 'E'\nfrom_end = true",
        )
        .unwrap_err();
        assert!(error.to_string().contains("unknown field"), "{error}");
    }

    /// Lines written while no dispatcher runs are retried, then delivered in order once one does.
    #[tokio::test]
    async fn lines_wait_for_a_dispatcher_and_arrive_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "").unwrap();
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let metrics = Metrics::new();
        let shutdown = CancellationToken::new();
        let tails = FileTail::start(vec![config(path.clone())], &metrics).unwrap();
        let follower = tokio::spawn(tails.run(bus.clone(), shutdown.clone()));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        for n in 0..20 {
            writeln!(file, "{{\"n\":{n}}}").unwrap();
        }
        let retries = metrics.counter("herald_file_tail_retries_total", "");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while retries.get() < 2 {
            assert!(std::time::Instant::now() < deadline, "no retry seen");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut requests = bus.subscribe(subjects::NOTIFY, None).await.unwrap();
        let mut seen = Vec::new();
        while seen.len() < 20 {
            let message = tokio::time::timeout(Duration::from_secs(10), requests.next())
                .await
                .expect("a notify in time")
                .expect("subscription open");
            let notify = serde_json::from_slice::<NotifyRequest>(&message.payload)
                .unwrap()
                .notify;
            assert_eq!(notify.targets.channels, vec!["logs"]);
            let value: serde_json::Value = serde_json::from_str(notify.payload.get()).unwrap();
            seen.push(value["n"].as_u64().unwrap());
            let reply = Reply::Ok(EventAccepted {
                id: seen.len().to_string(),
            });
            bus.publish(
                message.reply.as_deref().unwrap(),
                serde_json::to_vec(&reply).unwrap().into(),
            )
            .await
            .unwrap();
        }
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        shutdown.cancel();
        follower.await.unwrap().unwrap();
        assert_eq!(
            metrics
                .counter("herald_file_tail_published_total", "")
                .get(),
            20
        );
    }
}
