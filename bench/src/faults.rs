//! `herald-bench faults`: starts a deployment of real processes on loopback (nats-server,
//! dispatchers, gateways, the REST adapter), puts a steady REST load on it, breaks one part
//! half-way and prints the healthy half beside the broken half.
//!
//! Scenarios:
//! - `dispatcher`: a dispatcher frozen (SIGSTOP), so requests are surely in flight to it, and
//!   SIGKILLed 0.3 s later: every event answered 202 must reach every connected member of its
//!   channel once; the longest REST answer shows what the death cost a backend.
//! - `gateway`: a gateway SIGKILLed: seconds until its connections leave presence.
//! - `nats-node`: on a three-node NATS cluster with KV at R3, the node leading the KV stream is
//!   SIGKILLed: accepted events lost, and how long join and ident were unavailable.
//! - `slow-reader`: a client that stops reading joins every channel: the others' latency.
//! - `nats-restart`: the one nats-server SIGKILLed and started again: seconds from the server
//!   accepting connections to the first 202.
//!
//! Everything runs on 127.0.0.1, with bounded counts and durations, and every process started
//! here is killed on the way out.

use crate::publisher::HttpConn;
use crate::stats::{new_histogram, percentiles_ms, record_ns};
use crate::sys::now_ns;
use crate::wsclient::{Frame, WsClient};
use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use clap::ValueEnum;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What to break.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// SIGKILL a dispatcher under load.
    Dispatcher,
    /// SIGKILL a gateway holding half the clients.
    Gateway,
    /// SIGKILL the NATS node leading the KV stream of a three-node cluster.
    NatsNode,
    /// Add a client that joins every channel and never reads.
    SlowReader,
    /// SIGKILL the nats-server and start it again.
    NatsRestart,
}

/// Knobs of a fault run.
#[derive(clap::Args, Clone, Debug)]
pub struct FaultsArgs {
    /// The herald binary to start.
    #[arg(long)]
    pub herald: PathBuf,
    /// A nats-server (2.10 or newer) to start.
    #[arg(long)]
    pub nats_server: PathBuf,
    /// Scenarios to run, in order (default: all).
    #[arg(long = "scenario", value_enum)]
    pub scenarios: Vec<Scenario>,
    /// WebSocket clients, spread over the gateways and the channels.
    #[arg(long, default_value_t = 200)]
    pub clients: u32,
    /// Channels; each event goes to one, each client joins one.
    #[arg(long, default_value_t = 10)]
    pub channels: u32,
    /// REST events per second.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds of each half: healthy, then broken.
    #[arg(long, default_value_t = 10)]
    pub phase_secs: u64,
    /// Gateways.
    #[arg(long, default_value_t = 2)]
    pub gateways: usize,
    /// Dispatchers.
    #[arg(long, default_value_t = 2)]
    pub dispatchers: usize,
    /// Bytes of padding in each payload.
    #[arg(long, default_value_t = 200)]
    pub payload_bytes: usize,
}

