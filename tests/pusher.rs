//! The Pusher protocol at its edges: Pusher's official Python SDK (from PyPI) for the HTTP API
//! and channel authorization, and raw Pusher frames for what a well-behaved client never sends.
//! (pusher-js, Laravel Echo and the npm SDK run in tests/browser.)

mod support;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Instant;
use support::*;
use tokio_tungstenite::tungstenite::Message;

const APP_ID: &str = "4242";
const KEY: &str = "pusher-test-key";
const APP_SECRET: &str = "pusher-test-secret-0123";

/// `herald serve` with one Pusher app (`app_extra` added to its table), and its config file's
/// directory.
fn serve_with_app(app_extra: &str) -> (Herald, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("herald.toml");
    let toml = format!(
        "[[pusher_app]]\nid = \"{APP_ID}\"\nkey = \"{KEY}\"\nsecret = \"{APP_SECRET}\"\n\
         max_event_bytes = 2048\nclient_events_per_sec = 3\n{app_extra}\n"
    );
    std::fs::write(&config, toml).expect("write config");
    let herald = Herald::serve(None, &["--config", config.to_str().expect("utf-8 path")]);
    (herald, dir)
}

/// A raw Pusher protocol client.
struct PusherWs {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    socket_id: String,
}

impl PusherWs {
    async fn connect(base: &str, key: &str) -> PusherWs {
        let mut ws = PusherWs::open(base, key, "7").await;
        let established = ws.recv().await;
        assert_eq!(established["event"], "pusher:connection_established");
        let data: Value = serde_json::from_str(established["data"].as_str().expect("data string"))
            .expect("data is JSON");
        ws.socket_id = data["socket_id"].as_str().expect("socket_id").to_string();
        assert_eq!(data["activity_timeout"], 120);
        ws
    }

    async fn open(base: &str, key: &str, protocol: &str) -> PusherWs {
        let url = format!(
            "{}/app/{key}?protocol={protocol}&client=rust",
            ws_base(base)
        );
        let (stream, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        PusherWs {
            stream,
            socket_id: String::new(),
        }
    }

    async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next frame; a close is returned as `{"closed": code}`.
    async fn recv(&mut self) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.next()).await {
                Err(_) => panic!("no frame within the deadline"),
                Ok(Some(Ok(Message::Text(text)))) => {
                    return serde_json::from_str(text.as_str()).expect("JSON")
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return json!({"closed": frame.map(|f| u16::from(f.code))})
                }
                Ok(Some(Ok(_))) => continue,
                other => panic!("connection failed: {other:?}"),
            }
        }
    }

    /// The next frame, which must be `event`.
    async fn expect(&mut self, event: &str) -> Value {
        let frame = self.recv().await;
        assert_eq!(frame["event"], event, "{frame}");
        frame
    }

    /// A ping answered proves that everything sent before it arrived: nothing else came.
    async fn assert_quiet(&mut self) {
        self.send(json!({"event": "pusher:ping", "data": {}})).await;
        self.expect("pusher:pong").await;
    }

    async fn subscribe(&mut self, channel: &str, auth: Option<Value>) -> Value {
        let mut data = json!({ "channel": channel });
        if let Some(Value::Object(auth)) = auth {
            data.as_object_mut().expect("object").extend(auth);
        }
        self.send(json!({"event": "pusher:subscribe", "data": data}))
            .await;
        self.recv().await
    }
}

fn ws_base(base: &str) -> String {
    base.replacen("http://", "ws://", 1)
}

/// The Python SDK's answer to `command` (a JSON value, or `"ERROR …"`).
fn sdk(herald: &Herald, command: &str, args: Value) -> Value {
    let output = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/pusher_sdk/sdk.py"
        ))
        .arg(command)
        .arg(args.to_string())
        .env("HERALD_URL", &herald.base)
        .env("HERALD_PUSHER_APP_ID", APP_ID)
        .env("HERALD_PUSHER_KEY", KEY)
        .env("HERALD_PUSHER_SECRET", APP_SECRET)
        .output()
        .expect("run the Python SDK");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "sdk.py {command} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.trim();
    serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.to_string()))
}

/// A Python with the `pusher` SDK: `HERALD_PUSHER_PYTHON`, else what the repository's helper
/// installs.
fn python() -> String {
    if let Ok(path) = std::env::var("HERALD_PUSHER_PYTHON") {
        return path;
    }
    static INSTALLED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let output = Command::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/ensure-pusher-sdk.sh"
            ))
            .output()
            .expect("run scripts/ensure-pusher-sdk.sh");
            assert!(output.status.success(), "cannot install the pusher SDK");
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        })
        .clone()
}

