//! Test harness: real nats-server and herald processes on free ports, and small WebSocket, SSE
//! and REST clients that wait for conditions with deadlines.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// How long any single expected thing may take.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// The JWT secret every test deployment uses.
pub const SECRET: &str = "test-secret-of-at-least-32-bytes-ok";
/// The API key every test deployment accepts.
pub const API_KEY: &str = "test-api-key";

/// The argon2id hash of [`API_KEY`], computed once per test binary.
pub fn api_key_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| herald_core::credentials::hash_secret(API_KEY).expect("hash"))
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until `check` holds or the deadline passes.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(DEADLINE, what, check).await
}

/// Waits until `check` holds or `deadline` passes.
pub async fn eventually_within<F, Fut>(deadline: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn nats_server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("HERALD_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let cached = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/nats/nats-server");
    if cached.exists() {
        return cached;
    }
    let output = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/ensure-nats.sh"
    ))
    .output()
    .expect("run scripts/ensure-nats.sh");
    assert!(output.status.success(), "scripts/ensure-nats.sh failed");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A child process killed when dropped.
pub struct Process {
    pub child: Child,
    pub name: String,
}

impl Process {
    /// Kills it now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks it to stop (SIGTERM) and waits up to the deadline for it to exit.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        unsafe_sigterm(self.child.id());
        let started = Instant::now();
        while started.elapsed() < DEADLINE {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A nats-server with JetStream on a free port and its own store directory.
pub struct Nats {
    pub url: String,
    pub port: u16,
    process: Process,
    _store: tempfile::TempDir,
}

impl Nats {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Nats {
        let port = free_port();
        let store = tempfile::tempdir().expect("tempdir");
        let process = Self::spawn(port, store.path());
        Nats {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            process,
            _store: store,
        }
    }

    /// Kills the server (SIGKILL).
    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) {
        self.process.kill();
        self.process = Self::spawn(self.port, self._store.path());
    }

    /// Three nats-servers with JetStream, routed into one cluster.
    pub fn cluster() -> Vec<Nats> {
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes = ports
            .iter()
            .map(|(_, route)| format!("nats://127.0.0.1:{route}"))
            .collect::<Vec<_>>()
            .join(",");
        ports
            .iter()
            .enumerate()
            .map(|(i, &(port, route))| {
                let store = tempfile::tempdir().expect("tempdir");
                let cluster_args = vec![
                    "-n".to_string(),
                    format!("node{i}"),
                    "--cluster_name".to_string(),
                    "herald-test".to_string(),
                    "--cluster".to_string(),
                    format!("nats://127.0.0.1:{route}"),
                    "--routes".to_string(),
                    routes.clone(),
                ];
                let process = Self::spawn_with(port, store.path(), &cluster_args);
                Nats {
                    url: format!("nats://127.0.0.1:{port}"),
                    port,
                    process,
                    _store: store,
                }
            })
            .collect()
    }

    fn spawn(port: u16, store: &std::path::Path) -> Process {
        Self::spawn_with(port, store, &[])
    }

    fn spawn_with(port: u16, store: &std::path::Path, extra: &[String]) -> Process {
        let child = Command::new(nats_server_binary())
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < DEADLINE, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Process {
            child,
            name: "nats-server".into(),
        }
    }
}

/// Starts `herald <role> --nats <nats> <common args> <extra>` until it runs: JetStream needs a
/// meta leader before a replicated bucket or stream can be made, and a freshly formed NATS
/// cluster has none for a while (the role fails fast until then).
pub fn start_when_the_cluster_is_ready(role: &[&str], nats: &str, extra: &[&str]) -> Process {
    let mut args: Vec<String> = role.iter().map(|s| s.to_string()).collect();
    args.extend(common_args(Some(nats)));
    args.extend(extra.iter().map(|s| s.to_string()));
    let started = Instant::now();
    loop {
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start herald");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.ends_with(" running") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(DEADLINE).is_ok() {
            return Process {
                child,
                name: role.join(" "),
            };
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the NATS cluster never formed"
        );
    }
}

