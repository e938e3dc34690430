//! The Redis adapter end to end: a real redis-server on a free port, nats-server, dispatcher,
//! gateway and `herald adapter redis`, with messages PUBLISHed by a Redis client reaching a
//! WebSocket subscriber, invalid ones counted, and a Redis restart in the middle of a stream.
//!
//! Redis pub/sub is at-most-once: what is published while the adapter is not subscribed is lost.
//! The restart test reports how many messages that was.

mod support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// The channel the adapter subscribes to in these tests.
const CHANNEL: &str = "herald:notify";

fn redis_server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("HERALD_REDIS_SERVER") {
        return PathBuf::from(path);
    }
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin", "/usr/sbin"])
    {
        let candidate = PathBuf::from(dir).join("redis-server");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("redis-server not found: install it (apt-get install redis-server) or set HERALD_REDIS_SERVER");
}

/// A redis-server on a port of its own, killed when dropped; can be killed and started again on
/// the same port.
struct Redis {
    port: u16,
    extra: Vec<String>,
    process: Option<Process>,
}

impl Redis {
    fn start() -> Redis {
        Redis::start_with(Vec::new())
    }

    /// A redis-server with `extra` arguments.
    fn start_with(extra: Vec<String>) -> Redis {
        let mut redis = Redis {
            port: free_port(),
            extra,
            process: None,
        };
        redis.launch();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let child = Command::new(redis_server_binary())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.process = Some(Process {
            child,
            name: "redis-server".into(),
        });
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < DEADLINE, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL: gone at once, connections reset.
    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }
}

/// A minimal Redis client for the tests: `PUBLISH` over RESP, reconnecting when needed.
struct Publisher {
    port: u16,
    connection: Option<tokio::io::BufStream<tokio::net::TcpStream>>,
}

impl Publisher {
    fn new(port: u16) -> Publisher {
        Publisher {
            port,
            connection: None,
        }
    }

    /// `PUBLISH channel body`: how many subscribers Redis handed it to, or why it failed.
    async fn publish(&mut self, channel: &str, body: &str) -> Result<i64, String> {
        let result = tokio::time::timeout(Duration::from_secs(2), self.try_publish(channel, body))
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    async fn try_publish(&mut self, channel: &str, body: &str) -> Result<i64, String> {
        if self.connection.is_none() {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .map_err(|e| e.to_string())?;
            self.connection = Some(tokio::io::BufStream::new(stream));
        }
        let Some(connection) = self.connection.as_mut() else {
            return Err("no connection".into());
        };
        let mut command = Vec::new();
        for part in ["PUBLISH", channel, body] {
            command.extend_from_slice(format!("${}\r\n{part}\r\n", part.len()).as_bytes());
        }
        let mut frame = b"*3\r\n".to_vec();
        frame.extend_from_slice(&command);
        connection
            .write_all(&frame)
            .await
            .map_err(|e| e.to_string())?;
        connection.flush().await.map_err(|e| e.to_string())?;
        let mut reply = String::new();
        connection
            .read_line(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        reply
            .strip_prefix(':')
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("unexpected reply {reply:?}"))
    }
}

/// Starts `herald adapter redis` on `channel` and waits for `herald redis running`; returns the
/// process and its metrics address.
fn start_adapter(nats: &str, redis_url: &str, channel: &str) -> (Process, String) {
    start_adapter_with(nats, redis_url, channel, &[])
}

/// [`start_adapter`] with extra environment variables.
fn start_adapter_with(
    nats: &str,
    redis_url: &str,
    channel: &str,
    env: &[(&str, &str)],
) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .envs(env.iter().copied())
        .args(["adapter", "redis", "--nats", nats, "--redis-url", redis_url])
        .args(["--redis-channel", channel, "--listen", "127.0.0.1:0"])
        .env(
            "HERALD_LOG",
            std::env::var("HERALD_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start herald adapter redis");
    let stdout = child.stdout.take().expect("stdout");
    let process = Process {
        child,
        name: "adapter redis".into(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut address = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(found) = line.split("listening on ").nth(1) {
                address = found.trim().to_string();
            }
            if line.trim() == "herald redis running" {
                let _ = tx.send(address.clone());
            }
        }
    });
    let address = rx
        .recv_timeout(DEADLINE)
        .expect("herald adapter redis did not report running");
    (process, address)
}

/// NATS, a dispatcher, a gateway, Redis, the adapter, and a subscriber joined to `logs`.
struct Deployment {
    _nats: Nats,
    _dispatcher: Process,
    _gateway: Process,
    redis: Redis,
    adapter: Process,
    metrics_at: String,
    ws: Ws,
    publisher: Publisher,
}

