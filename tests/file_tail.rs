//! The file-tail adapter end to end: a real nats-server, dispatcher, gateway and
//! `herald adapter file-tail` process, a writer appending as fast as it can while the file is
//! rotated, and a WebSocket subscriber that must see every line exactly once, in order.

mod support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// Lines the burst tests write.
const BURST_LINES: usize = 50_000;
/// Longest wait for the next line of a burst: the adapter publishes one line per round trip to
/// a dispatcher, so a burst takes tens of seconds in a debug build; it fails when it stalls.
const STALL_DEADLINE: Duration = Duration::from_secs(15);
/// Hard cap on a whole burst, whatever the progress.
const BURST_CAP: Duration = Duration::from_secs(150);

/// A dispatcher and a gateway on a fresh nats-server, and a subscriber joined to `logs`.
struct Deployment {
    nats: Nats,
    _dispatcher: Process,
    _gateway: Process,
    ws: Ws,
}

async fn deployment() -> Deployment {
    let nats = Nats::start();
    // A deep outbox: the subscriber reads as fast as it can, but a burst must not make the
    // gateway drop it as a slow consumer.
    let (dispatcher, gateway, url) =
        dispatcher_and_gateway(&nats.url, &["--outbox-capacity", "200000"]);
    let ws = Ws::user(&url, "watcher", &["logs"]).await;
    Deployment {
        nats,
        _dispatcher: dispatcher,
        _gateway: gateway,
        ws,
    }
}

/// Starts `herald adapter <args>` and waits for `herald <role> running`; returns the process and
/// the address it serves metrics on, if it was given `--listen`.
pub fn start_adapter(role: &str, args: &[&str]) -> (Process, Option<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["adapter", role])
        .args(args)
        .env(
            "HERALD_LOG",
            std::env::var("HERALD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start herald adapter");
    let stdout = child.stdout.take().expect("stdout");
    let process = Process {
        child,
        name: format!("adapter {role}"),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let running = format!("herald {role} running");
    std::thread::spawn(move || {
        let mut address = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(found) = line.split("listening on ").nth(1) {
                address = Some(found.trim().to_string());
            }
            if line.trim() == running {
                let _ = tx.send(address.clone());
            }
        }
    });
    let address = rx
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("herald adapter {role} did not report running"));
    (process, address)
}

/// The number a test line carries: lines alternate between JSON (`{"n":N}`) and text
/// (`line N`), so both payload shapes are checked.
fn line_text(n: usize) -> String {
    if n.is_multiple_of(2) {
        format!("{{\"n\":{n}}}")
    } else {
        format!("line {n:06} of the burst")
    }
}

fn number_in(payload: &Value) -> Option<usize> {
    if let Some(n) = payload["n"].as_u64() {
        return Some(n as usize);
    }
    let text = payload["line"].as_str()?;
    text.strip_prefix("line ")?.split(' ').next()?.parse().ok()
}

/// Reads `event` frames until `count` arrived, none came for `stall`, or `cap` passed; returns
/// their payloads.
async fn collect(ws: &mut Ws, count: usize, stall: Duration, cap: Duration) -> Vec<Value> {
    let started = Instant::now();
    let mut payloads = Vec::with_capacity(count);
    while payloads.len() < count {
        let left = cap.saturating_sub(started.elapsed()).min(stall);
        if left.is_zero() {
            break;
        }
        match ws.next_frame(left).await {
            Ok(Some(frame)) => {
                assert_eq!(frame["type"], "event", "{frame}");
                assert_eq!(frame["event"], "LOG:LINE", "{frame}");
                payloads.push(frame["payload"].clone());
            }
            Ok(None) => break,
            Err(closed) => panic!("subscriber closed: {closed:?}"),
        }
    }
    payloads
}

/// Checks that the payloads carry 0..count, each once, in order.
fn assert_exactly_once_in_order(payloads: &[Value], count: usize) {
    let numbers: Vec<usize> = payloads
        .iter()
        .map(|p| number_in(p).unwrap_or_else(|| panic!("unexpected payload {p}")))
        .collect();
    for (i, payload) in payloads.iter().enumerate().take(4) {
        let expected: Value =
            serde_json::from_str(&line_text(i)).unwrap_or_else(|_| json!({ "line": line_text(i) }));
        assert_eq!(payload, &expected);
    }
    if let Some((i, n)) = numbers.iter().enumerate().find(|(i, n)| *i != **n) {
        panic!(
            "line {i} is number {n}: lost, duplicated or reordered lines (got {} of {count})",
            numbers.len()
        );
    }
    assert_eq!(numbers.len(), count, "lines missing at the end");
}

/// How a writer rotates its file half-way through the burst.
#[derive(Clone, Copy)]
enum Rotation {
    /// `mv app.log app.log.1` and a new `app.log`.
    RenameAndCreate,
    /// `cp app.log app.log.1` and truncate `app.log` (logrotate's `copytruncate`).
    CopyTruncate,
}