/// Starts `herald <args>`; for roles that listen, returns the address they printed.
pub fn herald(args: &[&str]) -> (Process, Option<String>) {
    herald_with(args, &[], Stdio::inherit())
}

/// [`herald`] with environment variables `env` added (they win over the test's own) and its
/// log (stderr) sent to `stderr`, e.g. a file a test reads.
pub fn herald_with(
    args: &[&str],
    env: &[(&str, &str)],
    stderr: impl Into<Stdio>,
) -> (Process, Option<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env(
            "HERALD_LOG",
            std::env::var("HERALD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start herald");
    let stdout = child.stdout.take().expect("stdout");
    let name = args.iter().take(2).cloned().collect::<Vec<_>>().join(" ");
    // A role that listens prints its address; one that does not prints `running` when ready.
    // The reader keeps draining stdout so later lines never meet a closed pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(line)) = lines.next() {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let _ = tx.send(Some(addr.trim().to_string()));
            } else if line.ends_with(" running") {
                let _ = tx.send(None);
            }
        }
    });
    let address = rx
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("herald {name} did not start"));
    (Process { child, name }, address)
}

/// A dispatcher and a gateway (with `gateway_args` added) on the NATS at `nats`, both ready;
/// returns them and the gateway's WebSocket URL.
pub fn dispatcher_and_gateway(nats: &str, gateway_args: &[&str]) -> (Process, Process, String) {
    let (dispatcher, _) = herald(&["dispatcher", "--nats", nats, "--jwt-secret", SECRET]);
    let mut args = vec![
        "gateway",
        "--nats",
        nats,
        "--listen",
        "127.0.0.1:0",
        "--jwt-secret",
        SECRET,
    ];
    args.extend_from_slice(gateway_args);
    let (gateway, address) = herald(&args);
    (
        dispatcher,
        gateway,
        ws_url(&address.expect("gateway address")),
    )
}

/// The arguments every test deployment shares.
pub fn common_args(nats: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "--jwt-secret".to_string(),
        SECRET.to_string(),
        "--api-key-hash".to_string(),
        api_key_hash().to_string(),
        "--listen".to_string(),
        "127.0.0.1:0".to_string(),
    ];
    if let Some(url) = nats {
        args.push("--nats".to_string());
        args.push(url.to_string());
    }
    args
}

/// A `herald serve` process (embedded, or on the given NATS), with clients for it.
pub struct Herald {
    pub process: Process,
    pub base: String,
    pub ws_url: String,
    pub rest: Rest,
}

impl Herald {
    /// `herald serve` with the common arguments plus `extra`.
    pub fn serve(nats: Option<&str>, extra: &[&str]) -> Herald {
        let mut args = vec!["serve".to_string()];
        args.extend(common_args(nats));
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (process, address) = herald(&refs);
        let base = address.expect("address");
        Herald {
            process,
            ws_url: ws_url(&base),
            rest: Rest::new(&base),
            base,
        }
    }
}

/// The WebSocket URL of a gateway at `base`.
pub fn ws_url(base: &str) -> String {
    format!("{}/ws", base.replacen("http://", "ws://", 1))
}

/// A token for `user` granting `channels`.
pub fn token(user: &str, channels: &[&str]) -> String {
    token_with(user, channels, 3600)
}

