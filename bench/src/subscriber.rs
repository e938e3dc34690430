//! A subscriber process: opens its share of the WebSocket connections (Herald `/ws` or raw
//! nats-server WebSocket), identifies and joins, then records every event that arrives.
//!
//! It talks to the driving process in JSON lines: a [`WorkerSpec`] on stdin, [`FromWorker::Ready`]
//! on stdout once set up, [`ToWorker::Finish`] on stdin when publishing is over, and
//! [`FromWorker::Result`] on stdout before it exits. It exits at once when its stdin closes
//! (the driver is gone) and at its deadline whatever happens.

use crate::plan::{find_mark, FromWorker, ReadyReport, Target, ToWorker, WorkerResult, WorkerSpec};
use crate::stats::{to_pairs, Seen, SharedHistogram, Tracker};
use crate::sys;
use crate::wsclient::{Frame, WsClient};
use anyhow::{anyhow, bail, Context};
use memchr::memmem;
use serde_json::{json, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

/// Error texts kept for the report.
const KEPT_ERRORS: usize = 5;
/// Longest NATS protocol line or message accepted.
const MAX_NATS_BUFFER: usize = 8 << 20;

/// Runs a subscriber process: reads its spec from stdin and reports on stdout.
pub fn run() -> anyhow::Result<()> {
    sys::raise_nofile();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the worker spec")?;
    let spec: WorkerSpec = serde_json::from_str(&line).context("parsing the worker spec")?;
    let deadline = Duration::from_millis(spec.deadline_ms);
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        eprintln!("herald-bench worker: deadline of {deadline:?} reached; exiting");
        std::process::exit(3);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(spec.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(serve(spec))
}

struct Shared {
    spec: WorkerSpec,
    addrs: Vec<SocketAddr>,
    latency: SharedHistogram,
    /// Distinct expected events received, over all connections.
    distinct: AtomicU64,
    /// Connections set up and not yet closed.
    alive: AtomicU64,
    /// Ends the receive loops.
    stop: CancellationToken,
    /// Ends setups still pending when the ready time is up.
    abandon: CancellationToken,
}

/// What one connection saw.
struct Outcome {
    index: u64,
    ready: bool,
    tracker: Tracker,
    unexpected: u64,
    malformed: u64,
    error_frames: u64,
    disconnected: Option<String>,
    first_recv_ns: u64,
    last_recv_ns: u64,
    /// Distinct events and latencies (ns) of the current read, not yet added to the totals.
    batch_distinct: u64,
    batch_latency: Vec<u64>,
}

impl Outcome {
    fn new(index: u64, spec: &WorkerSpec) -> Self {
        Outcome {
            index,
            ready: false,
            tracker: Tracker::new(spec.events, spec.workers),
            unexpected: 0,
            malformed: 0,
            error_frames: 0,
            disconnected: None,
            first_recv_ns: 0,
            last_recv_ns: 0,
            batch_distinct: 0,
            batch_latency: Vec::new(),
        }
    }

    /// Adds what the last read brought to the process's totals.
    fn flush(&mut self, shared: &Shared) {
        if self.batch_distinct > 0 {
            shared
                .distinct
                .fetch_add(self.batch_distinct, Ordering::Relaxed);
            self.batch_distinct = 0;
        }
        shared.latency.record_many(self.index, &self.batch_latency);
        self.batch_latency.clear();
    }

    /// Notes one received frame or NATS payload, which arrived at `now` (ns). Every frame of
    /// one read arrived at the same moment, as far as this client can tell.
    fn on_frame(&mut self, shared: &Shared, bytes: &[u8], now: u64) {
        let Some(mark) = find_mark(bytes) else {
            if memmem::find(bytes, b"\"type\":\"error\"").is_some() {
                self.error_frames += 1;
            } else if memmem::find(bytes, b"\"type\":\"event\"").is_some()
                || shared.spec.target == Target::NatsWs
            {
                self.malformed += 1;
            }
            return;
        };
        if self.first_recv_ns == 0 {
            self.first_recv_ns = now;
        }
        self.last_recv_ns = now;
        if mark.g < shared.spec.events && !shared.spec.layout.receives(self.index, mark.g) {
            self.unexpected += 1;
            return;
        }
        match self.tracker.see(&mark) {
            Seen::New | Seen::OutOfOrder => {
                self.batch_distinct += 1;
                self.batch_latency.push(now.saturating_sub(mark.t));
            }
            Seen::Duplicate => {}
            Seen::Foreign => self.malformed += 1,
        }
    }
}

async fn serve(spec: WorkerSpec) -> anyhow::Result<()> {
    if spec.urls.is_empty() {
        bail!("no WebSocket URL to connect to");
    }
    let addrs = spec
        .urls
        .iter()
        .map(|u| sys::loopback_addr(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let shared = Arc::new(Shared {
        latency: SharedHistogram::new(32),
        addrs,
        distinct: AtomicU64::new(0),
        alive: AtomicU64::new(0),
        stop: CancellationToken::new(),
        abandon: CancellationToken::new(),
        spec,
    });
    let spec = &shared.spec;
    let permits = Arc::new(Semaphore::new(spec.connect_concurrency.max(1)));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let start_ns = sys::now_ns();
    let mut handles = Vec::with_capacity(spec.count as usize);
    for index in spec.first..spec.first + spec.count {
        let (shared, permits, ready_tx) = (shared.clone(), permits.clone(), ready_tx.clone());
        handles.push(tokio::spawn(connection(shared, index, permits, ready_tx)));
    }
    drop(ready_tx);

    // Setup: wait until every connection is ready or failed, or the time is up.
    let mut report = ReadyReport {
        start_ns,
        ..ReadyReport::default()
    };
    let mut ready_indexes = Vec::with_capacity(spec.count as usize);
    let ready_deadline = tokio::time::Instant::now() + Duration::from_millis(spec.ready_timeout_ms);
    while report.ok + report.failed < spec.count {
        match tokio::time::timeout_at(ready_deadline, ready_rx.recv()).await {
            Ok(Some((index, Ok(())))) => {
                report.ok += 1;
                ready_indexes.push(index);
            }
            Ok(Some((_, Err(e)))) => {
                report.failed += 1;
                if report.errors.len() < KEPT_ERRORS {
                    report.errors.push(e);
                }
            }
            Ok(None) => break,
            Err(_) => {
                let pending = spec.count - report.ok - report.failed;
                report.failed += pending;
                report.errors.push(format!(
                    "{pending} connections not ready within {} ms",
                    spec.ready_timeout_ms
                ));
                shared.abandon.cancel();
                break;
            }
        }
    }
    report.end_ns = sys::now_ns();
    emit(&FromWorker::Ready(report))?;

    // Wait for the end of publishing.
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let Some(line) = stdin.next_line().await? else {
        // The driver is gone.
        std::process::exit(2);
    };
    let ToWorker::Finish {
        sent,
        rejected,
        drain_ms,
        grace_ms,
    } = serde_json::from_str(&line).context("parsing the finish message")?;
    // Connections that did set up are the ones expected to receive; failed setups are
    // reported as such, not as lost deliveries.
    let expected_total: u64 = ready_indexes
        .iter()
        .map(|&i| spec.layout.expected(i, sent, &rejected))
        .sum();
    let drain_deadline = tokio::time::Instant::now() + Duration::from_millis(drain_ms);
    while shared.distinct.load(Ordering::Relaxed) < expected_total
        && shared.alive.load(Ordering::Relaxed) > 0
        && tokio::time::Instant::now() < drain_deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(grace_ms)).await;
    shared.stop.cancel();
    shared.abandon.cancel();

    let mut result = WorkerResult::default();
    for handle in handles {
        let Ok(Ok(outcome)) = tokio::time::timeout(Duration::from_secs(10), handle).await else {
            continue;
        };
        if !outcome.ready {
            continue;
        }
        let layout = &shared.spec.layout;
        let expected = layout.expected(outcome.index, sent, &rejected);
        // Events received although their POST was refused (a timeout that still went
        // through) are not expected: count them apart.
        let refused_but_got = rejected
            .iter()
            .filter(|&&g| outcome.tracker.has(g) && layout.receives(outcome.index, g))
            .count() as u64;
        let got = outcome.tracker.distinct - refused_but_got;
        result.unexpected += refused_but_got;
        result.expected += expected;
        result.delivered += got;
        result.lost += expected.saturating_sub(got);
        result.duplicated += outcome.tracker.duplicated;
        result.out_of_order += outcome.tracker.out_of_order;
        result.unexpected += outcome.unexpected;
        result.malformed += outcome.malformed;
        result.error_frames += outcome.error_frames;
        if let Some(reason) = outcome.disconnected {
            result.disconnects += 1;
            if result.disconnect_reasons.len() < KEPT_ERRORS {
                result.disconnect_reasons.push(reason);
            }
        }
        if outcome.first_recv_ns != 0
            && (result.first_recv_ns == 0 || outcome.first_recv_ns < result.first_recv_ns)
        {
            result.first_recv_ns = outcome.first_recv_ns;
        }
        result.last_recv_ns = result.last_recv_ns.max(outcome.last_recv_ns);
    }
    result.latency_us = to_pairs(&shared.latency.merged());
    emit(&FromWorker::Result(result))?;
    Ok(())
}

fn emit(message: &FromWorker) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, message)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

async fn connection(
    shared: Arc<Shared>,
    index: u64,
    permits: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<(u64, Result<(), String>)>,
) -> Outcome {
    let mut outcome = Outcome::new(index, &shared.spec);
    let setup = async {
        let _permit = permits.acquire().await.map_err(|e| anyhow!("{e}"))?;
        let limit = Duration::from_millis(shared.spec.connect_timeout_ms);
        match tokio::time::timeout(limit, setup(&shared, index)).await {
            Ok(result) => result,
            Err(_) => Err(anyhow!("connect+ident+join took over {limit:?}")),
        }
    };
    let setup = tokio::select! {
        s = setup => s,
        _ = shared.abandon.cancelled() => Err(anyhow!("abandoned: not ready in time")),
    };
    let conn = match setup {
        Ok(conn) => conn,
        Err(e) => {
            let _ = ready.send((index, Err(format!("connection {index}: {e:#}"))));
            return outcome;
        }
    };
    outcome.ready = true;
    shared.alive.fetch_add(1, Ordering::Relaxed);
    let _ = ready.send((index, Ok(())));
    drop(ready);
    match conn {
        Conn::Herald(ws) => receive_herald(&shared, ws, &mut outcome).await,
        Conn::Nats(ws, reader) => receive_nats(&shared, ws, reader, &mut outcome).await,
    }
    shared.alive.fetch_sub(1, Ordering::Relaxed);
    outcome
}

enum Conn {
    Herald(WsClient),
    Nats(WsClient, NatsReader),
}

async fn setup(shared: &Shared, index: u64) -> anyhow::Result<Conn> {
    let spec = &shared.spec;
    let which = (index % spec.urls.len() as u64) as usize;
    let source = sys::source_addr(index, spec.source_addrs);
    let path = ws_path(&spec.urls[which]);
    let ws = WsClient::connect(
        shared.addrs[which],
        source,
        path,
        spec.read_buffer,
        index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ sys::now_ns(),
    )
    .await?;
    match spec.target {
        Target::Herald => herald_setup(shared, index, ws).await.map(Conn::Herald),
        Target::Pusher => pusher_setup(shared, index, ws).await.map(Conn::Herald),
        Target::NatsWs => nats_setup(shared, index, ws)
            .await
            .map(|(ws, reader)| Conn::Nats(ws, reader)),
    }
}

/// The path of a `ws://host:port/path` URL (`/` when it has none).
fn ws_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/').map_or("/", |at| &rest[at..])
}

// ---- Herald ----

async fn herald_setup(shared: &Shared, index: u64, mut ws: WsClient) -> anyhow::Result<WsClient> {
    let spec = &shared.spec;
    let welcome = next_json(&mut ws).await?;
    if welcome["type"] != "welcome" {
        bail!("expected a welcome frame, got {welcome}");
    }
    let claims = herald_core::token::Claims {
        sub: spec.layout.user(index),
        exp: herald_core::token::now_secs() + 24 * 3600,
        iat: None,
        channels: Vec::new(),
        publish: Vec::new(),
        jti: None,
        once: false,
    };
    let token = herald_core::token::mint(spec.jwt_secret.as_bytes(), &claims)
        .map_err(|e| anyhow!("minting a token: {e}"))?;
    let ident = json!({"type": "ident", "id": 1, "auth": {"token": token}});
    ws.send_text(ident.to_string().as_bytes()).await?;
    expect_ok(&mut ws, 1).await?;
    let channels: Vec<u32> = spec.layout.channels_of(index).collect();
    for (n, c) in channels.iter().enumerate() {
        let join = json!({"type": "join", "id": 2 + n, "channel": spec.layout.channel(*c)});
        ws.send_text(join.to_string().as_bytes()).await?;
    }
    for n in 0..channels.len() {
        expect_ok(&mut ws, 2 + n as u64).await?;
    }
    Ok(ws)
}

// ---- Pusher ----

/// Waits for `connection_established`, subscribes to the connection's channels (public) and
/// waits until each subscription succeeded; events then come as Herald's do, marks inside.
async fn pusher_setup(shared: &Shared, index: u64, mut ws: WsClient) -> anyhow::Result<WsClient> {
    let spec = &shared.spec;
    let established = next_json(&mut ws).await?;
    if established["event"] != "pusher:connection_established" {
        bail!("expected pusher:connection_established, got {established}");
    }
    let channels: Vec<String> = spec
        .layout
        .channels_of(index)
        .map(|c| spec.layout.pusher_channel(c))
        .collect();
    for channel in &channels {
        let subscribe = json!({"event": "pusher:subscribe", "data": {"channel": channel}});
        ws.send_text(subscribe.to_string().as_bytes()).await?;
    }
    let mut pending = channels.len();
    while pending > 0 {
        let frame = next_json(&mut ws).await?;
        match frame["event"].as_str() {
            Some("pusher_internal:subscription_succeeded") => pending -= 1,
            Some("pusher:subscription_error" | "pusher:error") => {
                bail!("subscription refused: {frame}")
            }
            _ => continue,
        }
    }
    Ok(ws)
}

/// The next data frame, as JSON (setup only; pings are answered on the way).
pub(crate) async fn next_json(ws: &mut WsClient) -> anyhow::Result<Value> {
    loop {
        let mut ping = None;
        match ws.next_frame()? {
            Some(Frame::Data(bytes)) => {
                return serde_json::from_slice(bytes).with_context(|| {
                    format!("frame is not JSON: {}", String::from_utf8_lossy(bytes))
                });
            }
            Some(Frame::Ping(p)) => ping = Some(p.to_vec()),
            Some(Frame::Close(code, reason)) => bail!("closed by the server: {code} {reason}"),
            None => {
                if !ws.fill().await? {
                    bail!("connection ended during setup");
                }
            }
        }
        if let Some(p) = ping {
            ws.pong(&p).await?;
        }
    }
}

async fn expect_ok(ws: &mut WsClient, id: u64) -> anyhow::Result<()> {
    loop {
        let frame = next_json(ws).await?;
        match frame["type"].as_str() {
            Some("ok") if frame["id"] == id => return Ok(()),
            Some("error") => bail!("request {id} refused: {frame}"),
            _ => continue,
        }
    }
}

/// Reads until stopped or disconnected, handing each data frame's bytes to `on_data` with the
/// time of the read that brought it; answers pings. Returns why the connection ended, if it
/// did before being stopped.
async fn receive(
    shared: &Shared,
    ws: &mut WsClient,
    outcome: &mut Outcome,
    mut on_data: impl FnMut(&mut Outcome, &[u8], u64) -> anyhow::Result<Option<Vec<u8>>>,
) -> Option<String> {
    let stop = shared.stop.cancelled();
    tokio::pin!(stop);
    loop {
        let filled = tokio::select! {
            biased;
            _ = &mut stop => return None,
            f = ws.fill() => f,
        };
        match filled {
            Ok(true) => {}
            Ok(false) => return Some("connection ended".into()),
            Err(e) => return Some(format!("read failed: {e:#}")),
        }
        let now = sys::now_ns();
        let mut replies: Vec<Vec<u8>> = Vec::new();
        let mut ping = None;
        loop {
            match ws.next_frame() {
                Ok(Some(Frame::Data(bytes))) => match on_data(outcome, bytes, now) {
                    Ok(Some(reply)) => replies.push(reply),
                    Ok(None) => {}
                    Err(e) => {
                        outcome.flush(shared);
                        return Some(format!("{e:#}"));
                    }
                },
                Ok(Some(Frame::Ping(p))) => ping = Some(p.to_vec()),
                Ok(Some(Frame::Close(code, reason))) => {
                    outcome.flush(shared);
                    return Some(format!("closed by the server: {code} {reason}"));
                }
                Ok(None) => break,
                Err(e) => {
                    outcome.flush(shared);
                    return Some(format!("protocol error: {e:#}"));
                }
            }
        }
        outcome.flush(shared);
        if let Some(p) = ping {
            if let Err(e) = ws.pong(&p).await {
                return Some(format!("{e:#}"));
            }
        }
        for reply in replies {
            if let Err(e) = ws.send_binary(&reply).await {
                return Some(format!("{e:#}"));
            }
        }
    }
}

async fn receive_herald(shared: &Shared, mut ws: WsClient, outcome: &mut Outcome) {
    let ended = receive(shared, &mut ws, outcome, |outcome, bytes, now| {
        outcome.on_frame(shared, bytes, now);
        Ok(None)
    })
    .await;
    match ended {
        Some(reason) => outcome.disconnected = Some(reason),
        None => {
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close()).await;
        }
    }
}

