//! Herald's metrics on the `prometheus-client` crate: counters, gauges and histograms, with
//! constant labels per role, rendered in the Prometheus text format for `GET /metrics`.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

pub use prometheus_client::metrics::histogram::Histogram;

/// Buckets for latencies in seconds: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for queue depths, in entries.
pub const DEPTH_BUCKETS: &[f64] = &[0.0, 1.0, 4.0, 16.0, 64.0, 256.0, 1024.0];

/// A counter (only goes up) or a gauge (goes up and down).
pub struct Metric(Kind);

enum Kind {
    Counter(Counter),
    Gauge(Gauge),
}

impl Metric {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n` (a counter ignores a negative `n`).
    pub fn add(&self, n: i64) {
        match &self.0 {
            Kind::Counter(c) => {
                c.inc_by(u64::try_from(n).unwrap_or(0));
            }
            Kind::Gauge(g) => {
                g.inc_by(n);
            }
        }
    }

    /// Subtracts one (gauges).
    pub fn dec(&self) {
        if let Kind::Gauge(g) = &self.0 {
            g.dec();
        }
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        match &self.0 {
            Kind::Counter(c) => i64::try_from(c.get()).unwrap_or(i64::MAX),
            Kind::Gauge(g) => g.get(),
        }
    }
}

/// Histograms of one name told apart by labels chosen when observing (a route, a status).
pub type HistogramFamily = Family<Vec<(String, String)>, Histogram, Buckets>;

/// Makes the histograms of a [`HistogramFamily`] with the family's buckets.
#[derive(Clone)]
pub struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// What was registered, as the registry encodes it.
#[derive(Clone)]
enum Registered {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
    Family(HistogramFamily),
}

struct Entry {
    name: &'static str,
    help: &'static str,
    labels: Vec<(String, String)>,
    metric: Registered,
    /// The handle given out, so registering the same name and labels again returns it.
    handle: Handle,
}

#[derive(Clone)]
enum Handle {
    Metric(Arc<Metric>),
    Histogram(Arc<Histogram>),
    Family(Arc<HistogramFamily>),
}

/// Every metric of a process, so one `/metrics` shows all roles running in it. A clone made by
/// [`Metrics::labelled`] adds its labels to what it registers.
#[derive(Clone, Default)]
pub struct Metrics {
    entries: Arc<Mutex<Vec<Entry>>>,
    labels: Vec<(String, String)>,
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A view whose metrics carry `labels` too (e.g. `role`, `gateway`).
    pub fn labelled(&self, labels: &[(&str, &str)]) -> Metrics {
        let mut all = self.labels.clone();
        all.extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Metrics {
            entries: self.entries.clone(),
            labels: all,
        }
    }

    fn register(
        &self,
        name: &'static str,
        help: &'static str,
        make: impl FnOnce() -> (Registered, Handle),
    ) -> Handle {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = entries
            .iter()
            .find(|e| e.name == name && e.labels == self.labels)
        {
            return existing.handle.clone();
        }
        let (metric, handle) = make();
        entries.push(Entry {
            name,
            help,
            labels: self.labels.clone(),
            metric,
            handle: handle.clone(),
        });
        handle
    }

    /// A counter (only goes up); `name` ends in `_total`. Registering a name twice returns
    /// the same counter.
    pub fn counter(&self, name: &'static str, help: &'static str) -> Arc<Metric> {
        let handle = self.register(name, help, || {
            let counter = Counter::default();
            let metric = Arc::new(Metric(Kind::Counter(counter.clone())));
            (Registered::Counter(counter), Handle::Metric(metric))
        });
        match handle {
            Handle::Metric(metric) => metric,
            _ => Arc::new(Metric(Kind::Counter(Counter::default()))),
        }
    }

    /// A gauge (goes up and down).
    pub fn gauge(&self, name: &'static str, help: &'static str) -> Arc<Metric> {
        let handle = self.register(name, help, || {
            let gauge = Gauge::default();
            let metric = Arc::new(Metric(Kind::Gauge(gauge.clone())));
            (Registered::Gauge(gauge), Handle::Metric(metric))
        });
        match handle {
            Handle::Metric(metric) => metric,
            _ => Arc::new(Metric(Kind::Gauge(Gauge::default()))),
        }
    }

    /// A histogram with `buckets` (upper bounds).
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        buckets: &'static [f64],
    ) -> Arc<Histogram> {
        let handle = self.register(name, help, || {
            let histogram = Histogram::new(buckets.iter().copied());
            (
                Registered::Histogram(histogram.clone()),
                Handle::Histogram(Arc::new(histogram)),
            )
        });
        match handle {
            Handle::Histogram(histogram) => histogram,
            _ => Arc::new(Histogram::new(buckets.iter().copied())),
        }
    }

    /// Histograms of one name, one per set of labels given when observing.
    pub fn histogram_family(
        &self,
        name: &'static str,
        help: &'static str,
        buckets: &'static [f64],
    ) -> Arc<HistogramFamily> {
        let handle = self.register(name, help, || {
            let family = HistogramFamily::new_with_constructor(Buckets(buckets));
            (
                Registered::Family(family.clone()),
                Handle::Family(Arc::new(family)),
            )
        });
        match handle {
            Handle::Family(family) => family,
            _ => Arc::new(HistogramFamily::new_with_constructor(Buckets(buckets))),
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    ///
    /// Metrics of one name registered by several labelled views (the roles of one process)
    /// are one family: Prometheus refuses a second `# TYPE` line for a name.
    pub fn render(&self) -> String {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<&'static str> = Vec::new();
        for entry in entries.iter() {
            if !names.contains(&entry.name) {
                names.push(entry.name);
            }
        }
        let mut out = String::new();
        for name in names {
            let mut registry = Registry::default();
            for entry in entries.iter().filter(|e| e.name == name) {
                let labels = entry
                    .labels
                    .iter()
                    .map(|(k, v)| (Cow::Owned(k.clone()), Cow::Owned(v.clone())));
                let target = registry.sub_registry_with_labels(labels);
                // The encoder appends `_total` to counters and a full stop to help texts.
                let name = entry.name.strip_suffix("_total").unwrap_or(entry.name);
                let help = entry.help.strip_suffix('.').unwrap_or(entry.help);
                match entry.metric.clone() {
                    Registered::Counter(c) => target.register(name, help, c),
                    Registered::Gauge(g) => target.register(name, help, g),
                    Registered::Histogram(h) => target.register(name, help, h),
                    Registered::Family(f) => target.register(name, help, f),
                }
            }
            let mut family = String::new();
            if prometheus_text::encode(&mut family, &registry).is_err() {
                tracing::error!(metric = name, "could not encode a metric");
                continue;
            }
            let (headers, samples): (Vec<&str>, Vec<&str>) =
                family.lines().partition(|line| line.starts_with('#'));
            let mut written: Vec<&str> = Vec::new();
            for header in headers {
                if header != "# EOF" && !written.contains(&header) {
                    written.push(header);
                }
            }
            for line in written.into_iter().chain(samples) {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::new();
        let c = metrics.counter("herald_x_total", "Things.");
        c.add(3);
        let text = metrics.render();
        assert!(
            text.contains("# TYPE herald_x_total counter\nherald_x_total 3\n"),
            "{text}"
        );
        assert_eq!(metrics.counter("herald_x_total", "Things.").get(), 3);
        let g = metrics.gauge("herald_open", "Open things.");
        g.inc();
        g.inc();
        g.dec();
        assert_eq!(g.get(), 1);
    }

    #[test]
    fn histograms_and_labels_are_rendered() {
        let metrics = Metrics::new();
        let gateway = metrics.labelled(&[("role", "gateway"), ("gateway", "g1")]);
        gateway.gauge("herald_conns", "Conns.").inc();
        let latency = gateway.histogram("herald_latency_seconds", "Latency.", LATENCY_BUCKETS);
        latency.observe(0.003);
        let routes = metrics.histogram_family("herald_rest_seconds", "REST.", LATENCY_BUCKETS);
        routes
            .get_or_create(&vec![
                ("route".to_string(), "/v1/notify".to_string()),
                ("status".to_string(), "202".to_string()),
            ])
            .observe(0.02);
        let text = metrics.render();
        assert!(
            text.contains("herald_conns{role=\"gateway\",gateway=\"g1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("herald_latency_seconds_count{role=\"gateway\",gateway=\"g1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("herald_rest_seconds_count{route=\"/v1/notify\",status=\"202\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn one_family_per_name_across_labelled_views() {
        let metrics = Metrics::new();
        metrics
            .labelled(&[("role", "gateway")])
            .counter("herald_a_total", "As.")
            .inc();
        metrics
            .labelled(&[("role", "rest")])
            .counter("herald_a_total", "As.")
            .add(2);
        let text = metrics.render();
        assert_eq!(
            text.matches("# TYPE herald_a_total counter").count(),
            1,
            "{text}"
        );
        assert_eq!(
            text.matches("# HELP herald_a_total As.\n").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("herald_a_total{role=\"gateway\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("herald_a_total{role=\"rest\"} 2\n"), "{text}");
    }
}
