//! The publishing side: a keep-alive HTTP/1.1 client POSTing to the REST adapter, workers that
//! send at full speed (bounded concurrency) or at a fixed rate, and a publisher straight to NATS.

use crate::plan::{payload, Layout, Mark};
use crate::stats::{new_histogram, record_ns};
use crate::sys;
use anyhow::{anyhow, Context};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Longest wait for one POST.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Error texts kept for the report.
const KEPT_ERRORS: usize = 5;

/// One keep-alive HTTP/1.1 connection to the REST adapter.
pub struct HttpConn {
    sender: http1::SendRequest<Full<Bytes>>,
    host: HeaderValue,
    auth: HeaderValue,
}

impl HttpConn {
    /// Connects to `addr`, sending `Authorization: Bearer key` on every request.
    pub async fn connect(addr: SocketAddr, key: &str) -> anyhow::Result<HttpConn> {
        let stream = tokio::time::timeout(POST_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("connecting to {addr} timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(HttpConn {
            sender,
            host: HeaderValue::from_str(&addr.to_string())?,
            auth: HeaderValue::from_str(&format!("Bearer {key}"))?,
        })
    }

    /// POSTs a JSON body; returns the status and the response body.
    pub async fn post(&mut self, path: &str, body: Bytes) -> anyhow::Result<(StatusCode, Bytes)> {
        let exchange = async {
            self.sender.ready().await?;
            let request = Request::post(path)
                .header(HOST, self.host.clone())
                .header(AUTHORIZATION, self.auth.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(body))?;
            let response = self.sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, body))
        };
        tokio::time::timeout(POST_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow!("POST {path} took over {POST_TIMEOUT:?}"))?
    }
}

impl HttpConn {
    /// GETs `path`; returns the status and the response body.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
        let exchange = async {
            self.sender.ready().await?;
            let request = Request::get(path)
                .header(HOST, self.host.clone())
                .header(AUTHORIZATION, self.auth.clone())
                .body(Full::new(Bytes::new()))?;
            let response = self.sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, body))
        };
        tokio::time::timeout(POST_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow!("GET {path} took over {POST_TIMEOUT:?}"))?
    }
}

/// How to publish.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Events to send.
    pub events: u64,
    /// Concurrent publishers (each waits for its answer before sending the next).
    pub workers: u32,
    /// Events per second over all workers; full speed when `None`.
    pub rate: Option<f64>,
    /// Approximate payload size, bytes.
    pub payload_bytes: usize,
    /// Where events go.
    pub layout: Layout,
    /// Stop sending after this long.
    pub max_duration: Duration,
}

/// What publishing did.
pub struct Outcome {
    /// Events accepted (202 from Herald, published to NATS).
    pub accepted: u64,
    /// Events not accepted or never sent.
    pub rejected: Vec<u64>,
    /// Requests that failed (an answer other than 202, or no answer).
    pub failed: u64,
    /// When the first event was due, ns.
    pub start_ns: u64,
    /// When the last answer came, ns.
    pub end_ns: u64,
    /// Time from sending a POST to its answer, µs.
    pub post_latency: Histogram<u64>,
    /// HTTP statuses other than 202, and their counts.
    pub statuses: BTreeMap<u16, u64>,
    /// The first few failures.
    pub errors: Vec<String>,
    /// Largest delay between an event's due time and its sending, ms (fixed rate only).
    pub max_lag_ms: f64,
}

impl Outcome {
    pub(crate) fn new(start_ns: u64) -> Self {
        Outcome {
            accepted: 0,
            rejected: Vec::new(),
            failed: 0,
            start_ns,
            end_ns: start_ns,
            post_latency: new_histogram(),
            statuses: BTreeMap::new(),
            errors: Vec::new(),
            max_lag_ms: 0.0,
        }
    }

    pub(crate) fn merge(&mut self, other: Outcome) {
        self.accepted += other.accepted;
        self.rejected.extend(other.rejected);
        self.failed += other.failed;
        self.end_ns = self.end_ns.max(other.end_ns);
        let _ = self.post_latency.add(&other.post_latency);
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        for e in other.errors {
            if self.errors.len() < KEPT_ERRORS {
                self.errors.push(e);
            }
        }
        self.max_lag_ms = self.max_lag_ms.max(other.max_lag_ms);
    }

    pub(crate) fn error(&mut self, e: String) {
        if self.errors.len() < KEPT_ERRORS {
            self.errors.push(e);
        }
    }
}

/// Shared by the workers of one publishing run.
pub(crate) struct Job {
    pub(crate) plan: Plan,
    next: AtomicU64,
    pub(crate) start_ns: u64,
    deadline_ns: u64,
}

impl Job {
    pub(crate) fn new(plan: Plan) -> Arc<Job> {
        // At a fixed rate, a short head start so the schedule does not begin in the past.
        let head_start = if plan.rate.is_some() { 2_000_000 } else { 0 };
        let start_ns = sys::now_ns() + head_start;
        Arc::new(Job {
            deadline_ns: start_ns + plan.max_duration.as_nanos() as u64,
            plan,
            next: AtomicU64::new(0),
            start_ns,
        })
    }

