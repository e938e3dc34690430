//! Idempotent requests that move on to another member of a queue group when the one that took
//! the request goes silent.
//!
//! A responder that dies mid-request (SIGKILL, lost machine) never answers, and NATS cannot
//! tell the requester. Waiting out one long timeout would stall the caller for all of it, so
//! the first attempt waits only [`FIRST_ATTEMPT`], which a live responder beats by far, and
//! each further attempt waits twice as long, all within the caller's overall budget. A dead
//! responder's queue subscription is gone by then, so the next attempt reaches a live one.
//!
//! Only for requests whose repetition is harmless: the responder may have acted on an
//! attempt whose answer was lost.

use super::{Bus, BusError};
use bytes::Bytes;
use std::time::Duration;
use tokio::time::Instant;

/// How long the first attempt waits before the request is sent again.
pub const FIRST_ATTEMPT: Duration = Duration::from_millis(600);

/// Sends `payload` to one responder on `subject`, again on a timeout, until one answers or
/// `budget` is spent. Other failures (no responders, bus down) return at once; a timeout is
/// returned when the whole budget passed in silence.
pub async fn request(
    bus: &dyn Bus,
    subject: &str,
    payload: Bytes,
    budget: Duration,
) -> Result<Bytes, BusError> {
    let deadline = Instant::now() + budget;
    let mut wait = FIRST_ATTEMPT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // The last attempt takes all that is left, rather than a sliver after a doubling.
        let attempt = if left < wait * 2 { left } else { wait };
        match bus.request(subject, payload.clone(), attempt).await {
            Err(BusError::Timeout(s)) if Instant::now() >= deadline => {
                return Err(BusError::Timeout(s))
            }
            Err(BusError::Timeout(_)) => {
                tracing::debug!(subject, ?attempt, "no answer in time; asking again");
                wait *= 2;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::MemoryBus;

    /// A queue group whose first member swallows requests (as a killed process does) and whose
    /// second answers; the request must reach the second quickly.
    #[tokio::test(start_paused = true)]
    async fn a_silent_responder_costs_one_short_attempt() {
        let bus = MemoryBus::new();
        let mut silent = bus.subscribe("svc", Some("q")).await.unwrap();
        let mut live = bus.subscribe("svc", Some("q")).await.unwrap();
        let swallowed = tokio::spawn(async move {
            let mut taken = 0;
            while silent.next().await.is_some() {
                taken += 1;
            }
            taken
        });
        let responder = bus.clone();
        tokio::spawn(async move {
            while let Some(m) = live.next().await {
                let to = m.reply.unwrap();
                responder.publish(&to, m.payload).await.unwrap();
            }
        });
        let started = Instant::now();
        for i in 0..8u8 {
            let answer = request(&bus, "svc", Bytes::from(vec![i]), Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(answer.as_ref(), &[i]);
        }
        // Whatever the silent member took cost one first attempt each, never the whole budget.
        assert!(started.elapsed() < FIRST_ATTEMPT * 8 + Duration::from_millis(100));
        drop(bus);
        swallowed.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_when_the_budget_is_spent() {
        let bus = MemoryBus::new();
        let _silent = bus.subscribe("svc", None).await.unwrap();
        let started = Instant::now();
        let result = request(&bus, "svc", Bytes::new(), Duration::from_secs(5)).await;
        assert!(matches!(result, Err(BusError::Timeout(_))), "{result:?}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(5) && waited < Duration::from_millis(5100),
            "{waited:?}"
        );
    }
}
