//! The driving process: starts subscriber processes, publishes, gathers their reports, and
//! prints the results line and summary.

use crate::plan::{FromWorker, Layout, ReadyReport, Target, ToWorker, WorkerResult, WorkerSpec};
use crate::publisher::{self, Plan};
use crate::stats::{add_pairs, new_histogram, percentiles_ms};
use crate::{
    sys, ChannelsArgs, Common, FanoutArgs, IdleArgs, IngestArgs, PublishArgs, RpcArgs, Via,
};
use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// A mode and its arguments.
pub enum Job {
    /// `fanout`.
    Fanout(FanoutArgs),
    /// `channels`.
    Channels(ChannelsArgs),
    /// `idle`.
    Idle(IdleArgs),
    /// `ingest`.
    Ingest(IngestArgs),
    /// `rpc`.
    Rpc(RpcArgs),
}

/// Runs a mode; `Ok(false)` when `--strict` found a fault.
pub fn run(job: Job) -> anyhow::Result<bool> {
    sys::raise_nofile();
    let common = match &job {
        Job::Fanout(a) => &a.common,
        Job::Channels(a) => &a.common,
        Job::Idle(a) => &a.common,
        Job::Ingest(a) => &a.common,
        Job::Rpc(a) => &a.common,
    };
    let limit = Duration::from_secs(common.max_secs);
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!(
            "herald-bench: --max-secs {} reached; stopping",
            limit.as_secs()
        );
        std::process::exit(3);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (results, faults, strict) = match job {
            Job::Fanout(a) => {
                let layout = Layout {
                    run: run_id(),
                    channels: 1,
                    per_conn: 1,
                    broadcast: a.broadcast,
                    to_users: false,
                    pusher_app: pusher_app(&a.common),
                };
                let (r, f) =
                    delivery("fanout", &a.common, &a.publish, a.subscribers, layout).await?;
                (r, f, a.common.strict)
            }
            Job::Channels(a) => {
                if a.per_conn == 0 || a.per_conn > a.channels {
                    bail!("--per-conn must be between 1 and --channels");
                }
                if a.to_users && (a.per_conn != 1 || u64::from(a.channels) != a.subscribers) {
                    bail!("--to-users needs --per-conn 1 and as many channels as subscribers");
                }
                let layout = Layout {
                    run: run_id(),
                    channels: a.channels,
                    per_conn: a.per_conn,
                    broadcast: false,
                    to_users: a.to_users,
                    pusher_app: pusher_app(&a.common),
                };
                let (r, f) =
                    delivery("channels", &a.common, &a.publish, a.subscribers, layout).await?;
                (r, f, a.common.strict)
            }
            Job::Idle(a) => {
                let (r, f) = idle(&a).await?;
                (r, f, a.common.strict)
            }
            Job::Ingest(a) => {
                let (r, f) = ingest(&a).await?;
                (r, f, a.common.strict)
            }
            Job::Rpc(a) => {
                let (r, f) = crate::two_way::rpc(&a).await?;
                (r, f, a.common.strict)
            }
        };
        println!("{results}");
        if !faults.is_empty() {
            eprintln!("FAULTS: {}", faults.join("; "));
        }
        Ok(!strict || faults.is_empty())
    })
}

/// A short id that keeps this run's channels and users apart from earlier runs'.
fn run_id() -> String {
    let seed = sys::now_ns() ^ (u64::from(std::process::id()) << 32);
    format!("{:06x}", (seed ^ (seed >> 29)) & 0xff_ffff)
}

/// Today's date (UTC), for the results line.
pub(crate) fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn header(mode: &str, common: &Common) -> serde_json::Map<String, Value> {
    let (cores, mem_gib) = sys::machine();
    let mut map = serde_json::Map::new();
    map.insert("mode".into(), json!(mode));
    map.insert("target".into(), json!(common.target.name()));
    map.insert("label".into(), json!(common.label));
    map.insert("date".into(), json!(today()));
    map.insert("cores".into(), json!(cores));
    map.insert("mem_gib".into(), json!(mem_gib));
    map
}