// ---- raw NATS over WebSocket ----

/// Items of the NATS text protocol.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    /// A message; the range of its payload in the reader's buffer.
    Msg(Range<usize>),
    Ping,
    Pong,
    Info,
    Ok,
    Err(String),
}

/// Reassembles the NATS byte stream carried by WebSocket messages (a message may span frames,
/// a frame may carry many messages) and cuts it into [`Item`]s.
#[derive(Default)]
struct NatsReader {
    buf: Vec<u8>,
    pos: usize,
}

impl NatsReader {
    fn push(&mut self, data: &[u8]) -> anyhow::Result<()> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.len() + data.len() > MAX_NATS_BUFFER {
            bail!("NATS protocol line or message over {MAX_NATS_BUFFER} bytes");
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// The next complete item, or `None` when more bytes are needed.
    fn next_item(&mut self) -> anyhow::Result<Option<Item>> {
        let rest = &self.buf[self.pos..];
        let Some(eol) = memchr::memchr(b'\n', rest) else {
            return Ok(None);
        };
        let line = rest[..eol].strip_suffix(b"\r").unwrap_or(&rest[..eol]);
        if line.starts_with(b"MSG ") {
            let size: usize = std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.split_ascii_whitespace().last())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| anyhow!("bad MSG line {:?}", String::from_utf8_lossy(line)))?;
            let start = self.pos + eol + 1;
            let end = start + size;
            if self.buf.len() < end + 2 {
                return Ok(None);
            }
            self.pos = end + 2;
            return Ok(Some(Item::Msg(start..end)));
        }
        let item = if line.starts_with(b"PING") {
            Item::Ping
        } else if line.starts_with(b"PONG") {
            Item::Pong
        } else if line.starts_with(b"INFO") {
            Item::Info
        } else if line.starts_with(b"+OK") {
            Item::Ok
        } else if line.starts_with(b"-ERR") {
            Item::Err(String::from_utf8_lossy(line).into_owned())
        } else {
            bail!(
                "unknown NATS protocol line {:?}",
                String::from_utf8_lossy(line)
            );
        };
        self.pos += eol + 1;
        Ok(Some(item))
    }

    /// Reads the next WebSocket message into the buffer (setup only).
    async fn fill(&mut self, ws: &mut WsClient) -> anyhow::Result<()> {
        loop {
            let mut ping = None;
            match ws.next_frame()? {
                Some(Frame::Data(bytes)) => return self.push(bytes),
                Some(Frame::Ping(p)) => ping = Some(p.to_vec()),
                Some(Frame::Close(code, reason)) => bail!("closed by the server: {code} {reason}"),
                None => {
                    if !ws.fill().await? {
                        bail!("connection ended");
                    }
                }
            }
            if let Some(p) = ping {
                ws.pong(&p).await?;
            }
        }
    }
}

