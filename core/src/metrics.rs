//! Counters and gauges rendered in the Prometheus text format for `GET /metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// One metric: a name, its help text, its kind and its current value.
pub struct Metric {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    value: AtomicI64,
}

impl Metric {
    /// Adds one.
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn add(&self, n: i64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts one (gauges).
    pub fn dec(&self) {
        self.value.fetch_sub(1, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// Every metric of a process, so one `/metrics` shows all roles running in it.
#[derive(Clone, Default)]
pub struct Metrics {
    all: Arc<Mutex<Vec<Arc<Metric>>>>,
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn register(&self, name: &'static str, help: &'static str, kind: &'static str) -> Arc<Metric> {
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = all.iter().find(|m| m.name == name) {
            return existing.clone();
        }
        let metric = Arc::new(Metric {
            name,
            help,
            kind,
            value: AtomicI64::new(0),
        });
        all.push(metric.clone());
        metric
    }

    /// A counter (only goes up); registering a name twice returns the same counter.
    pub fn counter(&self, name: &'static str, help: &'static str) -> Arc<Metric> {
        self.register(name, help, "counter")
    }

    /// A gauge (goes up and down).
    pub fn gauge(&self, name: &'static str, help: &'static str) -> Arc<Metric> {
        self.register(name, help, "gauge")
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for m in all.iter() {
            let _ = writeln!(out, "# HELP {} {}", m.name, m.help);
            let _ = writeln!(out, "# TYPE {} {}", m.name, m.kind);
            let _ = writeln!(out, "{} {}", m.name, m.get());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_prometheus_text() {
        let metrics = super::Metrics::new();
        let c = metrics.counter("herald_x_total", "Things.");
        c.add(3);
        assert!(metrics
            .render()
            .contains("# TYPE herald_x_total counter\nherald_x_total 3\n"));
        assert_eq!(metrics.counter("herald_x_total", "Things.").get(), 3);
    }
}