/// A token for `user` valid `ttl` seconds from now (negative: already expired).
pub fn token_with(user: &str, channels: &[&str], ttl: i64) -> String {
    let exp = (herald_core::token::now_secs() as i64 + ttl).max(0) as u64;
    herald_core::token::mint(
        SECRET.as_bytes(),
        &herald_core::token::Claims {
            sub: user.to_string(),
            exp,
            iat: None,
            channels: channels.iter().map(|s| s.to_string()).collect(),
            publish: Vec::new(),
            jti: None,
            once: false,
        },
    )
    .expect("mint")
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client speaking protocol v1.
pub struct Ws {
    stream: WsStream,
    next_id: u64,
    /// The connection id from `welcome`.
    pub conn: String,
}

/// How a WebSocket ended.
#[derive(Debug, PartialEq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Ws {
    /// Connects and reads `welcome`.
    pub async fn connect(url: &str) -> Ws {
        let (stream, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        Ws::from_stream(stream).await
    }

    /// Wraps a connected stream and reads `welcome`.
    pub async fn from_stream(stream: WsStream) -> Ws {
        let mut ws = Ws {
            stream,
            next_id: 0,
            conn: String::new(),
        };
        let welcome = ws.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert!(welcome["heartbeat_ms"].as_u64().is_some());
        ws.conn = welcome["conn"].as_str().expect("conn id").to_string();
        ws
    }

    /// Connects, idents as `user` with `channels` granted, and joins `joins`.
    pub async fn user(url: &str, user: &str, joins: &[&str]) -> Ws {
        let mut ws = Ws::connect(url).await;
        let reply = ws.ident(&token(user, &[])).await;
        assert_eq!(reply["type"], "ok", "{reply}");
        for channel in joins {
            let reply = ws.join(channel).await;
            assert_eq!(reply["type"], "ok", "{reply}");
        }
        ws
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// Sends raw text, ignoring a failed send (the server may close before reading it all).
    pub async fn try_send_text(&mut self, text: &str) {
        let _ = self.stream.send(Message::Text(text.into())).await;
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.stream
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .expect("send");
    }

    /// Writes raw bytes to the TCP connection, past the WebSocket library (for frames it
    /// would refuse to send).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = self.stream.get_mut() else {
            panic!("tests speak plain ws://");
        };
        tcp.write_all(bytes).await.expect("write");
    }

    /// Sends a request frame with a fresh id and returns its reply (events in between are
    /// a test failure: callers read events with [`Ws::event`]).
    pub async fn request(&mut self, mut frame: Value) -> Value {
        self.next_id += 1;
        frame["id"] = json!(self.next_id);
        self.send_text(&frame.to_string()).await;
        let reply = self.recv().await;
        assert_eq!(
            reply["id"],
            json!(self.next_id),
            "reply to the request: {reply}"
        );
        reply
    }

    /// `ident` with a token.
    pub async fn ident(&mut self, token: &str) -> Value {
        self.request(json!({"type": "ident", "auth": {"token": token}}))
            .await
    }

    /// `join`.
    pub async fn join(&mut self, channel: &str) -> Value {
        self.request(json!({"type": "join", "channel": channel}))
            .await
    }

    /// `leave`.
    pub async fn leave(&mut self, channel: &str) -> Value {
        self.request(json!({"type": "leave", "channel": channel}))
            .await
    }

    /// The next frame, within the deadline.
    pub async fn recv(&mut self) -> Value {
        match self.next_frame(DEADLINE).await {
            Ok(Some(frame)) => frame,
            Ok(None) => panic!("no frame within the deadline"),
            Err(closed) => panic!("connection closed: {closed:?}"),
        }
    }

    /// The next frame within `wait`: `Ok(None)` if none came, `Err` if the server closed.
    pub async fn next_frame(&mut self, wait: Duration) -> Result<Option<Value>, Closed> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.next()).await {
                Err(_) => return Ok(None),
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Ok(Some(
                        serde_json::from_str(text.as_str()).expect("server sends JSON"),
                    ))
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Err(Closed {
                        code: frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    })
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => {
                    return Err(Closed {
                        code: 1006,
                        reason: "connection dropped".into(),
                    })
                }
            }
        }
    }

    /// The next `event` frame.
    pub async fn event(&mut self) -> Value {
        let frame = self.recv().await;
        assert_eq!(frame["type"], "event", "expected an event: {frame}");
        frame
    }

    /// Asserts that no frame arrives for a short while (used after a ping round trip has
    /// proven everything sent before it was already delivered).
    pub async fn assert_quiet(&mut self) {
        let pong = self.request(json!({"type": "ping"})).await;
        assert_eq!(
            pong["type"], "pong",
            "expected nothing but the pong: {pong}"
        );
    }

    /// Reads what the server sends from here on as raw bytes, without answering its pings (a
    /// WebSocket library would answer each one as it reads it), until the server ends the TCP
    /// connection; returns the close frame found there, if any.
    pub async fn raw_close_without_answering(&mut self) -> Option<Closed> {
        use tokio::io::AsyncReadExt;
        let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = self.stream.get_mut() else {
            panic!("tests speak plain ws://");
        };
        let mut bytes = Vec::new();
        tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut bytes))
            .await
            .expect("server ends the connection in time")
            .expect("read");
        // Server frames are unmasked; these are small (7-bit lengths).
        let mut rest = &bytes[..];
        while rest.len() >= 2 {
            let (opcode, len) = (rest[0] & 0x0f, usize::from(rest[1] & 0x7f));
            let payload = rest.get(2..2 + len)?;
            if opcode == 8 && len >= 2 {
                return Some(Closed {
                    code: u16::from_be_bytes([payload[0], payload[1]]),
                    reason: String::from_utf8_lossy(&payload[2..]).into_owned(),
                });
            }
            rest = &rest[2 + len..];
        }
        None
    }

    /// The underlying stream, for sending frames the helpers above would not (binary, raw).
    pub fn stream_mut(&mut self) -> &mut WsStream {
        &mut self.stream
    }

    /// Waits for the server to close the connection and returns how.
    pub async fn closed(&mut self) -> Closed {
        loop {
            match self.next_frame(DEADLINE).await {
                Err(closed) => return closed,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("connection not closed within the deadline"),
            }
        }
    }
}

