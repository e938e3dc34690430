//! Reports of closed connections to the dispatchers, each sent until one records it, so
//! presence never keeps a connection that is gone.
//!
//! A mass disconnect (a proxy restart, a network blip) would otherwise send thousands of
//! reports at once, more than the dispatchers answer within the command timeout: the late ones
//! would fail although the work was done. So reports queue here and go out a bounded number at
//! a time, and one that gets no answer is sent again with a capped backoff. On shutdown the
//! queue is dropped: the gateway's departure announcement removes all of its connections.

use crate::session::command;
use crate::Shared;
use futures::stream::{FuturesUnordered, StreamExt};
use herald_core::messages::GatewayCommand;
use herald_core::metrics::{Metric, Metrics};
use herald_core::ErrorCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(5);

/// Reports in flight at once: enough to keep the dispatchers busy, few enough that a mass
/// disconnect does not queue more at them than they answer within the command timeout.
const MAX_IN_FLIGHT: usize = 64;

/// The queue of reports to send. Unbounded, but it holds at most one small entry per
/// connection this gateway closed and the dispatchers have not recorded yet.
pub(crate) struct CloseReports {
    queue: mpsc::UnboundedSender<GatewayCommand>,
    /// Reports queued or in flight, exported as `herald_gateway_close_reports_pending`.
    pending: Arc<Metric>,
    /// Set while reports keep failing, so the warning is logged once per outage.
    struggling: AtomicBool,
}

impl CloseReports {
    /// The queue, and its receiving end for [`start`].
    pub(crate) fn new(
        metrics: &Metrics,
    ) -> (CloseReports, mpsc::UnboundedReceiver<GatewayCommand>) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let reports = CloseReports {
            queue,
            pending: metrics.gauge(
                "herald_gateway_close_reports_pending",
                "Closed connections not yet recorded by a dispatcher (queued or in flight).",
            ),
            struggling: AtomicBool::new(false),
        };
        (reports, receiver)
    }

    /// Queues `closed` for a dispatcher; returns at once.
    pub(crate) fn report(&self, closed: GatewayCommand) {
        if self.queue.send(closed).is_ok() {
            self.pending.inc();
        }
    }
}

/// Sends queued reports, [`MAX_IN_FLIGHT`] at a time, each until a dispatcher records it or
/// the gateway shuts down.
pub(crate) fn start(shared: &Arc<Shared>, mut pending: mpsc::UnboundedReceiver<GatewayCommand>) {
    let shared = shared.clone();
    let tracker = shared.tracker.clone();
    tracker.spawn(async move {
        let mut in_flight = FuturesUnordered::new();
        loop {
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                closed = pending.recv(), if in_flight.len() < MAX_IN_FLIGHT => match closed {
                    Some(closed) => in_flight.push(async {
                        send_until_recorded(&shared, closed).await;
                        shared.close_reports.pending.dec();
                    }),
                    None => return,
                },
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            }
        }
    });
}

/// Sends one report until it is recorded or refused, backing off while no dispatcher answers.
async fn send_until_recorded(shared: &Shared, closed: GatewayCommand) {
    let reports = &shared.close_reports;
    let mut wait = FIRST_RETRY;
    loop {
        match command(shared, &closed).await {
            Ok(_) => {
                if reports.struggling.swap(false, Ordering::Relaxed) {
                    tracing::info!("dispatchers record closed connections again");
                }
                return;
            }
            Err(e) if e.code != ErrorCode::Unavailable => {
                tracing::warn!(error = %e, "a dispatcher refused a closed-connection report");
                return;
            }
            Err(e) => {
                if !reports.struggling.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %e,
                        pending = reports.pending.get(),
                        "dispatchers are not recording closed connections; retrying"
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
}