/// `data` of a frame, parsed when it is a string of JSON.
fn data(frame: &Value) -> Value {
    match &frame["data"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::String(text.clone())),
        other => other.clone(),
    }
}

#[tokio::test]
async fn the_python_sdk_publishes_queries_and_authorizes_presence() {
    let (herald, _dir) = serve_with_app("");
    let mut ann = PusherWs::connect(&herald.base, KEY).await;
    let channel_data = json!({"user_id": "ann", "user_info": {"name": "Ann"}});
    let auth = sdk(
        &herald,
        "authenticate",
        json!({"channel": "presence-room", "socket_id": ann.socket_id, "custom_data": channel_data}),
    );
    let ok = ann.subscribe("presence-room", Some(auth)).await;
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
    assert_eq!(
        data(&ok)["presence"],
        json!({"ids": ["ann"], "hash": {"ann": {"name": "Ann"}}, "count": 1})
    );

    let sent = sdk(
        &herald,
        "trigger",
        json!({"channels": ["presence-room"], "event": "greet", "data": {"hello": "python"}}),
    );
    assert_eq!(sent, json!({}));
    let event = ann.expect("greet").await;
    assert_eq!(event["channel"], "presence-room");
    assert_eq!(data(&event), json!({"hello": "python"}));

    // The sender's own socket_id is left out; the next event shows nothing came in between.
    sdk(
        &herald,
        "trigger",
        json!({"channels": ["presence-room"], "event": "mine", "data": "x", "socket_id": ann.socket_id}),
    );
    let batch = json!({"batch": [
        {"channel": "presence-room", "name": "b", "data": "1"},
        {"channel": "presence-room", "name": "b", "data": "2"},
    ]});
    sdk(&herald, "trigger_batch", batch);
    assert_eq!(ann.expect("b").await["data"], "1");
    assert_eq!(ann.expect("b").await["data"], "2");

    let info = sdk(
        &herald,
        "channel_info",
        json!({"channel": "presence-room", "info": ["user_count", "subscription_count"]}),
    );
    assert_eq!(
        info,
        json!({"occupied": true, "user_count": 1, "subscription_count": 1})
    );
    let users = sdk(&herald, "users_info", json!({"channel": "presence-room"}));
    assert_eq!(users, json!({"users": [{"id": "ann"}]}));
    let listed = sdk(
        &herald,
        "channels_info",
        json!({"prefix": "presence-", "info": ["user_count"]}),
    );
    assert_eq!(
        listed,
        json!({"channels": {"presence-room": {"user_count": 1}}})
    );
    let empty = sdk(&herald, "channel_info", json!({"channel": "nobody-here"}));
    assert_eq!(empty, json!({"occupied": false}));

    // A signed-in user gets send_to_user, and terminate_user_connections closes it (4009).
    let user = json!({"id": "ann-user"});
    let signin = sdk(
        &herald,
        "authenticate_user",
        json!({"socket_id": ann.socket_id, "user": user}),
    );
    ann.send(json!({"event": "pusher:signin", "data": signin}))
        .await;
    ann.expect("pusher:signin_success").await;
    sdk(
        &herald,
        "send_to_user",
        json!({"user": "ann-user", "event": "dm", "data": "for ann"}),
    );
    let dm = ann.expect("dm").await;
    assert_eq!(dm["channel"], "#server-to-user-ann-user");
    sdk(
        &herald,
        "terminate_user_connections",
        json!({"user": "ann-user"}),
    );
    assert_eq!(ann.recv().await, json!({"closed": 4009}));

    // The SDK reports Herald's refusals: too large for the app's limit.
    let big = sdk(
        &herald,
        "trigger",
        json!({"channels": ["x"], "event": "big", "data": "y".repeat(2049)}),
    );
    assert!(
        big.as_str().is_some_and(|s| s.starts_with("ERROR")),
        "{big}"
    );
}