    /// The `k`-th event of worker `w` and when it is due: at full speed, the next free number
    /// and now; at a fixed rate, events interleave over workers on a fixed schedule.
    pub(crate) async fn next_event(&self, w: u64, k: u64) -> Option<(u64, u64)> {
        let workers = u64::from(self.plan.workers.max(1));
        match self.plan.rate {
            None => {
                if sys::now_ns() >= self.deadline_ns {
                    return None;
                }
                let g = self.next.fetch_add(1, Ordering::Relaxed);
                (g < self.plan.events).then(sys::now_ns).map(|t| (g, t))
            }
            Some(rate) => {
                let g = w + k * workers;
                let due = self.start_ns + (g as f64 * 1e9 / rate) as u64;
                if g >= self.plan.events || due >= self.deadline_ns {
                    return None;
                }
                let now = sys::now_ns();
                if due > now {
                    tokio::time::sleep(Duration::from_nanos(due - now)).await;
                }
                Some((g, due))
            }
        }
    }

    /// Event numbers handed out so far at full speed.
    pub(crate) fn claimed(&self) -> u64 {
        self.next.load(Ordering::Relaxed).min(self.plan.events)
    }

    /// Events this worker was due to send but did not (stopped by the deadline).
    pub(crate) fn unsent(&self, w: u64, k: u64, sent_up_to: u64) -> Vec<u64> {
        let workers = u64::from(self.plan.workers.max(1));
        match self.plan.rate {
            None if w == 0 => (sent_up_to.min(self.plan.events)..self.plan.events).collect(),
            None => Vec::new(),
            Some(_) => (k..)
                .map(|k| w + k * workers)
                .take_while(|&g| g < self.plan.events)
                .collect(),
        }
    }
}

/// POSTs events to Herald's REST adapter at `addr` with API key `key`.
pub async fn publish_herald(addr: SocketAddr, key: &str, plan: Plan) -> Outcome {
    let key = key.to_string();
    run_workers(plan, move |job, w| {
        let key = key.clone();
        async move { herald_worker(addr, &key, &job, w).await }
    })
    .await
}

/// Runs `plan.workers` workers (`worker(job, w)`) to the end and merges what they did; at full
/// speed the event numbers nobody claimed count as unsent.
pub(crate) async fn run_workers<F, Fut>(plan: Plan, worker: F) -> Outcome
where
    F: Fn(Arc<Job>, u64) -> Fut,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    let job = Job::new(plan);
    let tasks: Vec<_> = (0..u64::from(job.plan.workers.max(1)))
        .map(|w| tokio::spawn(worker(job.clone(), w)))
        .collect();
    let mut outcome = Outcome::new(job.start_ns);
    for task in tasks {
        match task.await {
            Ok(o) => outcome.merge(o),
            Err(e) => outcome.error(format!("publisher task failed: {e}")),
        }
    }
    if job.plan.rate.is_none() {
        outcome.rejected.extend(job.claimed()..job.plan.events);
    }
    outcome
}

async fn herald_worker(addr: SocketAddr, key: &str, job: &Job, w: u64) -> Outcome {
    let mut outcome = Outcome::new(job.start_ns);
    let mut conn: Option<HttpConn> = None;
    let mut k = 0;
    let mut failures_in_a_row = 0u32;
    while let Some((g, due)) = job.next_event(w, k).await {
        let mark = Mark { g, w, k, t: due };
        k += 1;
        let sent_ns = sys::now_ns();
        if job.plan.rate.is_some() {
            outcome.max_lag_ms = outcome
                .max_lag_ms
                .max(sent_ns.saturating_sub(due) as f64 / 1e6);
        }
        let (path, body) = herald_request(&job.plan.layout, mark, job.plan.payload_bytes);
        let result = async {
            if conn.is_none() {
                conn = Some(HttpConn::connect(addr, key).await?);
            }
            match conn.as_mut() {
                Some(c) => c.post(&path, body).await,
                None => Err(anyhow!("no connection")),
            }
        }
        .await;
        let now = sys::now_ns();
        outcome.end_ns = now;
        match result {
            Ok((StatusCode::ACCEPTED, _)) => {
                outcome.accepted += 1;
                record_ns(&mut outcome.post_latency, now - sent_ns);
                failures_in_a_row = 0;
            }
            Ok((status, body)) => {
                outcome.rejected.push(g);
                outcome.failed += 1;
                *outcome.statuses.entry(status.as_u16()).or_default() += 1;
                outcome.error(format!("{status}: {}", String::from_utf8_lossy(&body)));
                failures_in_a_row += 1;
            }
            Err(e) => {
                outcome.rejected.push(g);
                outcome.failed += 1;
                outcome.error(format!("{e:#}"));
                conn = None;
                failures_in_a_row += 1;
            }
        }
        if failures_in_a_row >= 20 {
            outcome.error(format!("worker {w}: 20 failures in a row; giving up"));
            outcome.rejected.extend(job.unsent(w, k, u64::MAX));
            break;
        }
    }
    outcome
}