const SECRET: &str = "faults-bench-secret-0123456789abcdef";
const API_KEY: &str = "faults-bench-key";
/// Sequential REST backends sharing the rate.
const PUBLISHERS: u64 = 4;
/// Longest any start-up step may take.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Runs the scenarios; prints a table per scenario on stdout. True when nothing was lost.
pub fn run(args: FaultsArgs) -> anyhow::Result<bool> {
    for bin in [&args.herald, &args.nats_server] {
        if !bin.exists() {
            bail!("{} does not exist", bin.display());
        }
    }
    if args.clients == 0 || args.channels == 0 || args.gateways == 0 || args.rate <= 0.0 {
        bail!("clients, channels, gateways and rate must be positive");
    }
    if args.phase_secs > 600 || args.clients > 5_000 || args.rate > 5_000.0 {
        bail!("keep a fault run bounded: phase-secs <= 600, clients <= 5000, rate <= 5000");
    }
    let scenarios = if args.scenarios.is_empty() {
        Scenario::value_variants().to_vec()
    } else {
        args.scenarios.clone()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let hash = herald_core::credentials::hash_secret(API_KEY)
        .map_err(|e| anyhow!("hashing the API key: {e}"))?;
    let mut clean = true;
    for scenario in scenarios {
        let work = std::env::temp_dir().join(format!(
            "herald-faults-{}-{:?}",
            std::process::id(),
            scenario
        ));
        std::fs::create_dir_all(&work)?;
        let result = runtime.block_on(run_scenario(&args, scenario, &hash, &work));
        let _ = std::fs::remove_dir_all(&work);
        match result {
            Ok(ok) => clean &= ok,
            Err(e) => {
                println!("{scenario:?}: failed to run: {e:#}\n");
                clean = false;
            }
        }
    }
    Ok(clean)
}

// ---- processes ----

/// A child process, SIGKILLed when dropped.
struct Proc {
    child: Child,
}

impl Proc {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `herald <args>`; waits for the line that says it is ready and returns the address
/// it listens on, if it printed one. Logs go to `work/<name>.err`.
fn herald(
    bin: &Path,
    args: &[String],
    work: &Path,
    name: &str,
) -> anyhow::Result<(Proc, Option<SocketAddr>)> {
    let err = std::fs::File::create(work.join(format!("{name}.err")))?;
    let mut child = Command::new(bin)
        .args(args)
        .env(
            "HERALD_LOG",
            std::env::var("HERALD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on http://").nth(1) {
                let _ = tx.send(addr.trim().parse::<SocketAddr>().ok());
            } else if line.ends_with(" running") {
                let _ = tx.send(None);
            }
        }
    });
    let mut proc = Proc { child };
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(addr) => Ok((proc, addr)),
        Err(_) => {
            proc.kill();
            bail!(
                "herald {name} did not start; see {}",
                work.join(format!("{name}.err")).display()
            )
        }
    }
}

/// One nats-server, restartable on the same port and store.
struct NatsNode {
    proc: Option<Proc>,
    port: u16,
    args: Vec<String>,
}