#[tokio::test]
async fn bad_frames_get_pushers_answers_and_the_connection_goes_on() {
    let (herald, _dir) = serve_with_app("");
    let mut ws = PusherWs::connect(&herald.base, KEY).await;

    ws.send_text("{not json").await;
    let error = ws.expect("pusher:error").await;
    assert!(error["data"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("malformed")));

    ws.send(json!({"event": "pusher:unheard_of", "data": {}}))
        .await;
    ws.expect("pusher:error").await;

    // Private channels want a signature; a forged one is refused, with Pusher's type and status.
    let refused = ws.subscribe("private-x", None).await;
    assert_eq!(refused["event"], "pusher:subscription_error");
    assert_eq!(refused["data"]["status"], 401);
    let forged = json!({"auth": format!("{KEY}:{}", "ab".repeat(32))});
    let refused = ws.subscribe("private-x", Some(forged)).await;
    assert_eq!(refused["data"]["type"], "AuthError", "{refused}");
    // Someone else's user channel is never subscribed to without signing in.
    let theirs = ws.subscribe("#server-to-user-bob", None).await;
    assert_eq!(theirs["event"], "pusher:subscription_error");
    let bad_name = ws.subscribe("has spaces", None).await;
    assert_eq!(bad_name["data"]["status"], 400);

    // Client events: never on public channels, within the size and rate limits elsewhere.
    let public = ws.subscribe("lobby", None).await;
    assert_eq!(public["event"], "pusher_internal:subscription_succeeded");
    ws.send(json!({"event": "client-x", "channel": "lobby", "data": {}}))
        .await;
    let error = ws.expect("pusher:error").await;
    assert!(error["data"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("private and presence")));

    let signature = pusher_sign(&format!("{}:private-chat", ws.socket_id));
    let ok = ws
        .subscribe(
            "private-chat",
            Some(json!({"auth": format!("{KEY}:{signature}")})),
        )
        .await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let huge = json!({"event": "client-big", "channel": "private-chat", "data": "z".repeat(3000)});
    ws.send(huge).await;
    let error = ws.expect("pusher:error").await;
    assert!(error["data"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("exceeds the limit")));
    for _ in 0..3 {
        let small = json!({"event": "client-ok", "channel": "private-chat", "data": {}});
        ws.send(small).await;
    }
    ws.send(json!({"event": "client-ok", "channel": "private-chat", "data": {}}))
        .await;
    let limited = ws.expect("pusher:error").await;
    assert_eq!(limited["data"]["code"], 4301, "{limited}");
    // The sender never gets its own client events back.
    ws.assert_quiet().await;

    // Metrics carry the app: one connection open, three client events accepted.
    let metrics = reqwest::get(format!("{}/metrics", herald.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let line = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("app=\"{APP_ID}\"")))
            .unwrap_or_else(|| panic!("no {name} for the app in:\n{metrics}"))
            .to_string()
    };
    assert!(line("herald_pusher_connections{").ends_with(" 1"));
    assert!(line("herald_pusher_client_events_total{").ends_with(" 3"));
}

/// Pusher's signature with the test app's secret.
fn pusher_sign(text: &str) -> String {
    herald_core::pusher::sign(APP_SECRET, text)
}

#[tokio::test]
async fn unknown_keys_and_protocols_are_closed_with_pushers_codes() {
    let (herald, _dir) = serve_with_app("");
    let mut stranger = PusherWs::open(&herald.base, "no-such-key", "7").await;
    let error = stranger.expect("pusher:error").await;
    assert_eq!(error["data"]["code"], 4001);
    assert_eq!(stranger.recv().await, json!({"closed": 4001}));

    let mut old = PusherWs::open(&herald.base, KEY, "3").await;
    assert_eq!(old.expect("pusher:error").await["data"]["code"], 4007);
    assert_eq!(old.recv().await, json!({"closed": 4007}));
}

#[tokio::test]
async fn native_clients_cannot_reach_into_pusher_channels() {
    let (herald, _dir) = serve_with_app("");
    let mut pusher = PusherWs::connect(&herald.base, KEY).await;
    let signature = pusher_sign(&format!("{}:private-secrets", pusher.socket_id));
    let ok = pusher
        .subscribe(
            "private-secrets",
            Some(json!({"auth": format!("{KEY}:{signature}")})),
        )
        .await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");

    // A native client with an ordinary token cannot join the app's channel under its Herald
    // name, nor publish into it.
    let mut native = Ws::user(&herald.ws_url, "mallory", &[]).await;
    let herald_name = format!("pusher:{APP_ID}:private-secrets");
    let refused = native.join(&herald_name).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let publish = native
        .request(json!({"type": "publish", "channel": herald_name, "event": "x", "payload": 1}))
        .await;
    assert_eq!(publish["type"], "error", "{publish}");

    // A backend, trusted, may: a native notify reaches Pusher clients under its own name.
    herald
        .rest
        .notify(
            "NATIVE",
            json!({"channels": [herald_name]}),
            json!({"from": "rest"}),
        )
        .await;
    let event = pusher.expect("NATIVE").await;
    assert_eq!(event["channel"], "private-secrets");
    assert_eq!(data(&event), json!({"from": "rest"}));
}

