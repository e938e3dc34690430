//! Closed connections whose report the dispatchers did not acknowledge, sent again until one
//! is recorded, so presence never keeps a connection that is gone.
//!
//! A mass disconnect (a proxy restart, a network blip) can overwhelm the dispatchers; the
//! reports that time out then wait here and go out one at a time with a capped backoff, rather
//! than all retrying at once. On shutdown the queue is dropped: the gateway's departure
//! announcement removes all of its connections anyway.

use crate::session::command;
use crate::Shared;
use herald_core::messages::GatewayCommand;
use herald_core::{ErrorCode, HeraldError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(5);

/// The queue of unacknowledged reports. Unbounded, but it holds at most one small entry per
/// connection this gateway closed while the dispatchers could not answer.
pub(crate) struct CloseReports {
    queue: mpsc::UnboundedSender<GatewayCommand>,
}

impl CloseReports {
    /// The queue, and its receiving end for [`start`].
    pub(crate) fn new() -> (CloseReports, mpsc::UnboundedReceiver<GatewayCommand>) {
        let (queue, pending) = mpsc::unbounded_channel();
        (CloseReports { queue }, pending)
    }

    /// Sends `closed` to a dispatcher; when none acknowledges it, queues it to be sent again.
    pub(crate) async fn report(&self, shared: &Shared, closed: GatewayCommand) {
        match command(shared, &closed).await {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::Unavailable => {
                tracing::debug!(error = %e, "closed connection not recorded yet; will retry");
                let _ = self.queue.send(closed);
            }
            Err(e) => refused(&e),
        }
    }
}

/// Resends queued reports, oldest first, until each is recorded or the gateway shuts down.
pub(crate) fn start(shared: &Arc<Shared>, mut pending: mpsc::UnboundedReceiver<GatewayCommand>) {
    let shared = shared.clone();
    let tracker = shared.tracker.clone();
    tracker.spawn(async move {
        loop {
            let closed = tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                closed = pending.recv() => match closed { Some(c) => c, None => return },
            };
            let mut wait = FIRST_RETRY;
            let mut failures = 0u32;
            loop {
                match command(&shared, &closed).await {
                    Ok(_) => break,
                    Err(e) if e.code != ErrorCode::Unavailable => {
                        refused(&e);
                        break;
                    }
                    Err(e) => {
                        failures += 1;
                        if failures == 5 {
                            tracing::warn!(
                                error = %e,
                                queued = pending.len() + 1,
                                "dispatchers are not recording closed connections; still retrying"
                            );
                        }
                    }
                }
                tokio::select! {
                    _ = shared.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(LONGEST_RETRY);
            }
            if failures >= 5 {
                tracing::info!(
                    queued = pending.len(),
                    "dispatchers record closed connections again"
                );
            }
        }
    });
}

/// A dispatcher answered but refused the report: sending it again would not help.
fn refused(error: &HeraldError) {
    tracing::warn!(%error, "a dispatcher refused a closed-connection report");
}