impl NatsNode {
    fn start(&mut self, bin: &Path) -> anyhow::Result<()> {
        let child = Command::new(bin)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nats-server")?;
        self.proc = Some(Proc { child });
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if started.elapsed() > START_DEADLINE {
                bail!("nats-server did not open port {}", self.port);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn kill(&mut self) {
        self.proc.take();
    }
}

struct Deployment {
    nats: Vec<NatsNode>,
    dispatchers: Vec<Proc>,
    gateways: Vec<(Proc, SocketAddr)>,
    _rest: Proc,
    rest: SocketAddr,
}

fn deploy(args: &FaultsArgs, hash: &str, work: &Path, nodes: usize) -> anyhow::Result<Deployment> {
    let ports: Vec<(u16, u16)> = (0..nodes)
        .map(|_| Ok((free_port()?, free_port()?)))
        .collect::<anyhow::Result<_>>()?;
    let routes = ports
        .iter()
        .map(|(_, r)| format!("nats://127.0.0.1:{r}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut nats = Vec::new();
    for (i, &(port, route)) in ports.iter().enumerate() {
        let store = work.join(format!("js{i}"));
        let mut node_args: Vec<String> = vec![
            "-js".into(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-sd".into(),
            store.display().to_string(),
        ];
        if nodes > 1 {
            node_args.extend([
                "-n".into(),
                format!("n{i}"),
                "--cluster_name".into(),
                "faults".into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{route}"),
                "--routes".into(),
                routes.clone(),
            ]);
        }
        let mut node = NatsNode {
            proc: None,
            port,
            args: node_args,
        };
        node.start(&args.nats_server)?;
        nats.push(node);
    }
    let url = ports
        .iter()
        .map(|(p, _)| format!("nats://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let role = |role: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = role.iter().map(|s| s.to_string()).collect();
        v.extend(
            [
                "--nats",
                &url,
                "--jwt-secret",
                SECRET,
                "--api-key-hash",
                hash,
                "--listen",
                "127.0.0.1:0",
                "--kv-replicas",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        v.push(if nodes > 1 { "3" } else { "1" }.into());
        v
    };
    // On a fresh cluster the first dispatcher fails fast until JetStream has a meta leader.
    let started = Instant::now();
    let mut dispatchers = Vec::new();
    while dispatchers.len() < args.dispatchers {
        let name = format!("dispatcher{}", dispatchers.len());
        match herald(&args.herald, &role(&["dispatcher"]), work, &name) {
            Ok((p, _)) => dispatchers.push(p),
            Err(e) if started.elapsed() < START_DEADLINE => {
                tracing_free_note(&format!("retrying: {e:#}"));
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e),
        }
    }
    let mut gateways = Vec::new();
    for i in 0..args.gateways {
        let (p, addr) = herald(
            &args.herald,
            &role(&["gateway"]),
            work,
            &format!("gateway{i}"),
        )?;
        gateways.push((p, addr.context("gateway address")?));
    }
    let (rest_proc, rest) = herald(&args.herald, &role(&["adapter", "rest"]), work, "rest")?;
    Ok(Deployment {
        nats,
        dispatchers,
        gateways,
        _rest: rest_proc,
        rest: rest.context("rest address")?,
    })
}

fn tracing_free_note(note: &str) {
    eprintln!("  {note}");
}

// ---- clients ----

/// What one client received: a count per event number, and when it was closed.
struct Inbox {
    counts: Mutex<Vec<u8>>,
    closed_at: Mutex<Option<Instant>>,
}

fn token(user: &str) -> anyhow::Result<String> {
    token_signed(SECRET, user)
}

/// A one-hour token for `user`, signed with `secret`.
pub(crate) fn token_signed(secret: &str, user: &str) -> anyhow::Result<String> {
    let claims = herald_core::token::Claims {
        sub: user.to_string(),
        exp: herald_core::token::now_secs() + 3600,
        iat: None,
        channels: Vec::new(),
        publish: Vec::new(),
        jti: None,
        once: false,
    };
    herald_core::token::mint(secret.as_bytes(), &claims).map_err(|e| anyhow!("token: {e}"))
}

/// The next data frame as JSON, answering pings; `None` when closed.
pub(crate) async fn next_json(ws: &mut WsClient) -> anyhow::Result<Option<Value>> {
    loop {
        let mut ping = None;
        match ws.next_frame()? {
            Some(Frame::Data(bytes)) => return Ok(Some(serde_json::from_slice(bytes)?)),
            Some(Frame::Ping(p)) => ping = Some(p.to_vec()),
            Some(Frame::Close(..)) => return Ok(None),
            None => {
                if !ws.fill().await? {
                    return Ok(None);
                }
            }
        }
        if let Some(p) = ping {
            ws.pong(&p).await?;
        }
    }
}

/// Sends a request frame and waits for its answer (`ok` or `error`), skipping events.
async fn ask(ws: &mut WsClient, frame: Value) -> anyhow::Result<Value> {
    let id = frame["id"].clone();
    ws.send_text(frame.to_string().as_bytes()).await?;
    loop {
        match next_json(ws).await? {
            Some(answer) if answer["id"] == id && answer["type"] != "event" => return Ok(answer),
            Some(_) => continue,
            None => bail!("closed while waiting for an answer"),
        }
    }
}

/// Connects, identifies as `user` and joins `channels`.
async fn connect(gateway: SocketAddr, user: &str, channels: &[String]) -> anyhow::Result<WsClient> {
    let mut ws = WsClient::connect(gateway, None, "/ws", 64 * 1024, rand_seed()).await?;
    let welcome = next_json(&mut ws).await?.context("closed before welcome")?;
    if welcome["type"] != "welcome" {
        bail!("expected welcome, got {welcome}");
    }
    let ok = ask(
        &mut ws,
        json!({"type": "ident", "id": 1, "auth": {"token": token(user)?}}),
    )
    .await?;
    if ok["type"] != "ok" {
        bail!("ident refused: {ok}");
    }
    for (i, channel) in channels.iter().enumerate() {
        let ok = ask(
            &mut ws,
            json!({"type": "join", "id": 2 + i, "channel": channel}),
        )
        .await?;
        if ok["type"] != "ok" {
            bail!("join refused: {ok}");
        }
    }
    Ok(ws)
}

fn rand_seed() -> u64 {
    now_ns() ^ u64::from(std::process::id())
}

fn channel(c: u32) -> String {
    format!("load{c}")
}

/// Reads events until stopped or closed, counting them and recording their latency in the
/// histogram of the half they were sent in.
async fn receive(
    mut ws: WsClient,
    inbox: Arc<Inbox>,
    latency: Arc<[Mutex<Histogram<u64>>; 2]>,
    stop: CancellationToken,
) {
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => return,
            f = next_json(&mut ws) => f,
        };
        match frame {
            Ok(Some(event)) if event["type"] == "event" => {
                let payload = &event["payload"];
                let (Some(n), Some(t), Some(half)) = (
                    payload["n"].as_u64(),
                    payload["t"].as_u64(),
                    payload["h"].as_u64(),
                ) else {
                    continue;
                };
                if let Ok(mut counts) = inbox.counts.lock() {
                    if let Some(count) = counts.get_mut(n as usize) {
                        *count = count.saturating_add(1);
                    }
                }
                if let Ok(mut h) = latency[half.min(1) as usize].lock() {
                    record_ns(&mut h, now_ns().saturating_sub(t));
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                if let Ok(mut closed) = inbox.closed_at.lock() {
                    *closed = Some(Instant::now());
                }
                return;
            }
        }
    }
}

// ---- load ----

/// One REST answer.
struct Post {
    n: u64,
    /// 0: sent before the fault, 1: after.
    half: u8,
    sent: Instant,
    waited: Duration,
    status: u16,
}

/// Posts `total` events at `rate` over [`PUBLISHERS`] sequential backends; event `n` goes to
/// channel `n % channels`, and belongs to the second half when sent after `broken` was set.
async fn publish(
    rest: SocketAddr,
    total: u64,
    rate: f64,
    channels: u32,
    broken: Arc<AtomicBool>,
    pad: usize,
) -> Vec<Post> {
    let start = tokio::time::Instant::now();
    let padding = "x".repeat(pad);
    let mut workers = Vec::new();
    for w in 0..PUBLISHERS {
        let padding = padding.clone();
        let broken = broken.clone();
        workers.push(tokio::spawn(async move {
            let mut posts = Vec::new();
            let mut conn = None;
            let mut n = w;
            while n < total {
                let due = start + Duration::from_secs_f64(n as f64 / rate);
                tokio::time::sleep_until(due).await;
                let half = u8::from(broken.load(Ordering::Relaxed));
                let body = json!({
                    "event": "LOAD",
                    "targets": {"channels": [channel((n % u64::from(channels)) as u32)]},
                    "payload": {"n": n, "t": now_ns(), "h": half, "pad": padding},
                });
                let sent = Instant::now();
                if conn.is_none() {
                    conn = HttpConn::connect(rest, API_KEY).await.ok();
                }
                let status = match conn.as_mut() {
                    Some(c) => match c.post("/v1/notify", Bytes::from(body.to_string())).await {
                        Ok((status, _)) => status.as_u16(),
                        Err(_) => {
                            conn = None;
                            0
                        }
                    },
                    None => 0,
                };
                posts.push(Post {
                    n,
                    half,
                    sent,
                    waited: sent.elapsed(),
                    status,
                });
                n += PUBLISHERS;
            }
            posts
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        if let Ok(posts) = w.await {
            all.extend(posts);
        }
    }
    all.sort_by_key(|p| p.n);
    all
}

// ---- a run ----

struct Clients {
    inboxes: Vec<(u32, usize, Arc<Inbox>)>,
    latency: Arc<[Mutex<Histogram<u64>>; 2]>,
    stop: CancellationToken,
}

async fn start_clients(args: &FaultsArgs, d: &Deployment, total: u64) -> anyhow::Result<Clients> {
    let latency = Arc::new([Mutex::new(new_histogram()), Mutex::new(new_histogram())]);
    let stop = CancellationToken::new();
    let mut inboxes = Vec::new();
    for i in 0..args.clients {
        let c = i % args.channels;
        let g = (i as usize) % d.gateways.len();
        let ws = connect(d.gateways[g].1, &format!("u{i}"), &[channel(c)]).await?;
        let inbox = Arc::new(Inbox {
            counts: Mutex::new(vec![0; total as usize]),
            closed_at: Mutex::new(None),
        });
        tokio::spawn(receive(ws, inbox.clone(), latency.clone(), stop.clone()));
        inboxes.push((c, g, inbox));
    }
    Ok(Clients {
        inboxes,
        latency,
        stop,
    })
}

/// Per half: accepted events, deliveries expected to clients still open, lost, duplicated,
/// REST answers, latency.
fn halves(args: &FaultsArgs, posts: &[Post], clients: &Clients) -> [Value; 2] {
    let mut out = [json!({}), json!({})];
    for (h, slot) in out.iter_mut().enumerate() {
        let mine: Vec<&Post> = posts.iter().filter(|p| usize::from(p.half) == h).collect();
        let accepted: Vec<&&Post> = mine.iter().filter(|p| p.status == 202).collect();
        let (mut expected, mut delivered, mut lost, mut dup) = (0u64, 0u64, 0u64, 0u64);
        for (c, _, inbox) in &clients.inboxes {
            if inbox.closed_at.lock().map(|c| c.is_some()).unwrap_or(true) {
                continue;
            }
            let Ok(counts) = inbox.counts.lock() else {
                continue;
            };
            for p in &accepted {
                if (p.n % u64::from(args.channels)) as u32 != *c {
                    continue;
                }
                expected += 1;
                match counts.get(p.n as usize).copied().unwrap_or(0) {
                    0 => lost += 1,
                    k => {
                        delivered += 1;
                        dup += u64::from(k - 1);
                    }
                }
            }
        }
        let longest = mine.iter().map(|p| p.waited).max().unwrap_or_default();
        let refused = mine.len() - accepted.len();
        let latency = clients.latency[h]
            .lock()
            .map(|h| percentiles_ms(&h))
            .unwrap_or(Value::Null);
        *slot = json!({
            "events": mine.len(), "accepted": accepted.len(), "refused": refused,
            "expected": expected, "delivered": delivered, "lost": lost, "duplicated": dup,
            "longest_rest_ms": longest.as_millis() as u64,
            "p99_ms": latency["p99"], "p50_ms": latency["p50"],
        });
    }
    out
}

fn print_table(title: &str, rows: &[(&str, String, String)]) {
    println!("## {title}");
    println!("| figure | healthy half | broken half |");
    println!("|---|---|---|");
    for (name, healthy, broken) in rows {
        println!("| {name} | {healthy} | {broken} |");
    }
    println!();
}

fn delivery_rows(h: &[Value; 2]) -> Vec<(&'static str, String, String)> {
    let f = |k: &str, v: &Value| v[k].to_string();
    vec![
        (
            "events posted / answered 202",
            format!("{} / {}", h[0]["events"], h[0]["accepted"]),
            format!("{} / {}", h[1]["events"], h[1]["accepted"]),
        ),
        (
            "deliveries to open clients / expected",
            format!("{} / {}", h[0]["delivered"], h[0]["expected"]),
            format!("{} / {}", h[1]["delivered"], h[1]["expected"]),
        ),
        (
            "lost / duplicated",
            format!("{} / {}", h[0]["lost"], h[0]["duplicated"]),
            format!("{} / {}", h[1]["lost"], h[1]["duplicated"]),
        ),
        (
            "longest REST answer, ms",
            f("longest_rest_ms", &h[0]),
            f("longest_rest_ms", &h[1]),
        ),
        (
            "delivery latency p50 / p99, ms",
            format!("{} / {}", h[0]["p50_ms"], h[0]["p99_ms"]),
            format!("{} / {}", h[1]["p50_ms"], h[1]["p99_ms"]),
        ),
    ]
}

/// Connections in presence over all load channels.
async fn presence_count(rest: SocketAddr, channels: u32) -> Option<u64> {
    let client = HttpConn::connect(rest, API_KEY).await.ok()?;
    let mut client = client;
    let mut total = 0;
    for c in 0..channels {
        let (status, body) = client
            .get(&format!("/v1/channels/{}", channel(c)))
            .await
            .ok()?;
        if status.as_u16() != 200 {
            return None;
        }
        total += serde_json::from_slice::<Value>(&body).ok()?["connections"].as_u64()?;
    }
    Some(total)
}

async fn run_scenario(
    args: &FaultsArgs,
    scenario: Scenario,
    hash: &str,
    work: &Path,
) -> anyhow::Result<bool> {
    let nodes = if scenario == Scenario::NatsNode { 3 } else { 1 };
    eprintln!(
        "{scenario:?}: starting {nodes} nats-server, {} dispatchers, {} gateways, REST",
        args.dispatchers, args.gateways
    );
    let mut d = tokio::task::block_in_place(|| deploy(args, hash, work, nodes))?;
    let half_at = (args.rate * args.phase_secs as f64) as u64;
    let total = half_at * 2;
    // The first request verifies the API key (argon2): pay for it before measuring.
    if first_202(d.rest).await.is_none() {
        bail!("the REST adapter never answered 202");
    }
    let clients = start_clients(args, &d, total).await?;
    let broken = Arc::new(AtomicBool::new(false));
    eprintln!(
        "{scenario:?}: {} clients connected; {} events at {}/s",
        args.clients, total, args.rate
    );
    let load = tokio::spawn(publish(
        d.rest,
        total,
        args.rate,
        args.channels,
        broken.clone(),
        args.payload_bytes,
    ));
    tokio::time::sleep(Duration::from_secs(args.phase_secs)).await;
    let broken_at = Instant::now();
    broken.store(true, Ordering::Relaxed);
    let mut extra: Vec<(&str, String, String)> = Vec::new();
    let mut clean = true;
    match scenario {
        Scenario::Dispatcher => {
            // Frozen first, so that requests are certainly in flight to it when it dies.
            let pid = d.dispatchers[0].child.id() as libc::pid_t;
            // SAFETY: signalling a child this run started and has not reaped.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            tokio::time::sleep(Duration::from_millis(300)).await;
            d.dispatchers[0].kill();
        }
        Scenario::Gateway => {
            let before = presence_count(d.rest, args.channels).await;
            d.gateways[0].0.kill();
            let survivors = (0..args.clients)
                .filter(|i| !(*i as usize).is_multiple_of(args.gateways))
                .count() as u64;
            let mut gone = None;
            while broken_at.elapsed() < Duration::from_secs(30) {
                if presence_count(d.rest, args.channels).await == Some(survivors) {
                    gone = Some(broken_at.elapsed());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let before = before.map_or("unknown".into(), |b| b.to_string());
            extra.push((
                "connections in presence",
                before,
                format!("{survivors} expected after the kill"),
            ));
            extra.push((
                "seconds until the dead gateway's connections left presence (gateway_timeout 3 s)",
                "-".into(),
                gone.map_or("over 30".into(), |g| format!("{:.1}", g.as_secs_f64())),
            ));
            clean &= gone.is_some_and(|g| g <= Duration::from_secs(5));
        }
        Scenario::NatsNode => {
            let leader = kv_leader(&d).await.unwrap_or(0);
            // Probe past the end of the load if need be: an election can outlast a short half.
            let probe_for = Duration::from_secs(args.phase_secs.max(15));
            let gateway = d.gateways[1 % d.gateways.len()].1;
            let prober = connect(gateway, "prober", &[]).await?;
            let probes = tokio::spawn(probe_commands(gateway, prober, probe_for));
            d.nats[leader].kill();
            let (ident_gap, join_gap, failures) = probes.await.unwrap_or_default();
            extra.push((
                "node killed",
                "-".into(),
                format!("n{leader} (KV stream leader)"),
            ));
            extra.push((
                "longest ident gap / join gap, s",
                "-".into(),
                format!("{ident_gap:.1} / {join_gap:.1}"),
            ));
            extra.push((
                "ident+join requests refused",
                "-".into(),
                failures.to_string(),
            ));
            let intact = presence_count(d.rest, args.channels).await;
            let intact_text = intact.map_or("unknown".into(), |i| i.to_string());
            extra.push((
                "clients still in presence at the end (no false reaping)",
                "-".into(),
                format!("{intact_text} of {}", args.clients),
            ));
            clean &= intact == Some(u64::from(args.clients));
        }
        Scenario::SlowReader => {
            let all: Vec<String> = (0..args.channels).map(channel).collect();
            let slow = connect(d.gateways[0].1, "slow", &all).await?;
            // Never read again; dropped at the end of the run.
            let stop = clients.stop.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                drop(slow);
            });
            extra.push((
                "client that stopped reading, in every channel",
                "no".into(),
                "yes".into(),
            ));
        }
        Scenario::NatsRestart => {
            d.nats[0].kill();
            // Long enough for async-nats's own backoff to reach its 4 s cap.
            tokio::time::sleep(Duration::from_secs(5)).await;
            let node = &mut d.nats[0];
            tokio::task::block_in_place(|| node.start(&args.nats_server))?;
            let back = Instant::now();
            let first = first_202(d.rest).await;
            extra.push((
                "seconds from nats-server back to the first 202",
                "-".into(),
                first.map_or("over 30".into(), |f| {
                    format!("{:.2}", f.duration_since(back).as_secs_f64())
                }),
            ));
        }
    }
    let posts = load.await.map_err(|e| anyhow!("load: {e}"))?;
    // Let the last deliveries land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    clients.stop.cancel();
    let h = halves(args, &posts, &clients);
    let mut rows = delivery_rows(&h);
    rows.extend(extra);
    if scenario != Scenario::NatsRestart {
        clean &= h[0]["lost"] == 0 && h[1]["lost"] == 0 && h[1]["duplicated"] == 0;
    }
    let title = match scenario {
        Scenario::Dispatcher => "a dispatcher frozen (SIGSTOP), SIGKILLed 0.3 s later, under load",
        Scenario::Gateway => "a gateway SIGKILLed (its clients are not counted after)",
        Scenario::NatsNode => "one of three NATS nodes SIGKILLed (KV at R3)",
        Scenario::SlowReader => "one client stops reading",
        Scenario::NatsRestart => "nats-server SIGKILLed, restarted 5 s later",
    };
    print_table(
        &format!(
            "{title} ({} clients, {} events/s, {} s per half)",
            args.clients, args.rate, args.phase_secs
        ),
        &rows,
    );
    if let Some(p) = posts
        .iter()
        .find(|p| p.status != 202 && p.sent >= broken_at)
    {
        eprintln!(
            "{scenario:?}: first refused event n={} status {}",
            p.n, p.status
        );
    }
    Ok(clean)
}

/// Which node leads the KV stream (index into the deployment's nodes).
async fn kv_leader(d: &Deployment) -> Option<usize> {
    let urls: Vec<String> = d
        .nats
        .iter()
        .map(|n| format!("nats://127.0.0.1:{}", n.port))
        .collect();
    let client = async_nats::connect(urls.join(",")).await.ok()?;
    let mut stream = async_nats::jetstream::new(client)
        .get_stream("KV_herald")
        .await
        .ok()?;
    let leader = stream.info().await.ok()?.cluster.as_ref()?.leader.clone()?;
    leader.trim_start_matches('n').parse().ok()
}

/// For `duration`: a join or leave every 100 ms on `prober` (an identified connection; a new one
/// when it breaks) and a new connection's ident every 250 ms. Returns the longest gaps between
/// successes (s) and the refusals.
async fn probe_commands(
    gateway: SocketAddr,
    prober: WsClient,
    duration: Duration,
) -> (f64, f64, u64) {
    let started = Instant::now();
    let joins = tokio::spawn(async move {
        let mut ws = prober;
        let (mut last, mut gap, mut failed, mut id) = (Instant::now(), 0f64, 0u64, 100u64);
        while started.elapsed() < duration {
            id += 1;
            let op = if id % 2 == 0 { "join" } else { "leave" };
            let answer = tokio::time::timeout(
                Duration::from_secs(6),
                ask(&mut ws, json!({"type": op, "id": id, "channel": "probe"})),
            )
            .await;
            match answer {
                Ok(Ok(a)) if a["type"] == "ok" => {
                    gap = gap.max(last.elapsed().as_secs_f64());
                    last = Instant::now();
                }
                Ok(Ok(_)) | Err(_) => failed += 1,
                Ok(Err(_)) => {
                    // The connection broke: count it and come back on a new one.
                    failed += 1;
                    if let Ok(Ok(again)) = tokio::time::timeout(
                        Duration::from_secs(6),
                        connect(gateway, "prober", &[]),
                    )
                    .await
                    {
                        ws = again;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (gap.max(last.elapsed().as_secs_f64()), failed)
    });
    let (mut last, mut gap, mut failed) = (Instant::now(), 0f64, 0u64);
    while started.elapsed() < duration {
        match tokio::time::timeout(Duration::from_secs(6), connect(gateway, "identprober", &[]))
            .await
        {
            Ok(Ok(_)) => {
                gap = gap.max(last.elapsed().as_secs_f64());
                last = Instant::now();
            }
            _ => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    gap = gap.max(last.elapsed().as_secs_f64());
    let (join_gap, join_failed) = joins.await.unwrap_or((0.0, 0));
    (gap, join_gap, failed + join_failed)
}

/// When the first 202 came after now, posting every 50 ms for up to 30 s.
async fn first_202(rest: SocketAddr) -> Option<Instant> {
    let started = Instant::now();
    let body = json!({"event": "PROBE", "targets": {"users": ["nobody"]}}).to_string();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(mut c) = HttpConn::connect(rest, API_KEY).await {
            if let Ok((status, _)) = c.post("/v1/notify", Bytes::from(body.clone())).await {
                if status.as_u16() == 202 {
                    return Some(Instant::now());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}
