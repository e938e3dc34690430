//! What the file-tail adapter logs and counts, in one place: each event logs one line and bumps
//! its counter.

use herald_core::metrics::{Metric, Metrics};
use herald_core::HeraldError;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The file-tail adapter's counters (shared by every followed file of a process).
#[derive(Clone)]
pub struct Events {
    lines_read: Arc<Metric>,
    lines_published: Arc<Metric>,
    lines_cut: Arc<Metric>,
    lines_refused: Arc<Metric>,
    publish_retries: Arc<Metric>,
    rotations: Arc<Metric>,
    truncations_unrecovered: Arc<Metric>,
    read_errors: Arc<Metric>,
}

impl Events {
    /// Registers the counters in `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        Events {
            lines_read: metrics.counter(
                "herald_file_tail_lines_total",
                "Complete lines the file-tail adapter read.",
            ),
            lines_published: metrics.counter(
                "herald_file_tail_published_total",
                "Lines a dispatcher accepted as events.",
            ),
            lines_cut: metrics.counter(
                "herald_file_tail_truncated_lines_total",
                "Lines longer than the payload limit, published cut with \"truncated\": true.",
            ),
            lines_refused: metrics.counter(
                "herald_file_tail_refused_total",
                "Lines a dispatcher refused for good (logged, not retried).",
            ),
            publish_retries: metrics.counter(
                "herald_file_tail_retries_total",
                "Publish attempts retried because no dispatcher could take the line.",
            ),
            rotations: metrics.counter(
                "herald_file_tail_rotations_total",
                "Rotations followed (rename-and-create or copy-truncate).",
            ),
            truncations_unrecovered: metrics.counter(
                "herald_file_tail_truncations_unrecovered_total",
                "Truncations with no rotated copy to read the unread rest from.",
            ),
            read_errors: metrics.counter(
                "herald_file_tail_read_errors_total",
                "Errors reading or checking a followed file (retried).",
            ),
        }
    }

    pub(crate) fn waiting_for_file(&self, path: &Path) {
        tracing::info!(path = %path.display(), "file does not exist yet; it will be read from its start once created");
    }

    pub(crate) fn opened(&self, path: &Path, offset: u64) {
        tracing::info!(path = %path.display(), offset, "following file");
    }

    pub(crate) fn rotated_by_rename(&self, path: &Path) {
        self.rotations.inc();
        tracing::info!(path = %path.display(), "file replaced (rotated): reading the old one to its end, then the new one");
    }

    pub(crate) fn rotated_by_copy(&self, path: &Path, copy: &Path, offset: u64) {
        self.rotations.inc();
        tracing::info!(path = %path.display(), copy = %copy.display(), offset, "file truncated (copy-truncate rotation): reading the rest from the copy");
    }

    pub(crate) fn truncated_without_copy(&self, path: &Path, offset: u64) {
        self.rotations.inc();
        self.truncations_unrecovered.inc();
        tracing::warn!(path = %path.display(), offset, "file truncated and no rotated copy holds what was not read yet: lines written just before the truncation may be missing; reading from the start");
    }

    pub(crate) fn rotated_file_done(&self, path: &Path) {
        tracing::debug!(path = %path.display(), "rotated file read to its end");
    }

    pub(crate) fn read_error(&self, path: &Path, error: &std::io::Error, first: bool) {
        self.read_errors.inc();
        if first {
            tracing::warn!(path = %path.display(), %error, "cannot read followed file; retrying");
        } else {
            tracing::debug!(path = %path.display(), %error, "still cannot read followed file");
        }
    }

    pub(crate) fn read_recovered(&self, path: &Path) {
        tracing::info!(path = %path.display(), "reading followed file again");
    }

    pub(crate) fn line_read(&self, cut: bool) {
        self.lines_read.inc();
        if cut {
            self.lines_cut.inc();
        }
    }

    pub(crate) fn published(&self) {
        self.lines_published.inc();
    }

    pub(crate) fn retrying(&self, path: &Path, error: &HeraldError, delay: Duration, first: bool) {
        self.publish_retries.inc();
        if first {
            tracing::warn!(path = %path.display(), error = %error.message, "cannot publish line; retrying until a dispatcher takes it");
        } else {
            tracing::debug!(path = %path.display(), error = %error.message, ?delay, "publish retry");
        }
    }

    pub(crate) fn refused(&self, path: &Path, error: &HeraldError) {
        self.lines_refused.inc();
        tracing::error!(path = %path.display(), code = error.code.as_str(), error = %error.message, "dispatcher refused a line; skipping it");
    }
}
