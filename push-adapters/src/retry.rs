//! Publishing until a dispatcher accepts, with capped exponential backoff: shared by the adapters
//! that read from a feed (file-tail, Redis) and must not move on before an event was taken.

use herald_core::messages::EventIds;
use herald_core::protocol::notify::Notify;
use herald_core::requests::Requester;
use herald_core::{ErrorCode, HeraldError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Capped exponential backoff: `initial`, twice that, and so on up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff starting at `initial` and never waiting longer than `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The wait before the next attempt; each call doubles the following one, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// How a [`publish_until_accepted`] call ended.
#[derive(Debug)]
pub enum Outcome {
    /// A dispatcher accepted the event; this is its id.
    Accepted(String),
    /// A dispatcher refused the event for good (bad request, internal error): retrying would not
    /// help.
    Refused(HeraldError),
    /// Shutdown came while waiting to retry; the event was not published.
    Cancelled,
}

/// Publishes `notify`, retrying `unavailable` errors (no dispatcher, bus down, no answer in time)
/// with `backoff` until a dispatcher accepts or refuses it, or `shutdown` fires between attempts.
/// An attempt already sent is never abandoned half-way. `on_retry` hears every retried error.
///
/// Every attempt carries the same event id, so gateways that already delivered it drop the copy
/// a retry publishes (within their memory of recent ids; see the gateway's `recent` module).
pub async fn publish_until_accepted(
    requests: &Requester,
    notify: &Notify,
    backoff: &mut Backoff,
    shutdown: &CancellationToken,
    mut on_retry: impl FnMut(&HeraldError, Duration),
) -> Outcome {
    let id = EventIds::fresh();
    loop {
        match requests.notify(&id, notify).await {
            Ok(id) => {
                backoff.reset();
                return Outcome::Accepted(id);
            }
            Err(error) if error.code == ErrorCode::Unavailable => {
                let delay = backoff.next_delay();
                on_retry(&error, delay);
                tokio::select! {
                    _ = shutdown.cancelled() => return Outcome::Cancelled,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(error) => {
                backoff.reset();
                return Outcome::Refused(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::bus::MemoryBus;
    use herald_core::protocol::notify::Targets;
    use std::sync::Arc;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<u128> = (0..4).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 350, 350]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_shutdown_when_nobody_accepts() {
        let bus = MemoryBus::new();
        let notify = Notify {
            event: "E".into(),
            targets: Targets {
                channels: vec!["c".into()],
                ..Default::default()
            },
            payload: serde_json::value::RawValue::from_string("1".into()).unwrap(),
        };
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let mut retries = 0;
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        let outcome = publish_until_accepted(
            &crate::publish::requester(Arc::new(bus), &Default::default()),
            &notify,
            &mut backoff,
            &shutdown,
            |_, _| {
                retries += 1;
                if retries == 3 {
                    stop.cancel();
                }
            },
        )
        .await;
        assert!(matches!(outcome, Outcome::Cancelled), "{outcome:?}");
        assert_eq!(retries, 3);
    }
}