async fn deployment() -> Deployment {
    let nats = Nats::start();
    let (dispatcher, gateway, url) = dispatcher_and_gateway(&nats.url, &[]);
    let ws = Ws::user(&url, "watcher", &["logs"]).await;
    let redis = Redis::start();
    let (adapter, metrics_at) = start_adapter(&nats.url, &redis.url(), CHANNEL);
    let publisher = Publisher::new(redis.port);
    Deployment {
        _nats: nats,
        _dispatcher: dispatcher,
        _gateway: gateway,
        adapter,
        metrics_at,
        ws,
        publisher,
        redis,
    }
}

fn notify(n: usize) -> String {
    json!({"event": "REDIS:MSG", "targets": {"channels": ["logs"]}, "payload": {"n": n}})
        .to_string()
}

/// The `n` of the next event within `wait`, `None` if none came.
async fn next_n(ws: &mut Ws, wait: Duration) -> Option<usize> {
    match ws.next_frame(wait).await {
        Ok(Some(frame)) => {
            assert_eq!(frame["type"], "event", "{frame}");
            assert_eq!(frame["event"], "REDIS:MSG", "{frame}");
            Some(frame["payload"]["n"].as_u64().expect("n") as usize)
        }
        Ok(None) => None,
        Err(closed) => panic!("subscriber closed: {closed:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_messages_reach_the_websocket_and_invalid_ones_are_counted() {
    let mut d = deployment().await;
    // The adapter printed "running" only once subscribed: the first PUBLISH reaches it.
    assert_eq!(d.publisher.publish(CHANNEL, &notify(0)).await, Ok(1));
    assert_eq!(next_n(&mut d.ws, DEADLINE).await, Some(0));

    let invalid: [&str; 4] = [
        "not json",
        r#"{"event":"REDIS:MSG"}"#,
        r#"{"event":"bad name!","targets":{"channels":["logs"]}}"#,
        r#"{"event":"REDIS:MSG","targets":{"channels":["logs"]},"extra":1}"#,
    ];
    for body in invalid {
        assert_eq!(d.publisher.publish(CHANNEL, body).await, Ok(1));
    }
    for n in 1..=20 {
        assert_eq!(d.publisher.publish(CHANNEL, &notify(n)).await, Ok(1));
    }
    for n in 1..=20 {
        assert_eq!(next_n(&mut d.ws, DEADLINE).await, Some(n), "message {n}");
    }
    d.ws.assert_quiet().await;
    assert_eq!(
        metric(&d.metrics_at, "herald_redis_received_total").await,
        25.0
    );
    assert_eq!(
        metric(&d.metrics_at, "herald_redis_invalid_total").await,
        4.0
    );
    assert_eq!(
        metric(&d.metrics_at, "herald_redis_published_total").await,
        21.0
    );
    // Still running.
    assert!(d.adapter.child.try_wait().expect("try_wait").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_channel_is_subscribed_with_psubscribe() {
    let nats = Nats::start();
    let (_dispatcher, _gateway, url) = dispatcher_and_gateway(&nats.url, &[]);
    let mut ws = Ws::user(&url, "watcher", &["logs"]).await;
    let redis = Redis::start();
    let (_adapter, _) = start_adapter(&nats.url, &redis.url(), "app:*:notify");
    let mut publisher = Publisher::new(redis.port);
    assert_eq!(
        publisher.publish("app:billing:notify", &notify(7)).await,
        Ok(1)
    );
    assert_eq!(publisher.publish("app:other", &notify(8)).await, Ok(0));
    assert_eq!(next_n(&mut ws, DEADLINE).await, Some(7));
    ws.assert_quiet().await;
}

/// `rediss://` with an ACL user, a password and a database: the adapter trusts the test's CA
/// through `SSL_CERT_FILE`, and a wrong password stops it at start without showing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_over_tls_with_a_user_and_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certificates(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    let tls_port = free_port();
    let redis = Redis::start_with(
        [
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &file("server.pem"),
            "--tls-key-file",
            &file("server.key"),
            "--tls-ca-cert-file",
            &file("ca.pem"),
            "--tls-auth-clients",
            "no",
            "--user",
            "herald",
            "on",
            ">s3cret-pass",
            "~*",
            "&*",
            "+@all",
        ]
        .map(String::from)
        .to_vec(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(started.elapsed() < DEADLINE, "redis TLS port did not open");
        std::thread::sleep(Duration::from_millis(10));
    }
    let nats = Nats::start();
    let (_dispatcher, _gateway, url) = dispatcher_and_gateway(&nats.url, &[]);
    let mut ws = Ws::user(&url, "watcher", &["logs"]).await;
    let ca = file("ca.pem");
    let env = [("SSL_CERT_FILE", ca.as_str())];

    let wrong = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["adapter", "redis", "--nats", &nats.url, "--redis-url"])
        .arg(format!("rediss://herald:wrong-pass@127.0.0.1:{tls_port}/2"))
        .envs(env)
        .output()
        .expect("run adapter");
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot subscribe to Redis at 127.0.0.1"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong-pass"),
        "the password was shown: {stderr}"
    );

    let (_adapter, _) = start_adapter_with(
        &nats.url,
        &format!("rediss://herald:s3cret-pass@127.0.0.1:{tls_port}/2"),
        CHANNEL,
        &env,
    );
    let mut publisher = Publisher::new(redis.port);
    assert_eq!(publisher.publish(CHANNEL, &notify(42)).await, Ok(1));
    assert_eq!(next_n(&mut ws, DEADLINE).await, Some(42));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_fast_when_redis_is_unreachable_at_start() {
    let nats = Nats::start();
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["adapter", "redis", "--nats", &nats.url, "--redis-url"])
        .arg(format!("redis://127.0.0.1:{}", free_port()))
        .output()
        .expect("run adapter");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot subscribe to Redis at 127.0.0.1"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("running"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_redis_restart_and_later_messages_arrive() {
    let mut d = deployment().await;
    let mut received: Vec<usize> = Vec::new();
    // Before: a steady stream, all delivered.
    let mut n = 0;
    while n < 50 {
        assert_eq!(d.publisher.publish(CHANNEL, &notify(n)).await, Ok(1));
        n += 1;
    }
    while received.len() < 50 {
        received.push(
            next_n(&mut d.ws, DEADLINE)
                .await
                .expect("message before the restart"),
        );
    }

    // The restart, with the stream going on: messages published while Redis is down fail to
    // publish at all; those published after it is back but before the adapter resubscribed
    // reach no subscriber (Redis answers 0) and are lost.
    d.redis.kill();
    let outage_from = n;
    let mut refused = 0;
    let mut no_subscriber = 0;
    for _ in 0..5 {
        if d.publisher.publish(CHANNEL, &notify(n)).await.is_err() {
            refused += 1;
        }
        n += 1;
    }
    d.redis.launch();
    let restarted = Instant::now();
    loop {
        assert!(
            restarted.elapsed() < DEADLINE,
            "the adapter did not resubscribe"
        );
        match d.publisher.publish(CHANNEL, &notify(n)).await {
            Ok(0) => no_subscriber += 1,
            Ok(_) => break,
            Err(_) => refused += 1,
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let resubscribed_at = n;
    let resubscribed_after = restarted.elapsed();
    n += 1;
    // After: everything arrives.
    while n < resubscribed_at + 50 {
        assert_eq!(d.publisher.publish(CHANNEL, &notify(n)).await, Ok(1));
        n += 1;
    }
    let expected_after: Vec<usize> = (resubscribed_at..n).collect();
    let mut after = Vec::new();
    while after.len() < expected_after.len() {
        let got = next_n(&mut d.ws, DEADLINE)
            .await
            .unwrap_or_else(|| panic!("messages after the reconnect missing: got {after:?}"));
        after.push(got);
    }
    assert_eq!(
        after, expected_after,
        "after the reconnect every message arrives, in order"
    );
    d.ws.assert_quiet().await;
    let published_during_outage = resubscribed_at - outage_from;
    println!(
        "Redis restart: {published_during_outage} messages published during the outage \
         (resubscribed {resubscribed_after:?} after Redis came back): {refused} refused by the \
         stopped Redis, {no_subscriber} accepted by Redis with no subscriber; all {} lost \
         (pub/sub is at-most-once)",
        refused + no_subscriber
    );
    assert_eq!(received, (0..50).collect::<Vec<_>>());
    assert_eq!(refused + no_subscriber, published_during_outage);
    assert!(metric(&d.metrics_at, "herald_redis_reconnects_total").await >= 1.0);
    assert_eq!(metric(&d.metrics_at, "herald_redis_connected").await, 1.0);
}

/// The value must parse as the notify the adapter expects (guards the helper itself).
#[test]
fn test_messages_are_valid_notify_bodies() {
    let body: Value = serde_json::from_str(&notify(3)).expect("JSON");
    assert_eq!(body["payload"]["n"], 3);
    herald_core::protocol::notify::Notify::decode(notify(3).as_bytes()).expect("valid notify");
}
