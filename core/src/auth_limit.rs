//! Failed authentication counted per client address, with a doubling backoff.
//!
//! Used by the REST adapter (API keys) and the gateway (idents). After more than
//! `max_failures` failures within `window`, an address is refused (`rate_limited`) for 1 s;
//! each further failure doubles that, up to [`MAX_BACKOFF`]. An address quiet for a whole
//! window after its last refusal starts afresh. A success does not clear the count, so a valid
//! account cannot be used to keep guessing others'.
//!
//! IPv6 addresses count per /64 (one host usually holds a whole /64), IPv4 per address. The
//! addresses remembered are bounded ([`MAX_ADDRESSES`], least recently used go first) and
//! forgotten once idle longer than a window plus the longest backoff.

use crate::{ErrorCode, HeraldError};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The first refusal lasts this long; each further failure doubles it.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest an address is refused at once.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Addresses remembered at most.
pub const MAX_ADDRESSES: u64 = 65_536;

/// What is remembered of one address.
#[derive(Debug)]
struct Record {
    window_start: Instant,
    failures: u32,
    /// Refusals so far: the next one lasts `FIRST_BACKOFF * 2^strikes`.
    strikes: u32,
    blocked_until: Option<Instant>,
}

struct Inner {
    max_failures: u32,
    window: Duration,
    records: moka::sync::Cache<IpAddr, Arc<Mutex<Record>>>,
}

/// Counts failed authentication per client address; cheap to clone (shared state).
#[derive(Clone)]
pub struct AuthLimiter {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for AuthLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some(inner) => f
                .debug_struct("AuthLimiter")
                .field("max_failures", &inner.max_failures)
                .field("window", &inner.window)
                .finish(),
            None => f.write_str("AuthLimiter(off)"),
        }
    }
}

impl Default for AuthLimiter {
    /// 20 failures a minute.
    fn default() -> Self {
        AuthLimiter::new(20, Duration::from_secs(60))
    }
}

impl AuthLimiter {
    /// Refuses an address after more than `max_failures` failures within `window`; 0 turns
    /// the limit off.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        if max_failures == 0 {
            return AuthLimiter { inner: None };
        }
        let records = moka::sync::Cache::builder()
            .max_capacity(MAX_ADDRESSES)
            .time_to_idle(window + MAX_BACKOFF)
            .build();
        AuthLimiter {
            inner: Some(Arc::new(Inner {
                max_failures,
                window,
                records,
            })),
        }
    }

    /// `rate_limited`, with a retry hint, while `client` is refused. An unknown address (no
    /// socket behind the request, e.g. in tests) is never refused.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), HeraldError> {
        self.check_at(client, Instant::now())
    }

    /// Counts a failed authentication from `client`; returns how long it is now refused, if
    /// this failure went over the limit.
    pub fn failed(&self, client: Option<IpAddr>) -> Option<Duration> {
        self.failed_at(client, Instant::now())
    }

    fn check_at(&self, client: Option<IpAddr>, now: Instant) -> Result<(), HeraldError> {
        let (Some(inner), Some(client)) = (&self.inner, client) else {
            return Ok(());
        };
        let Some(record) = inner.records.get(&bucket(client)) else {
            return Ok(());
        };
        let blocked_until = record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .blocked_until;
        match blocked_until {
            Some(until) if until > now => {
                let secs = (until - now).as_secs_f64().ceil().max(1.0) as u64;
                Err(HeraldError::new(
                    ErrorCode::RateLimited,
                    format!("too many failed authentications from your address; retry in {secs} s"),
                )
                .with_retry_after(secs))
            }
            _ => Ok(()),
        }
    }

    fn failed_at(&self, client: Option<IpAddr>, now: Instant) -> Option<Duration> {
        let (Some(inner), Some(client)) = (&self.inner, client) else {
            return None;
        };
        let record = inner.records.get_with(bucket(client), || {
            Arc::new(Mutex::new(Record {
                window_start: now,
                failures: 0,
                strikes: 0,
                blocked_until: None,
            }))
        });
        let mut record = record.lock().unwrap_or_else(|e| e.into_inner());
        if now >= record.window_start + inner.window {
            let quiet = record
                .blocked_until
                .is_none_or(|until| now >= until + inner.window);
            if quiet {
                record.strikes = 0;
            }
            record.window_start = now;
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        if record.failures <= inner.max_failures {
            return None;
        }
        let backoff = FIRST_BACKOFF
            .saturating_mul(1u32 << record.strikes.min(16))
            .min(MAX_BACKOFF);
        record.strikes = record.strikes.saturating_add(1);
        record.blocked_until = Some(now + backoff);
        Some(backoff)
    }
}

/// The unit an address is counted in: IPv4 address, or IPv6 /64.
fn bucket(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn refuses_after_the_limit_with_a_doubling_capped_backoff() {
        let limiter = AuthLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(limiter.failed_at(a, t0), None);
            assert!(limiter.check_at(a, t0).is_ok());
        }
        assert_eq!(limiter.failed_at(a, t0), Some(Duration::from_secs(1)));
        let refused = limiter.check_at(a, t0).unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert_eq!(refused.retry_after_secs, Some(1));
        // Other addresses are not affected.
        assert!(limiter.check_at(ip("192.0.2.2"), t0).is_ok());
        // Each failure after the refusal ends doubles the next one, up to the cap.
        let mut now = t0;
        let mut expected = Duration::from_secs(2);
        for _ in 0..12 {
            now += Duration::from_secs(1);
            // A new window grants the limit's failures again, but the backoff keeps growing.
            let backoff = (0..=3).find_map(|_| limiter.failed_at(a, now)).unwrap();
            assert_eq!(backoff, expected.min(MAX_BACKOFF));
            assert!(limiter.check_at(a, now).is_err());
            now += backoff;
            assert!(limiter.check_at(a, now).is_ok());
            expected *= 2;
        }
        // Quiet for a window after the last refusal: forgiven.
        now += Duration::from_secs(61);
        for _ in 0..3 {
            assert_eq!(limiter.failed_at(a, now), None);
        }
        assert_eq!(limiter.failed_at(a, now), Some(Duration::from_secs(1)));
    }

    #[test]
    fn ipv6_counts_per_64_and_unknown_addresses_are_never_refused() {
        let limiter = AuthLimiter::new(1, Duration::from_secs(60));
        let now = Instant::now();
        limiter.failed_at(ip("2001:db8:1:2::1"), now);
        limiter.failed_at(ip("2001:db8:1:2::ffff"), now);
        assert!(limiter.check_at(ip("2001:db8:1:2:aaaa::9"), now).is_err());
        assert!(limiter.check_at(ip("2001:db8:1:3::1"), now).is_ok());
        limiter.failed_at(None, now);
        limiter.failed_at(None, now);
        assert!(limiter.check_at(None, now).is_ok());
        let off = AuthLimiter::new(0, Duration::from_secs(60));
        for _ in 0..10 {
            assert_eq!(off.failed_at(ip("192.0.2.1"), now), None);
        }
        assert!(off.check_at(ip("192.0.2.1"), now).is_ok());
    }

    #[test]
    fn addresses_remembered_are_bounded() {
        let limiter = AuthLimiter::new(1, Duration::from_secs(60));
        let now = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10_000) {
            limiter.failed_at(Some(IpAddr::V4(i.into())), now);
        }
        let inner = limiter.inner.as_ref().unwrap();
        inner.records.run_pending_tasks();
        assert!(inner.records.entry_count() <= MAX_ADDRESSES);
    }
}