/// A REST client with the test API key.
#[derive(Clone)]
pub struct Rest {
    pub base: String,
    pub client: reqwest::Client,
}

impl Rest {
    pub fn new(base: &str) -> Rest {
        Rest {
            base: base.to_string(),
            client: reqwest::Client::new(),
        }
    }

    /// POSTs JSON with the API key; returns status and body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, body.to_string(), Some(API_KEY)).await
    }

    /// POSTs a raw body with an optional key.
    pub async fn post_raw(&self, path: &str, body: String, key: Option<&str>) -> (u16, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// GETs with the API key.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(API_KEY)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POST /v1/notify, asserting 202; returns the event id.
    pub async fn notify(&self, event: &str, targets: Value, payload: Value) -> String {
        let (status, body) = self
            .post(
                "/v1/notify",
                json!({"event": event, "targets": targets, "payload": payload}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().expect("event id").to_string()
    }
}

/// An SSE connection: `GET /sse` plus `POST /sse/{conn}`.
pub struct Sse {
    client: reqwest::Client,
    pub conn: String,
    /// The secret from `welcome` that every POST sends in `X-Herald-Secret`.
    pub secret: String,
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Sse {
    /// Opens the stream and reads `welcome`.
    pub async fn open(base: &str) -> Sse {
        Sse::open_with(reqwest::Client::new(), base).await
    }

    /// [`Sse::open`] with a client of the caller's (one trusting a test certificate, say); its
    /// POSTs use that client too.
    pub async fn open_with(client: reqwest::Client, base: &str) -> Sse {
        let response = client
            .get(format!("{base}/sse"))
            .send()
            .await
            .expect("GET /sse");
        assert_eq!(response.status().as_u16(), 200);
        let mut sse = Sse {
            client,
            conn: String::new(),
            secret: String::new(),
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        };
        let welcome = sse.next_frame().await;
        assert_eq!(welcome["type"], "welcome");
        sse.conn = welcome["conn"].as_str().expect("conn").to_string();
        sse.secret = welcome["secret"].as_str().expect("SSE secret").to_string();
        sse
    }

    /// The next `data:` frame (keep-alive comments skipped).
    pub async fn next_frame(&mut self) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|l| l.strip_prefix(' ').unwrap_or(l))
                    .collect();
                if !data.is_empty() {
                    return serde_json::from_str(&data.join("\n")).expect("SSE data is JSON");
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) => panic!("SSE stream ended"),
                Err(_) => panic!("no SSE frame within the deadline"),
            }
        }
    }

    /// POSTs raw bytes as a client frame to `base`; returns the status and the reply (JSON, or
    /// the body as a JSON string when it is not JSON).
    pub async fn post_raw(&self, base: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{base}/sse/{}", self.conn))
            .header("x-herald-secret", &self.secret)
            .body(body)
            .send()
            .await
            .expect("POST /sse");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let reply = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, reply)
    }

    /// POSTs a client frame to `base` (any gateway) and returns the reply frame.
    pub async fn post(&self, base: &str, frame: Value) -> Value {
        let (status, reply) = self.post_raw(base, frame.to_string().into_bytes()).await;
        assert_eq!(status, 200, "{reply}");
        reply
    }
}