/// The path and body of the POST carrying `mark`.
pub fn herald_request(layout: &Layout, mark: Mark, payload_bytes: usize) -> (String, Bytes) {
    let payload = payload(mark, payload_bytes);
    if layout.broadcast {
        let body = format!(
            "{{\"event\":\"BENCH\",\"targets\":{{\"broadcast\":true}},\"payload\":{payload}}}"
        );
        ("/v1/notify".to_string(), Bytes::from(body))
    } else if layout.to_users {
        let user = layout.user(u64::from(layout.channel_of_event(mark.g)));
        let body = format!("{{\"event\":\"BENCH\",\"payload\":{payload}}}");
        (format!("/v1/notify/user/{user}"), Bytes::from(body))
    } else {
        let channel = layout.channel(layout.channel_of_event(mark.g));
        let body = format!("{{\"event\":\"BENCH\",\"payload\":{payload}}}");
        (format!("/v1/notify/channel/{channel}"), Bytes::from(body))
    }
}

/// Publishes events straight to NATS (the reference): one publisher, `w` = 0.
pub async fn publish_nats(client: &async_nats::Client, plan: Plan) -> Outcome {
    let job = Job::new(Plan { workers: 1, ..plan });
    let mut outcome = Outcome::new(job.start_ns);
    let layout = &job.plan.layout;
    let mut k = 0;
    while let Some((g, due)) = job.next_event(0, k).await {
        let mark = Mark { g, w: 0, k, t: due };
        k += 1;
        let sent_ns = sys::now_ns();
        if job.plan.rate.is_some() {
            outcome.max_lag_ms = outcome
                .max_lag_ms
                .max(sent_ns.saturating_sub(due) as f64 / 1e6);
        }
        let subject = if layout.broadcast {
            layout.broadcast_subject()
        } else {
            layout.subject(layout.channel_of_event(g))
        };
        let body = Bytes::from(payload(mark, job.plan.payload_bytes));
        match client.publish(subject, body).await {
            Ok(()) => outcome.accepted += 1,
            Err(e) => {
                outcome.rejected.push(g);
                outcome.failed += 1;
                outcome.error(format!("publish: {e}"));
            }
        }
        // At a fixed rate each message goes out at once, as a POST would.
        if job.plan.rate.is_some() {
            if let Err(e) = client.flush().await {
                outcome.error(format!("flush: {e}"));
            }
        }
        outcome.end_ns = sys::now_ns();
    }
    if let Err(e) = client.flush().await {
        outcome.error(format!("flush: {e}"));
    }
    outcome.end_ns = sys::now_ns();
    outcome.rejected.extend(job.unsent(0, k, k));
    outcome
}

/// One level of the ingest test: `clients` concurrent keep-alive clients POSTing for
/// `duration` (at most `max_requests` in all). Nobody subscribes; `failed` counts the
/// requests not answered 202 (requests never made because time was up are not failures).
pub async fn ingest_level(
    addr: SocketAddr,
    key: &str,
    layout: &Layout,
    clients: u32,
    duration: Duration,
    max_requests: u64,
    payload_bytes: usize,
) -> Outcome {
    let plan = Plan {
        events: max_requests,
        workers: clients,
        rate: None,
        payload_bytes,
        layout: layout.clone(),
        max_duration: duration,
    };
    publish_herald(addr, key, plan).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_follow_the_layout() {
        let layout = Layout {
            run: "r".into(),
            channels: 3,
            per_conn: 1,
            broadcast: false,
            to_users: false,
            pusher_app: None,
        };
        let mark = Mark {
            g: 4,
            w: 0,
            k: 0,
            t: 1,
        };
        let (path, body) = herald_request(&layout, mark, 100);
        assert_eq!(path, "/v1/notify/channel/bench-r-1");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["event"], "BENCH");
        let broadcast = Layout {
            broadcast: true,
            to_users: false,
            ..layout
        };
        let (path, body) = herald_request(&broadcast, mark, 100);
        assert_eq!(path, "/v1/notify");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["targets"]["broadcast"], true);
    }

    #[tokio::test]
    async fn fixed_rate_interleaves_workers() {
        let job = Job::new(Plan {
            events: 6,
            workers: 2,
            rate: Some(1000.0),
            payload_bytes: 10,
            layout: Layout {
                run: "r".into(),
                channels: 1,
                per_conn: 1,
                broadcast: false,
                to_users: false,
                pusher_app: None,
            },
            max_duration: Duration::from_secs(5),
        });
        let (g0, due0) = job.next_event(1, 0).await.unwrap();
        let (g1, due1) = job.next_event(1, 1).await.unwrap();
        assert_eq!((g0, g1), (1, 3));
        assert_eq!(due1 - due0, 2_000_000);
        assert_eq!(job.unsent(1, 2, 0), vec![5]);
        assert!(job.next_event(1, 3).await.is_none());
    }
}