async fn nats_setup(
    shared: &Shared,
    index: u64,
    mut ws: WsClient,
) -> anyhow::Result<(WsClient, NatsReader)> {
    let layout = &shared.spec.layout;
    let mut reader = NatsReader::default();
    loop {
        match reader.next_item()? {
            Some(Item::Info) => break,
            Some(other) => bail!("expected INFO from nats-server, got {other:?}"),
            None => reader.fill(&mut ws).await?,
        }
    }
    let mut hello = String::from("CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
    if layout.broadcast {
        hello.push_str(&format!("SUB {} 1\r\n", layout.broadcast_subject()));
    } else {
        for (n, c) in layout.channels_of(index).enumerate() {
            hello.push_str(&format!("SUB {} {}\r\n", layout.subject(c), n + 1));
        }
    }
    hello.push_str("PING\r\n");
    ws.send_binary(hello.as_bytes()).await?;
    loop {
        match reader.next_item()? {
            Some(Item::Pong) => return Ok((ws, reader)),
            Some(Item::Ping) => ws.send_binary(b"PONG\r\n").await?,
            Some(Item::Err(e)) => bail!("nats-server refused: {e}"),
            Some(Item::Msg(_)) => bail!("a message arrived before the subscription was confirmed"),
            Some(Item::Info | Item::Ok) => {}
            None => reader.fill(&mut ws).await?,
        }
    }
}

async fn receive_nats(
    shared: &Shared,
    mut ws: WsClient,
    mut reader: NatsReader,
    outcome: &mut Outcome,
) {
    let ended = receive(shared, &mut ws, outcome, |outcome, bytes, now| {
        reader.push(bytes)?;
        let mut pings = 0;
        while let Some(item) = reader.next_item()? {
            match item {
                Item::Msg(range) => outcome.on_frame(shared, &reader.buf[range], now),
                Item::Ping => pings += 1,
                Item::Err(_) => outcome.error_frames += 1,
                Item::Pong | Item::Info | Item::Ok => {}
            }
        }
        Ok((pings > 0).then(|| b"PONG\r\n".repeat(pings)))
    })
    .await;
    match ended {
        Some(reason) => outcome.disconnected = Some(reason),
        None => {
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_urls() {
        assert_eq!(ws_path("ws://127.0.0.1:1/ws"), "/ws");
        assert_eq!(ws_path("ws://127.0.0.1:1"), "/");
        assert_eq!(ws_path("ws://127.0.0.1:1/"), "/");
    }

    #[test]
    fn nats_reader_reassembles_split_messages() {
        let mut reader = NatsReader::default();
        reader
            .push(b"INFO {\"x\":1}\r\nMSG a.b 1 5\r\nhel")
            .unwrap();
        assert_eq!(reader.next_item().unwrap(), Some(Item::Info));
        assert_eq!(reader.next_item().unwrap(), None);
        reader
            .push(b"lo\r\nPING\r\nMSG a 2 reply 2\r\nhi\r\n-ERR 'x'\r\n")
            .unwrap();
        let Some(Item::Msg(range)) = reader.next_item().unwrap() else {
            panic!("expected a message");
        };
        assert_eq!(&reader.buf[range], b"hello");
        assert_eq!(reader.next_item().unwrap(), Some(Item::Ping));
        let Some(Item::Msg(range)) = reader.next_item().unwrap() else {
            panic!("expected a message");
        };
        assert_eq!(&reader.buf[range], b"hi");
        assert!(matches!(reader.next_item().unwrap(), Some(Item::Err(_))));
        assert_eq!(reader.next_item().unwrap(), None);
        reader.push(b"BOGUS\r\n").unwrap();
        assert!(reader.next_item().is_err());
    }
}