/// WebSocket URLs of the subscribers' targets.
fn ws_urls(common: &Common) -> anyhow::Result<Vec<String>> {
    match common.target {
        Target::Herald => {
            if common.gateways.is_empty() {
                bail!("give at least one --gateway URL");
            }
            if common.jwt_secret.is_empty() {
                bail!("give --jwt-secret (the gateways' token secret)");
            }
            common
                .gateways
                .iter()
                .map(|g| Ok(format!("ws://{}/ws", sys::loopback_addr(g)?)))
                .collect()
        }
        Target::NatsWs => {
            let url = common
                .nats_ws
                .as_deref()
                .ok_or_else(|| anyhow!("--target nats-ws needs --nats-ws ws://127.0.0.1:PORT"))?;
            Ok(vec![format!("ws://{}/", sys::loopback_addr(url)?)])
        }
        Target::Pusher => {
            let key = common
                .pusher_key
                .as_deref()
                .ok_or_else(|| anyhow!("--target pusher needs --pusher-key and --pusher-app"))?;
            common
                .gateways
                .iter()
                .map(|g| {
                    Ok(format!(
                        "ws://{}/app/{key}?protocol=7",
                        sys::loopback_addr(g)?
                    ))
                })
                .collect()
        }
    }
}

/// The app whose channels events go to, when the subscribers speak Pusher.
fn pusher_app(common: &Common) -> Option<String> {
    (common.target == Target::Pusher).then(|| common.pusher_app.clone().unwrap_or_default())
}

/// A running subscriber process.
struct WorkerProc {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl WorkerProc {
    async fn read(&mut self, limit: Duration) -> anyhow::Result<FromWorker> {
        let line = tokio::time::timeout(limit, self.lines.next_line())
            .await
            .map_err(|_| anyhow!("a subscriber process said nothing for {limit:?}"))??
            .ok_or_else(|| anyhow!("a subscriber process exited early (see its messages above)"))?;
        serde_json::from_str(&line).with_context(|| format!("bad report from a subscriber: {line}"))
    }

    async fn send(&mut self, message: &ToWorker) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(message)?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        self.stdin.flush().await?;
        Ok(())
    }
}

/// The subscriber processes of a run.
struct Fleet {
    procs: Vec<WorkerProc>,
    ready_limit: Duration,
}

impl Fleet {
    /// Starts enough subscriber processes for `total` connections and sends each its share.
    fn start(
        common: &Common,
        layout: &Layout,
        total: u64,
        events: u64,
        workers: u32,
    ) -> anyhow::Result<Fleet> {
        let urls = ws_urls(common)?;
        let per_proc = common.conns_per_proc.max(1);
        let count = total.div_ceil(per_proc).max(1);
        let exe = std::env::current_exe().context("locating herald-bench")?;
        let mut procs = Vec::new();
        let mut first = 0;
        for p in 0..count {
            let share = total / count + u64::from(p < total % count);
            let spec = WorkerSpec {
                target: common.target,
                urls: urls.clone(),
                jwt_secret: common.jwt_secret.clone(),
                first,
                count: share,
                layout: layout.clone(),
                events,
                workers,
                source_addrs: common.source_addrs,
                connect_concurrency: common.connect_concurrency,
                read_buffer: common.client_read_buffer,
                connect_timeout_ms: common.connect_timeout_secs * 1000,
                ready_timeout_ms: common.ready_secs * 1000,
                deadline_ms: common.max_secs * 1000,
                threads: common.threads,
            };
            first += share;
            let mut child = tokio::process::Command::new(&exe)
                .arg("worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .context("starting a subscriber process")?;
            let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                bail!("subscriber process without pipes");
            };
            let mut line = serde_json::to_vec(&spec)?;
            line.push(b'\n');
            // The spec is small: the pipe takes it without waiting for the child to read.
            futures::executor::block_on(stdin.write_all(&line))?;
            procs.push(WorkerProc {
                child,
                stdin,
                lines: BufReader::new(stdout).lines(),
            });
        }
        Ok(Fleet {
            procs,
            ready_limit: Duration::from_secs(common.ready_secs + 30),
        })
    }

    /// Waits until every process has set up its connections.
    async fn ready(&mut self) -> anyhow::Result<ReadyReport> {
        let mut all = ReadyReport {
            start_ns: u64::MAX,
            ..ReadyReport::default()
        };
        for proc in &mut self.procs {
            match proc.read(self.ready_limit).await? {
                FromWorker::Ready(r) => {
                    all.ok += r.ok;
                    all.failed += r.failed;
                    all.start_ns = all.start_ns.min(r.start_ns);
                    all.end_ns = all.end_ns.max(r.end_ns);
                    for e in r.errors {
                        if all.errors.len() < 5 {
                            all.errors.push(e);
                        }
                    }
                }
                FromWorker::Result(_) => bail!("a subscriber reported results before being ready"),
            }
        }
        Ok(all)
    }

