//! Latency histograms and the per-connection record of what arrived: lost, duplicated and
//! out-of-order deliveries.

use crate::plan::Mark;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::sync::Mutex;

/// Highest latency recorded, µs (larger values are clamped): one hour.
const MAX_US: u64 = 3_600_000_000;

/// An empty latency histogram in µs, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("constant histogram bounds are valid")
}

/// Records a latency of `ns` nanoseconds.
pub fn record_ns(histogram: &mut Histogram<u64>, ns: u64) {
    let us = (ns / 1_000).clamp(1, MAX_US);
    let _ = histogram.record(us);
}

/// The recorded values as (value, count) pairs, to send between processes.
pub fn to_pairs(histogram: &Histogram<u64>) -> Vec<(u64, u64)> {
    histogram
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// Adds (value, count) pairs to a histogram.
pub fn add_pairs(histogram: &mut Histogram<u64>, pairs: &[(u64, u64)]) {
    for &(value, count) in pairs {
        let _ = histogram.record_n(value.clamp(1, MAX_US), count);
    }
}

/// p50/p90/p99/p99.9/max/mean in milliseconds, as JSON.
pub fn percentiles_ms(histogram: &Histogram<u64>) -> Value {
    if histogram.is_empty() {
        return json!(null);
    }
    let ms = |us: u64| (us as f64 / 1_000.0 * 1_000.0).round() / 1_000.0;
    json!({
        "p50": ms(histogram.value_at_quantile(0.50)),
        "p90": ms(histogram.value_at_quantile(0.90)),
        "p99": ms(histogram.value_at_quantile(0.99)),
        "p999": ms(histogram.value_at_quantile(0.999)),
        "max": ms(histogram.max()),
        "mean": (histogram.mean() / 1_000.0 * 1_000.0).round() / 1_000.0,
        "count": histogram.len(),
    })
}

/// Latency histograms shared by many connections: a few shards, so that connections on
/// different threads rarely wait for one another.
pub struct SharedHistogram {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl SharedHistogram {
    /// `shards` empty histograms.
    pub fn new(shards: usize) -> Self {
        SharedHistogram {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(new_histogram()))
                .collect(),
        }
    }

    /// Records many latencies (ns) in the shard of connection `index`, under one lock.
    pub fn record_many(&self, index: u64, ns: &[u64]) {
        if ns.is_empty() {
            return;
        }
        let shard = &self.shards[(index % self.shards.len() as u64) as usize];
        let mut histogram = shard.lock().unwrap_or_else(|e| e.into_inner());
        for &n in ns {
            record_ns(&mut histogram, n);
        }
    }

    /// Every shard merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for shard in &self.shards {
            let histogram = shard.lock().unwrap_or_else(|e| e.into_inner());
            let _ = all.add(&*histogram);
        }
        all
    }
}

/// What happened to one received event.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// First copy, in order.
    New,
    /// First copy, but a later event of the same worker arrived before it.
    OutOfOrder,
    /// Already received.
    Duplicate,
    /// Not an event of this run (number out of range).
    Foreign,
}

/// One connection's record of the events it received.
#[derive(Default)]
pub struct Tracker {
    /// One bit per event number: received.
    bits: Vec<u64>,
    /// Per publisher worker: highest sequence number received, plus one (0: none yet).
    next_k: Vec<u64>,
    events: u64,
    workers: u64,
    /// Distinct events received.
    pub distinct: u64,
    /// Extra copies received.
    pub duplicated: u64,
    /// Events that arrived after a later one of the same worker.
    pub out_of_order: u64,
}

impl Tracker {
    /// A record for `events` events from `workers` publisher workers (allocated on first use,
    /// so idle connections cost nothing).
    pub fn new(events: u64, workers: u32) -> Self {
        Tracker {
            events,
            workers: u64::from(workers.max(1)),
            ..Tracker::default()
        }
    }

    /// Notes the arrival of `mark`.
    pub fn see(&mut self, mark: &Mark) -> Seen {
        if mark.g >= self.events || mark.w >= self.workers {
            return Seen::Foreign;
        }
        if self.bits.is_empty() {
            self.bits = vec![0; self.events.div_ceil(64) as usize];
            self.next_k = vec![0; self.workers as usize];
        }
        let (word, bit) = ((mark.g / 64) as usize, 1u64 << (mark.g % 64));
        if self.bits[word] & bit != 0 {
            self.duplicated += 1;
            return Seen::Duplicate;
        }
        self.bits[word] |= bit;
        self.distinct += 1;
        let next = &mut self.next_k[mark.w as usize];
        if mark.k < *next {
            self.out_of_order += 1;
            Seen::OutOfOrder
        } else {
            *next = mark.k + 1;
            Seen::New
        }
    }

    /// Whether event `g` was received.
    pub fn has(&self, g: u64) -> bool {
        !self.bits.is_empty()
            && g < self.events
            && self.bits[(g / 64) as usize] & (1 << (g % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(g: u64, w: u64, k: u64) -> Mark {
        Mark { g, w, k, t: 0 }
    }

    #[test]
    fn tracker_tells_duplicates_and_disorder() {
        let mut t = Tracker::new(10, 2);
        assert_eq!(t.see(&mark(0, 0, 0)), Seen::New);
        assert_eq!(t.see(&mark(2, 0, 2)), Seen::New);
        assert_eq!(t.see(&mark(1, 1, 0)), Seen::New);
        assert_eq!(t.see(&mark(3, 0, 1)), Seen::OutOfOrder);
        assert_eq!(t.see(&mark(2, 0, 2)), Seen::Duplicate);
        assert_eq!(t.see(&mark(10, 0, 9)), Seen::Foreign);
        assert_eq!((t.distinct, t.duplicated, t.out_of_order), (4, 1, 1));
        assert!(t.has(3) && !t.has(4));
    }

    #[test]
    fn histograms_travel_as_pairs() {
        let mut h = new_histogram();
        for ns in [1_000, 2_000_000, 2_000_000, 50_000_000] {
            record_ns(&mut h, ns);
        }
        let mut copy = new_histogram();
        add_pairs(&mut copy, &to_pairs(&h));
        assert_eq!(copy.len(), 4);
        assert_eq!(copy.value_at_quantile(0.5), h.value_at_quantile(0.5));
        let shared = SharedHistogram::new(4);
        shared.record_many(1, &[5_000]);
        shared.record_many(2, &[7_000, 9_000]);
        assert_eq!(shared.merged().len(), 3);
    }
}
