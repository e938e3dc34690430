//! Lifecycle events to backends, end to end: a webhook receiver on loopback gets connect, join,
//! leave, disconnect, online, offline, occupied, vacated and gateway_lost, signed; a receiver
//! that is down for a while, or a dispatcher killed mid-batch, loses nothing; the JetStream
//! event log keeps its promises against a real nats-server.

mod support;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use herald_core::event_log::{EventLog, NatsEventLog};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const HOOK_SECRET: &str = "webhook-secret-of-the-tests";

/// A webhook receiver: checks each POST's signature, keeps each event once by id, and answers
/// 503 while `down` is set.
#[derive(Clone, Default)]
struct Receiver {
    events: Arc<Mutex<BTreeMap<String, Value>>>,
    /// Events in arrival order (with copies), for order checks.
    arrivals: Arc<Mutex<Vec<Value>>>,
    bad_signatures: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move { state.take(&headers, &body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hooks", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn take(&self, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        let signature = headers
            .get("x-herald-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !herald_core::signature::verify(HOOK_SECRET.as_bytes(), body, signature) {
            self.bad_signatures.fetch_add(1, Ordering::Relaxed);
            return StatusCode::UNAUTHORIZED;
        }
        if self.down.load(Ordering::Relaxed) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        let batch: Value = serde_json::from_slice(body).expect("JSON batch");
        for event in batch["events"].as_array().expect("events array") {
            let id = event["id"].as_str().expect("id").to_string();
            self.events.lock().unwrap().insert(id, event.clone());
            self.arrivals.lock().unwrap().push(event.clone());
        }
        StatusCode::OK
    }

    /// Every distinct event received so far.
    fn all(&self) -> Vec<Value> {
        self.events.lock().unwrap().values().cloned().collect()
    }

    /// Events of `kind` received so far matching `field` == `value`.
    fn matching(&self, kind: &str, field: &str, value: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|e| e["type"] == kind && e[field] == value)
            .collect()
    }

    /// Waits until an event of `kind` with `field` == `value` arrived; returns it.
    async fn wait_for(&self, kind: &str, field: &str, value: &str) -> Value {
        let what = format!("a {kind} event with {field} = {value}");
        eventually_within(Duration::from_secs(30), &what, || async {
            !self.matching(kind, field, value).is_empty()
        })
        .await;
        self.matching(kind, field, value).remove(0)
    }
}

/// A configuration file with a `[[webhook]]` for `url` (plus `extra` TOML).
fn hook_config(dir: &tempfile::TempDir, url: &str, extra: &str) -> String {
    let path = dir.path().join("herald.toml");
    std::fs::write(
        &path,
        format!("[[webhook]]\nurl = \"{url}\"\nsecret = \"{HOOK_SECRET}\"\nbatch_ms = 50\n{extra}"),
    )
    .expect("write config");
    path.to_string_lossy().into_owned()
}

/// What a user's session looks like to a backend: each event of the session, with its fields.
async fn session_scenario(herald: &Herald, receiver: &Receiver) {
    let mut alice = Ws::user(&herald.ws_url, "alice", &["chat"]).await;
    let bob = Ws::user(&herald.ws_url, "bob", &["chat"]).await;
    assert_eq!(alice.leave("chat").await["type"], "ok");
    let (alice_conn, bob_conn) = (alice.conn.clone(), bob.conn.clone());
    drop(bob);
    let disconnect = receiver.wait_for("disconnect", "conn", &bob_conn).await;
    assert_eq!(disconnect["user"], "bob");
    assert!(disconnect["reason"].is_string(), "{disconnect}");
    // Bob was the last member of chat once alice left: vacated, and bob went offline.
    receiver.wait_for("vacated", "channel", "chat").await;
    receiver.wait_for("offline", "user", "bob").await;
    alice.assert_quiet().await;
    drop(alice);
    receiver.wait_for("offline", "user", "alice").await;

    let connect = receiver.wait_for("connect", "conn", &alice_conn).await;
    assert_eq!(connect["user"], "alice");
    assert!(
        connect["time_ms"].as_u64().unwrap() > 1_700_000_000_000,
        "{connect}"
    );
    for user in ["alice", "bob"] {
        assert_eq!(receiver.matching("online", "user", user).len(), 1, "{user}");
        assert_eq!(
            receiver.matching("offline", "user", user).len(),
            1,
            "{user}"
        );
    }
    let joins = receiver.matching("join", "channel", "chat");
    assert_eq!(joins.len(), 2, "{joins:?}");
    assert_eq!(receiver.matching("occupied", "channel", "chat").len(), 1);
    let leave = receiver.wait_for("leave", "conn", &alice_conn).await;
    assert_eq!(
        (&leave["user"], &leave["channel"]),
        (&json!("alice"), &json!("chat"))
    );
    assert_eq!(receiver.bad_signatures.load(Ordering::Relaxed), 0);
    // A user's events come in the order they happened.
    let arrivals = receiver.arrivals.lock().unwrap().clone();
    let position = |kind: &str, user: &str| {
        arrivals
            .iter()
            .position(|e| e["type"] == kind && e["user"] == user)
            .unwrap_or_else(|| panic!("no {kind} of {user}"))
    };
    assert!(position("online", "alice") < position("offline", "alice"));
    assert!(position("connect", "bob") < position("disconnect", "bob"));
}