    /// Tells every process publishing is over and gathers their results.
    async fn finish(
        mut self,
        sent: u64,
        rejected: &[u64],
        drain: Duration,
        grace_ms: u64,
    ) -> anyhow::Result<Vec<WorkerResult>> {
        let message = ToWorker::Finish {
            sent,
            rejected: rejected.to_vec(),
            drain_ms: drain.as_millis() as u64,
            grace_ms,
        };
        for proc in &mut self.procs {
            proc.send(&message).await?;
        }
        let limit = drain + Duration::from_millis(grace_ms) + Duration::from_secs(30);
        let mut results = Vec::new();
        for proc in &mut self.procs {
            match proc.read(limit).await? {
                FromWorker::Result(r) => results.push(r),
                FromWorker::Ready(_) => bail!("a subscriber reported ready twice"),
            }
        }
        for proc in &mut self.procs {
            let _ = tokio::time::timeout(Duration::from_secs(15), proc.child.wait()).await;
        }
        Ok(results)
    }
}

fn connect_json(ready: &ReadyReport) -> Value {
    let secs = ready.end_ns.saturating_sub(ready.start_ns) as f64 / 1e9;
    json!({
        "ok": ready.ok,
        "failed": ready.failed,
        "secs": round(secs, 3),
        "per_sec": round(if secs > 0.0 { ready.ok as f64 / secs } else { 0.0 }, 1),
        "errors": ready.errors,
    })
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// `fanout` and `channels`: subscribers, publishing, deliveries.
async fn delivery(
    mode: &str,
    common: &Common,
    publish: &PublishArgs,
    subscribers: u64,
    layout: Layout,
) -> anyhow::Result<(Value, Vec<String>)> {
    let workers = match common.target {
        Target::Herald | Target::Pusher => publish.concurrency.max(1),
        Target::NatsWs => 1,
    };
    let plan = Plan {
        events: publish.events,
        workers,
        rate: publish.rate.filter(|r| *r > 0.0),
        payload_bytes: publish.payload_bytes,
        layout: layout.clone(),
        max_duration: Duration::from_secs(publish.publish_secs),
    };
    // The publishing side first, so a wrong address fails before connections are opened.
    enum Publisher {
        Rest(std::net::SocketAddr),
        Client(std::net::SocketAddr),
        Nats(async_nats::Client),
    }
    let publisher = match common.target {
        Target::Herald if publish.via == Via::Client => {
            let gateway = common
                .gateways
                .first()
                .ok_or_else(|| anyhow!("give at least one --gateway URL"))?;
            if layout.broadcast {
                bail!("--via client publishes to channels; it cannot broadcast");
            }
            Publisher::Client(sys::loopback_addr(gateway)?)
        }
        Target::Herald | Target::Pusher => {
            let rest = common
                .rest
                .as_deref()
                .ok_or_else(|| anyhow!("give --rest URL"))?;
            let addr = sys::loopback_addr(rest)?;
            warm_up(addr, &common.api_key, &layout).await?;
            Publisher::Rest(addr)
        }
        Target::NatsWs => {
            let url = common
                .nats
                .as_deref()
                .ok_or_else(|| anyhow!("give --nats URL"))?;
            sys::loopback_addr(url)?;
            Publisher::Nats(
                async_nats::connect(url)
                    .await
                    .with_context(|| format!("connecting to NATS at {url}"))?,
            )
        }
    };
    let mut fleet = Fleet::start(common, &layout, subscribers, publish.events, workers)?;
    let procs = fleet.procs.len();
    let ready = fleet.ready().await?;
    eprintln!(
        "{mode} [{}]: {} connections ready ({} failed) in {:.1} s; publishing {} events",
        common.target.name(),
        ready.ok,
        ready.failed,
        ready.end_ns.saturating_sub(ready.start_ns) as f64 / 1e9,
        publish.events
    );
    let outcome = match &publisher {
        Publisher::Rest(addr) => publisher::publish_herald(*addr, &common.api_key, plan).await,
        Publisher::Client(addr) => {
            crate::two_way::publish_client(*addr, &common.jwt_secret, plan).await
        }
        Publisher::Nats(client) => publisher::publish_nats(client, plan).await,
    };
    let results = fleet
        .finish(
            publish.events,
            &outcome.rejected,
            Duration::from_secs(common.drain_secs),
            common.grace_ms,
        )
        .await?;

    let mut total = WorkerResult::default();
    let mut latency = new_histogram();
    for r in &results {
        total.expected += r.expected;
        total.delivered += r.delivered;
        total.lost += r.lost;
        total.duplicated += r.duplicated;
        total.out_of_order += r.out_of_order;
        total.unexpected += r.unexpected;
        total.malformed += r.malformed;
        total.error_frames += r.error_frames;
        total.disconnects += r.disconnects;
        total
            .disconnect_reasons
            .extend(r.disconnect_reasons.iter().take(3).cloned());
        total.last_recv_ns = total.last_recv_ns.max(r.last_recv_ns);
        add_pairs(&mut latency, &r.latency_us);
    }
    let publish_secs = outcome.end_ns.saturating_sub(outcome.start_ns) as f64 / 1e9;
    let delivery_secs = total.last_recv_ns.saturating_sub(outcome.start_ns) as f64 / 1e9;
    let per_sec = |n: u64, secs: f64| round(if secs > 0.0 { n as f64 / secs } else { 0.0 }, 1);

    let mut map = header(mode, common);
    if common.target != Target::NatsWs {
        map.insert(
            "via".into(),
            json!(format!("{:?}", publish.via).to_lowercase()),
        );
    }
    map.insert("subscribers".into(), json!(subscribers));
    map.insert("subscriber_procs".into(), json!(procs));
    map.insert(
        "gateways".into(),
        json!(match common.target {
            Target::Herald | Target::Pusher => common.gateways.len(),
            Target::NatsWs => 1,
        }),
    );
    map.insert("channels".into(), json!(layout.channels));
    map.insert("per_conn".into(), json!(layout.per_conn));
    map.insert("broadcast".into(), json!(layout.broadcast));
    map.insert("events".into(), json!(publish.events));
    map.insert("concurrency".into(), json!(workers));
    map.insert("rate".into(), json!(publish.rate));
    map.insert("payload_bytes".into(), json!(publish.payload_bytes));
    map.insert("connect".into(), connect_json(&ready));
    map.insert("published".into(), json!(outcome.accepted));
    map.insert("publish_failed".into(), json!(outcome.failed));
    map.insert("publish_secs".into(), json!(round(publish_secs, 3)));
    map.insert(
        "publish_rate".into(),
        json!(per_sec(outcome.accepted, publish_secs)),
    );
    map.insert(
        "publish_lag_max_ms".into(),
        json!(round(outcome.max_lag_ms, 3)),
    );
    map.insert(
        "post_latency_ms".into(),
        percentiles_ms(&outcome.post_latency),
    );
    map.insert("publish_errors".into(), json!(outcome.errors));
    map.insert("expected".into(), json!(total.expected));
    map.insert("delivered".into(), json!(total.delivered));
    map.insert("lost".into(), json!(total.lost));
    map.insert("duplicated".into(), json!(total.duplicated));
    map.insert("out_of_order".into(), json!(total.out_of_order));
    map.insert("unexpected".into(), json!(total.unexpected));
    map.insert("malformed".into(), json!(total.malformed));
    map.insert("error_frames".into(), json!(total.error_frames));
    map.insert("disconnects".into(), json!(total.disconnects));
    map.insert("disconnect_reasons".into(), json!(total.disconnect_reasons));
    map.insert("delivery_secs".into(), json!(round(delivery_secs, 3)));
    map.insert(
        "deliveries_per_sec".into(),
        json!(per_sec(total.delivered, delivery_secs)),
    );
    map.insert("latency_ms".into(), percentiles_ms(&latency));

    let mut faults = Vec::new();
    for (name, n) in [
        ("lost", total.lost),
        ("duplicated", total.duplicated),
        ("out of order", total.out_of_order),
        ("unexpected", total.unexpected),
        ("malformed", total.malformed),
        ("error frames", total.error_frames),
        ("disconnects", total.disconnects),
        ("connections failed", ready.failed),
        ("events refused", outcome.failed),
        (
            "events unsent",
            outcome.rejected.len() as u64 - outcome.failed,
        ),
    ] {
        if n > 0 {
            faults.push(format!("{n} {name}"));
        }
    }
    if total.expected == 0 && publish.events > 0 {
        faults.push("nothing was expected: no connection set up".into());
    }

    let l = |q: &str| {
        map["latency_ms"]
            .get(q)
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    eprintln!(
        "{mode} [{}] {} subscribers over {} gateway(s), {} events ({}): published {} in {:.2} s ({:.0}/s)",
        common.target.name(),
        subscribers,
        map["gateways"],
        publish.events,
        match publish.rate {
            Some(r) => format!("{r}/s fixed rate, {workers} publishers"),
            None => format!("full speed, {workers} publishers"),
        },
        outcome.accepted,
        publish_secs,
        outcome.accepted as f64 / publish_secs.max(1e-9),
    );
    eprintln!(
        "  delivered {} of {} in {:.2} s: {:.0} deliveries/s; latency ms p50 {} p90 {} p99 {} p99.9 {} max {}",
        total.delivered,
        total.expected,
        delivery_secs,
        total.delivered as f64 / delivery_secs.max(1e-9),
        l("p50"),
        l("p90"),
        l("p99"),
        l("p999"),
        l("max"),
    );
    eprintln!(
        "  lost {} duplicated {} out-of-order {} unexpected {} disconnects {}",
        total.lost, total.duplicated, total.out_of_order, total.unexpected, total.disconnects
    );
    for e in outcome.errors.iter().chain(ready.errors.iter()) {
        eprintln!("  error: {e}");
    }
    for e in &total.disconnect_reasons {
        eprintln!("  disconnect: {e}");
    }
    Ok((Value::Object(map), faults))
}

/// One POST to a channel nobody is in, so the API key's verdict is cached before measuring.
/// Retried for a while on 503 or a refused connection: a deployment that was just started may
/// not have its dispatcher subscribed yet.
async fn warm_up(addr: std::net::SocketAddr, key: &str, layout: &Layout) -> anyhow::Result<()> {
    let path = format!("/v1/notify/channel/bench-{}-warmup", layout.run);
    let body = bytes::Bytes::from_static(br#"{"event":"BENCH:WARMUP","payload":{}}"#);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let mut conn = publisher::HttpConn::connect(addr, key).await?;
            conn.post(&path, body.clone()).await
        }
        .await;
        let retry = match attempt {
            Ok((hyper::StatusCode::ACCEPTED, _)) => return Ok(()),
            Ok((hyper::StatusCode::SERVICE_UNAVAILABLE, body)) => {
                format!("503 {}", String::from_utf8_lossy(&body))
            }
            Ok((status, body)) => bail!(
                "the REST adapter answered {status} to a test POST: {}",
                String::from_utf8_lossy(&body)
            ),
            Err(e) => format!("{e:#}"),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("the REST adapter at {addr} is not accepting events: {retry}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `idle`: connections set up and left idle; RSS of the server processes before and after.
async fn idle(args: &IdleArgs) -> anyhow::Result<(Value, Vec<String>)> {
    let common = &args.common;
    if args.per_conn == 0 || args.per_conn > args.channels {
        bail!("--per-conn must be between 1 and --channels");
    }
    let layout = Layout {
        run: run_id(),
        channels: args.channels,
        per_conn: args.per_conn,
        broadcast: false,
        to_users: false,
        pusher_app: pusher_app(&args.common),
    };
    let rss =
        |pids: &[u32]| -> Vec<Option<u64>> { pids.iter().map(|&p| sys::rss_kib(p)).collect() };
    let before = rss(&common.gateway_pids);
    let mut fleet = Fleet::start(common, &layout, args.connections, 0, 1)?;
    let procs = fleet.procs.len();
    let ready = fleet.ready().await?;
    eprintln!(
        "idle [{}]: {} connections ready ({} failed); holding {} s",
        common.target.name(),
        ready.ok,
        ready.failed,
        args.hold_secs
    );
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    let after = rss(&common.gateway_pids);
    let results = fleet.finish(0, &[], Duration::ZERO, 0).await?;
    let disconnects: u64 = results.iter().map(|r| r.disconnects).sum();
    let reasons: Vec<String> = results
        .iter()
        .flat_map(|r| r.disconnect_reasons.iter().take(3).cloned())
        .collect();
    let measured =
        !common.gateway_pids.is_empty() && before.iter().chain(after.iter()).all(Option::is_some);
    let sum = |v: &[Option<u64>]| v.iter().map(|x| x.unwrap_or(0)).sum::<u64>();
    let grown_kib = sum(&after).saturating_sub(sum(&before));
    let per_conn_kib = if measured && ready.ok > 0 {
        Some(round(grown_kib as f64 / ready.ok as f64, 2))
    } else {
        None
    };

    let mut map = header("idle", common);
    map.insert("connections".into(), json!(args.connections));
    map.insert("subscriber_procs".into(), json!(procs));
    map.insert("gateways".into(), json!(common.gateways.len().max(1)));
    map.insert("channels".into(), json!(args.channels));
    map.insert("per_conn".into(), json!(args.per_conn));
    map.insert("connect".into(), connect_json(&ready));
    map.insert("server_pids".into(), json!(common.gateway_pids));
    map.insert("rss_before_kib".into(), json!(before));
    map.insert("rss_after_kib".into(), json!(after));
    map.insert("rss_per_conn_kib".into(), json!(per_conn_kib));
    map.insert("hold_secs".into(), json!(args.hold_secs));
    map.insert("disconnects".into(), json!(disconnects));
    map.insert("disconnect_reasons".into(), json!(reasons));

    let connect = connect_json(&ready);
    eprintln!(
        "idle [{}] {} connections in {} channels ({} each): set up {} in {} s ({} per s), {} failed",
        common.target.name(),
        args.connections,
        args.channels,
        args.per_conn,
        ready.ok,
        connect["secs"],
        connect["per_sec"],
        ready.failed
    );
    match per_conn_kib {
        Some(kib) => eprintln!(
            "  server RSS {} KiB -> {} KiB: {kib} KiB per connection",
            sum(&before),
            sum(&after)
        ),
        None => eprintln!("  server RSS not measured (give --gateway-pid)"),
    }
    for e in ready.errors.iter().chain(reasons.iter()) {
        eprintln!("  error: {e}");
    }
    let mut faults = Vec::new();
    if ready.failed > 0 {
        faults.push(format!("{} connections failed", ready.failed));
    }
    if disconnects > 0 {
        faults.push(format!("{disconnects} disconnects"));
    }
    if !common.gateway_pids.is_empty() && !measured {
        faults.push("could not read the RSS of every --gateway-pid".into());
    }
    Ok((Value::Object(map), faults))
}

/// `ingest`: POSTs per second accepted by one adapter at several concurrency levels.
async fn ingest(args: &IngestArgs) -> anyhow::Result<(Value, Vec<String>)> {
    let common = &args.common;
    let rest = common
        .rest
        .as_deref()
        .ok_or_else(|| anyhow!("give --rest URL"))?;
    let addr = sys::loopback_addr(rest)?;
    let layout = Layout {
        run: run_id(),
        channels: 1,
        per_conn: 1,
        broadcast: false,
        to_users: false,
        pusher_app: None,
    };
    warm_up(addr, &common.api_key, &layout).await?;
    let mut levels = Vec::new();
    let mut faults = Vec::new();
    for &clients in &args.clients {
        let outcome = publisher::ingest_level(
            addr,
            &common.api_key,
            &layout,
            clients.max(1),
            Duration::from_secs(args.secs),
            args.max_requests,
            args.payload_bytes,
        )
        .await;
        let secs = outcome.end_ns.saturating_sub(outcome.start_ns) as f64 / 1e9;
        let per_sec = if secs > 0.0 {
            outcome.accepted as f64 / secs
        } else {
            0.0
        };
        let latency = percentiles_ms(&outcome.post_latency);
        eprintln!(
            "ingest: {clients:>3} clients: {} accepted in {secs:.2} s = {per_sec:.0} POST/s, {} failed; POST ms p50 {} p99 {}",
            outcome.accepted,
            outcome.failed,
            latency.get("p50").unwrap_or(&Value::Null),
            latency.get("p99").unwrap_or(&Value::Null),
        );
        for e in &outcome.errors {
            eprintln!("  error: {e}");
        }
        if outcome.failed > 0 {
            faults.push(format!(
                "{} POSTs failed with {clients} clients",
                outcome.failed
            ));
        }
        if outcome.accepted == 0 {
            faults.push(format!("no POST accepted with {clients} clients"));
        }
        levels.push(json!({
            "clients": clients,
            "accepted": outcome.accepted,
            "failed": outcome.failed,
            "secs": round(secs, 3),
            "per_sec": round(per_sec, 1),
            "post_latency_ms": latency,
            "statuses": outcome.statuses,
            "errors": outcome.errors,
        }));
    }
    let mut map = header("ingest", common);
    map.insert("target".into(), json!("herald"));
    map.insert("payload_bytes".into(), json!(args.payload_bytes));
    map.insert("levels".into(), json!(levels));
    Ok((Value::Object(map), faults))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        let date = today();
        assert_eq!(date.len(), 10);
        assert!(date.starts_with("20"));
    }
}