/// Appends lines 1.. up to `BURST_LINES` as fast as it can (buffered, so writes split lines),
/// rotating once in the middle.
fn write_burst(path: PathBuf, rotation: Rotation) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let open = |path: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("open log for appending")
        };
        let mut out = std::io::BufWriter::with_capacity(8 * 1024, open(&path));
        for n in 1..BURST_LINES {
            if n == BURST_LINES / 2 {
                out.flush().expect("flush");
                let rotated = path.with_file_name("app.log.1");
                match rotation {
                    Rotation::RenameAndCreate => {
                        std::fs::rename(&path, &rotated).expect("rename");
                        out = std::io::BufWriter::with_capacity(8 * 1024, open(&path));
                    }
                    Rotation::CopyTruncate => {
                        std::fs::copy(&path, &rotated).expect("copy");
                        out.get_ref().set_len(0).expect("truncate");
                    }
                }
            }
            writeln!(out, "{}", line_text(n)).expect("write");
        }
        out.flush().expect("flush");
        started.elapsed()
    })
}

async fn burst_survives(rotation: Rotation, name: &str) {
    let mut deployment = deployment().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.log");
    std::fs::write(&path, b"").expect("create log");
    let path_arg = path.to_string_lossy().into_owned();
    let (_adapter, _) = start_adapter(
        "file-tail",
        &[
            "--nats",
            &deployment.nats.url,
            "--file",
            &path_arg,
            "--channel",
            "logs",
            "--event",
            "LOG:LINE",
            "--from-start",
        ],
    );
    // Line 0 arriving proves the adapter follows the file before the burst starts (else a
    // rotation could happen before it first opened the file, and it would never see the first
    // half).
    std::fs::write(&path, format!("{}\n", line_text(0))).expect("write line 0");
    let mut payloads = collect(&mut deployment.ws, 1, DEADLINE, DEADLINE).await;
    assert_eq!(payloads.len(), 1, "line 0 did not arrive");
    let started = Instant::now();
    let writer = write_burst(path, rotation);
    payloads.extend(
        collect(
            &mut deployment.ws,
            BURST_LINES - 1,
            STALL_DEADLINE,
            BURST_CAP,
        )
        .await,
    );
    let elapsed = started.elapsed();
    let wrote_in = writer.join().expect("writer");
    println!(
        "{name}: wrote {BURST_LINES} lines in {wrote_in:?}; subscriber got {} in {elapsed:?} ({:.0} lines/s)",
        payloads.len(),
        payloads.len() as f64 / elapsed.as_secs_f64()
    );
    assert_exactly_once_in_order(&payloads, BURST_LINES);
    // Nothing more comes: no duplicates after the last line.
    deployment.ws.assert_quiet().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_across_rename_and_create_rotation_arrives_exactly_once_in_order() {
    burst_survives(Rotation::RenameAndCreate, "rename-and-create").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_across_copy_truncate_rotation_arrives_exactly_once_in_order() {
    burst_survives(Rotation::CopyTruncate, "copy-truncate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_created_after_start_is_read_from_its_start_and_long_lines_are_cut() {
    let mut deployment = deployment().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("later.log");
    let path_arg = path.to_string_lossy().into_owned();
    let (_adapter, metrics_at) = start_adapter(
        "file-tail",
        &[
            "--nats",
            &deployment.nats.url,
            "--file",
            &path_arg,
            "--channel",
            "logs",
            "--event",
            "LOG:LINE",
            "--max-payload-bytes",
            "1024",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let long = "x".repeat(100_000);
    let mut text = String::new();
    for n in 0..1000 {
        text.push_str(&line_text(n));
        text.push('\n');
    }
    text.push_str(&long);
    text.push_str("\n{\"after\":\"the long line\"}\n");
    std::fs::write(&path, text).expect("write log");

    let payloads = collect(&mut deployment.ws, 1002, DEADLINE, BURST_CAP).await;
    assert_exactly_once_in_order(&payloads[..1000.min(payloads.len())], 1000);
    assert_eq!(payloads.len(), 1002);
    let cut = &payloads[1000];
    assert_eq!(cut["truncated"], true, "{cut}");
    assert_eq!(cut["original_bytes"], 100_000);
    let head = cut["line"].as_str().expect("line");
    assert!(
        head.len() > 800 && long.starts_with(head),
        "{} bytes kept",
        head.len()
    );
    assert!(cut.to_string().len() <= 1024);
    assert_eq!(payloads[1001], json!({"after": "the long line"}));

    // The last event reaches the socket before its acceptance reaches the adapter's counter.
    let metrics_at = metrics_at.expect("metrics address");
    eventually("the adapter counts 1002 published lines", || async {
        metric(&metrics_at, "herald_file_tail_published_total").await == 1002.0
    })
    .await;
    assert_eq!(
        metric(&metrics_at, "herald_file_tail_truncated_lines_total").await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_follows_the_file_tail_tables_of_its_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("served.log");
    std::fs::write(&path, "written before the start\n").expect("create log");
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "[[file_tail]]\npath = {:?}\nchannel = \"logs\"\nevent = \"LOG:LINE\"\n",
            path.to_string_lossy()
        ),
    )
    .expect("write config");
    let config_arg = config.to_string_lossy().into_owned();
    let herald = Herald::serve(None, &["--config", &config_arg]);
    let mut ws = Ws::user(&herald.ws_url, "watcher", &["logs"]).await;
    // `serve` opened the file before it printed its address: this line is published.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut file| writeln!(file, "{}", line_text(1)))
        .expect("append");
    let frame = ws.event().await;
    assert_eq!(frame["event"], "LOG:LINE");
    assert_eq!(frame["payload"], json!({"line": line_text(1)}));
    ws.assert_quiet().await;
}