#[tokio::test]
async fn webhooks_get_a_session_signed_embedded() {
    let (receiver, url) = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let herald = Herald::serve(None, &["--config", &hook_config(&dir, &url, "")]);
    session_scenario(&herald, &receiver).await;
}

#[tokio::test]
async fn webhooks_get_a_session_signed_on_nats() {
    let nats = Nats::start();
    let (receiver, url) = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let herald = Herald::serve(Some(&nats.url), &["--config", &hook_config(&dir, &url, "")]);
    session_scenario(&herald, &receiver).await;
}

#[tokio::test]
async fn a_webhook_gets_only_the_types_it_asked_for_and_presence_resyncs() {
    let (receiver, url) = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = hook_config(&dir, &url, "events = [\"online\", \"offline\"]\n");
    let herald = Herald::serve(None, &["--config", &config]);
    let mut carol = Ws::user(&herald.ws_url, "carol", &["news", "chat"]).await;
    let _carol_phone = Ws::user(&herald.ws_url, "carol", &["news"]).await;
    receiver.wait_for("online", "user", "carol").await;
    let (status, presence) = herald.rest.get("/v1/presence").await;
    assert_eq!(status, 200, "{presence}");
    assert_eq!(
        presence,
        json!({
            "users": [{"user": "carol", "connections": 2}],
            "channels": [
                {"channel": "chat", "connections": 1, "users": ["carol"]},
                {"channel": "news", "connections": 2, "users": ["carol"]},
            ]
        })
    );
    carol.assert_quiet().await;
    drop(carol);
    drop(_carol_phone);
    receiver.wait_for("offline", "user", "carol").await;
    let kinds: Vec<Value> = receiver.all().iter().map(|e| e["type"].clone()).collect();
    assert_eq!(kinds.len(), 2, "only online and offline: {kinds:?}");
}

/// `dispatchers` dispatchers (with the webhook), two gateways and a REST adapter on `nats`.
struct HookCluster {
    dispatchers: Vec<Process>,
    gateways: Vec<(Process, String)>,
    _rest: Process,
}

fn hook_cluster(nats: &str, config: &str, dispatchers: usize) -> HookCluster {
    let fast = [
        "--liveness-interval-ms",
        "200",
        "--gateway-timeout-ms",
        "1500",
    ];
    let role = |role: &[&str], extra: &[&str]| {
        let mut args: Vec<String> = role.iter().map(|s| s.to_string()).collect();
        args.extend(common_args(Some(nats)));
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        herald(&refs)
    };
    let mut dispatcher_args = fast.to_vec();
    dispatcher_args.extend(["--config", config]);
    HookCluster {
        dispatchers: (0..dispatchers)
            .map(|_| role(&["dispatcher"], &dispatcher_args).0)
            .collect(),
        gateways: (0..2)
            .map(|_| {
                let (p, address) = role(&["gateway"], &fast);
                (p, ws_url(&address.expect("gateway address")))
            })
            .collect(),
        _rest: role(&["adapter", "rest"], &[]).0,
    }
}

#[tokio::test]
async fn a_killed_gateway_is_reported_lost_with_the_disconnects_of_its_connections() {
    let nats = Nats::start();
    let (receiver, url) = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = hook_cluster(&nats.url, &hook_config(&dir, &url, ""), 1);
    let doomed_a = Ws::user(&c.gateways[1].1, "dora", &["room"]).await;
    let doomed_b = Ws::user(&c.gateways[1].1, "eve", &["room"]).await;
    let _survivor = Ws::user(&c.gateways[0].1, "fay", &["room"]).await;
    receiver.wait_for("connect", "conn", &doomed_b.conn).await;
    c.gateways[1].0.kill();
    let lost = receiver
        .wait_for("gateway_lost", "type", "gateway_lost")
        .await;
    let mut conns: Vec<String> = lost["conns"]
        .as_array()
        .expect("conns")
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    conns.sort();
    let mut expected = vec![doomed_a.conn.clone(), doomed_b.conn.clone()];
    expected.sort();
    assert_eq!(conns, expected);
    assert!(lost["gateway"].is_string(), "{lost}");
    for (conn, user) in [(&doomed_a.conn, "dora"), (&doomed_b.conn, "eve")] {
        let disconnect = receiver.wait_for("disconnect", "conn", conn).await;
        assert_eq!(
            (&disconnect["user"], &disconnect["reason"]),
            (&json!(user), &json!("gateway_lost"))
        );
        receiver.wait_for("offline", "user", user).await;
    }
    // The survivor keeps the room occupied.
    assert!(receiver.matching("vacated", "channel", "room").is_empty());
}