/// Webhook POSTs as they arrived: the `X-Pusher-Key` and `X-Pusher-Signature` headers and the body.
type Posts = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

async fn webhook_receiver() -> (Posts, String) {
    let posts: Posts = Default::default();
    let kept = posts.clone();
    let app = axum::Router::new().route(
        "/pusher",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    let post = (
                        header("x-pusher-key"),
                        header("x-pusher-signature"),
                        String::from_utf8_lossy(&body).into_owned(),
                    );
                    kept.lock().expect("lock").push(post);
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/pusher", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (posts, url)
}

#[tokio::test]
async fn webhooks_come_in_pushers_format_and_the_python_sdk_validates_them() {
    let (posts, url) = webhook_receiver().await;
    let (herald, _dir) = serve_with_app(&format!("webhook_url = \"{url}\""));
    let mut ann = PusherWs::connect(&herald.base, KEY).await;
    let channel_data = json!({"user_id": "ann"});
    let auth = sdk(
        &herald,
        "authenticate",
        json!({"channel": "presence-hooks", "socket_id": ann.socket_id, "custom_data": channel_data}),
    );
    let ok = ann.subscribe("presence-hooks", Some(auth)).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let typing = json!({"event": "client-typing", "channel": "presence-hooks", "data": {"t": 1}});
    ann.send(typing).await;
    ann.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-hooks"}}))
        .await;
    ann.assert_quiet().await;

    // Each POST checks out with the SDK; together they tell the whole story, in order.
    let validated = || {
        let posts = posts.lock().expect("lock").clone();
        posts
            .iter()
            .flat_map(|(key, signature, body)| {
                assert_eq!(key, KEY);
                let args = json!({"key": key, "signature": signature, "body": body});
                let hook = sdk(&herald, "validate_webhook", args);
                assert!(hook.is_object(), "the SDK refused {body}: {hook}");
                hook["events"].as_array().cloned().unwrap_or_default()
            })
            .collect::<Vec<Value>>()
    };
    let names = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let deadline = Instant::now() + DEADLINE;
    let events = loop {
        let events = validated();
        if events.len() >= 5 || Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        names(&events),
        [
            "channel_occupied",
            "member_added",
            "client_event",
            "member_removed",
            "channel_vacated"
        ],
        "{events:?}"
    );
    let client_event = &events[2];
    assert_eq!(client_event["channel"], "presence-hooks");
    assert_eq!(client_event["event"], "client-typing");
    assert_eq!(client_event["data"], "{\"t\":1}");
    assert_eq!(client_event["socket_id"], ann.socket_id.as_str());
    assert_eq!(client_event["user_id"], "ann");

    // A body changed on the way fails the SDK's check.
    let (key, signature, body) = posts.lock().expect("lock")[0].clone();
    let tampered =
        json!({"key": key, "signature": signature, "body": body.replace("occupied", "vacated")});
    assert_eq!(sdk(&herald, "validate_webhook", tampered), Value::Null);
}

#[tokio::test]
async fn cache_channels_give_a_new_subscriber_the_last_event_or_a_cache_miss() {
    let (herald, _dir) = serve_with_app("");
    for n in 1..=2 {
        let data = json!({"price": n});
        sdk(
            &herald,
            "trigger",
            json!({"channels": ["cache-prices"], "event": "tick", "data": data}),
        );
    }
    let mut late = PusherWs::connect(&herald.base, KEY).await;
    let ok = late.subscribe("cache-prices", None).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let cached = late.expect("tick").await;
    assert_eq!(cached["channel"], "cache-prices");
    assert_eq!(data(&cached), json!({"price": 2}));

    let ok = late.subscribe("cache-empty", None).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let miss = late.expect("pusher:cache_miss").await;
    assert_eq!(miss["channel"], "cache-empty");

    // A plain channel keeps nothing: its subscriber gets neither.
    sdk(
        &herald,
        "trigger",
        json!({"channels": ["plain"], "event": "tick", "data": "x"}),
    );
    let ok = late.subscribe("plain", None).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    late.assert_quiet().await;
}