/// POSTs `frame` to `POST /sse/{conn}` at `base`, with `secret` in `X-Herald-Secret` if given;
/// returns the status and the JSON body (as a string value if it is not JSON).
pub async fn post_sse_frame(
    base: &str,
    conn: &str,
    secret: Option<&str>,
    frame: Value,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/sse/{conn}"))
        .body(frame.to_string());
    if let Some(secret) = secret {
        request = request.header("x-herald-secret", secret);
    }
    let response = request.send().await.expect("POST /sse");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Runs `herald check-config path`: whether it passed, and what it printed.
pub fn check_config(path: &std::path::Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("check-config")
        .arg(path)
        .output()
        .expect("run check-config");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

/// Runs `herald <args>` that must fail to start: waits for it to exit within the deadline and
/// returns its log (stderr).
pub fn herald_refuses(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start herald");
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("herald {args:?} kept running; it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut log = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut log);
    }
    assert!(
        !status.success(),
        "herald {args:?} exited successfully: {log}"
    );
    log
}

impl Nats {
    /// A nats-server on `port` run with the configuration file `config` (which says where it
    /// listens, logs and stores); waits until it accepts connections.
    pub fn with_config(config: &std::path::Path, port: u16) -> Nats {
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < DEADLINE,
                "nats-server -c {config:?} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nats {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            process: Process {
                child,
                name: "nats-server".into(),
            },
            _store: tempfile::tempdir().expect("tempdir"),
        }
    }
}

/// Runs `openssl` with `args` in `dir`, failing the test with its error output.
pub fn openssl(dir: &std::path::Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (the tests make their certificates with it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A throwaway CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it.
pub fn make_certificates(dir: &std::path::Path) {
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write san.ext");
    for line in [
        format!("req -x509 -days 2 -subj /CN=herald-test-ca {ec} -keyout ca.key -out ca.pem"),
        format!("req -subj /CN=localhost {ec} -keyout server.key -out server.csr"),
        "x509 -req -days 2 -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
         -extfile san.ext -out server.pem"
            .to_string(),
    ] {
        let args: Vec<&str> = line.split_whitespace().collect();
        openssl(dir, &args);
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM, DER).
pub fn certificate() -> (String, String, Vec<u8>) {
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let generated = rcgen::generate_simple_self_signed(names).expect("certificate");
    (
        generated.cert.pem(),
        generated.key_pair.serialize_pem(),
        generated.cert.der().to_vec(),
    )
}

/// A TLS client trusting `trusted`; returns the stream and the certificate the server showed.
pub async fn tls_connect(
    address: &str,
    trusted: &[&[u8]],
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
) {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    for der in trusted {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.to_vec()))
            .expect("trust");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let stream = tokio::time::timeout(DEADLINE, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let shown = stream.get_ref().1.peer_certificates().expect("certificate")[0].to_vec();
    (stream, shown)
}

/// The next text frame of a raw WebSocket, as JSON.
pub async fn next_text<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).expect("JSON frame");
        }
    }
}

/// The `/metrics` text of the process serving at `base`.
pub async fn scrape_metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
}

/// The sum of every series of metric `name` in a `/metrics` text, whatever its labels (a
/// process labels its metrics by role, and a gateway's by gateway id); `None` when absent.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse().ok()
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// [`metric_sum`] of the process serving at `base`, 0 when absent.
pub async fn metric(base: &str, name: &str) -> f64 {
    metric_sum(&scrape_metrics(base).await, name).unwrap_or(0.0)
}