/// Connects and disconnects `n` users named `prefix-i`, one after another; returns their
/// connection ids.
async fn sessions(ws: &str, prefix: &str, n: usize) -> Vec<String> {
    let mut conns = Vec::new();
    for i in 0..n {
        let mut user = Ws::user(ws, &format!("{prefix}-{i}"), &["busy"]).await;
        assert_eq!(user.leave("busy").await["type"], "ok");
        conns.push(user.conn.clone());
    }
    conns
}

/// Every connection's connect and disconnect, and each user's online and offline, arrived.
async fn all_arrived(receiver: &Receiver, prefix: &str, conns: &[String]) {
    eventually_within(
        Duration::from_secs(60),
        "every event of every session",
        || async {
            conns.iter().enumerate().all(|(i, conn)| {
                let user = format!("{prefix}-{i}");
                !receiver.matching("connect", "conn", conn).is_empty()
                    && !receiver.matching("disconnect", "conn", conn).is_empty()
                    && !receiver.matching("leave", "conn", conn).is_empty()
                    && !receiver.matching("online", "user", &user).is_empty()
                    && !receiver.matching("offline", "user", &user).is_empty()
            })
        },
    )
    .await;
}

#[tokio::test]
async fn a_receiver_down_for_seconds_gets_every_event_once_it_is_back() {
    let nats = Nats::start();
    let (receiver, url) = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let c = hook_cluster(&nats.url, &hook_config(&dir, &url, ""), 2);
    receiver.down.store(true, Ordering::Relaxed);
    let conns = sessions(&c.gateways[0].1, "while-down", 10).await;
    eventually(
        "the webhook was retried while the receiver was down",
        || async { receiver.refused.load(Ordering::Relaxed) >= 3 },
    )
    .await;
    assert!(receiver.all().is_empty(), "nothing got through while down");
    // Down for a while yet: retries back off (capped), the events wait in JetStream.
    tokio::time::sleep(Duration::from_secs(5)).await;
    receiver.down.store(false, Ordering::Relaxed);
    all_arrived(&receiver, "while-down", &conns).await;
    assert_eq!(receiver.bad_signatures.load(Ordering::Relaxed), 0);
    drop(c);
}

#[tokio::test]
async fn a_dispatcher_killed_while_holding_a_batch_loses_nothing() {
    let nats = Nats::start();
    let (receiver, url) = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = hook_cluster(&nats.url, &hook_config(&dir, &url, "batch_max = 5\n"), 2);
    receiver.down.store(true, Ordering::Relaxed);
    let conns = sessions(&c.gateways[0].1, "mid-batch", 8).await;
    eventually("both dispatchers hold batches and retry", || async {
        receiver.refused.load(Ordering::Relaxed) >= 4
    })
    .await;
    // The first dispatcher dies holding whatever it read; the other, or JetStream's
    // redelivery after the acknowledgement wait, must bring every event.
    c.dispatchers[0].kill();
    receiver.down.store(false, Ordering::Relaxed);
    all_arrived(&receiver, "mid-batch", &conns).await;
}

#[tokio::test]
async fn the_jetstream_event_log_conforms() {
    let nats = Nats::start();
    let client = async_nats::connect(&nats.url).await.expect("NATS");
    let log = NatsEventLog::open(client, 1).await.expect("stream");
    herald_core::event_log::conformance::run_all(&log, "conformance").await;
    // The same event appended twice (two dispatchers reporting one disconnect) is kept once.
    let event = herald_core::lifecycle::LifecycleEvent::with_id(
        herald_core::lifecycle::Kind::Disconnect,
        "disconnect-g-1".into(),
    );
    let mut reader = log.reader("dedupe").await.expect("reader");
    log.append(&event).await.expect("append");
    log.append(&event).await.expect("append again");
    let batch = reader
        .next_batch(10, Duration::from_millis(500))
        .await
        .expect("batch");
    assert_eq!(batch.len(), 1, "{batch:?}");
}

#[test]
fn check_config_names_a_bad_webhook_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[webhook]]\nurl = \"http://127.0.0.1:9/hooks\"\nsecret = \"0123456789abcdef\"\nevents = [\"join\", \"jion\"]\n",
    )
    .expect("write");
    let (passed, said) = check_config(&path);
    assert!(!passed, "{said}");
    assert!(
        said.contains("[[webhook]] table 1") && said.contains("\"jion\""),
        "{said}"
    );
}
