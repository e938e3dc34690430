//! Two-way, end to end: client publish (permission, membership, rate, `from`, no echo, the
//! publish hook) and RPC to backends over HTTP (signed) and over NATS request/reply, embedded
//! and on a real nats-server.

mod support;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use support::*;

const BACKEND_SECRET: &str = "backend-secret-of-the-tests";

async fn publish(ws: &mut Ws, channel: &str, event: &str, payload: Value) -> Value {
    ws.request(json!({"type": "publish", "channel": channel, "event": event, "payload": payload}))
        .await
}

async fn rpc(ws: &mut Ws, method: &str, data: Value) -> Value {
    ws.request(json!({"type": "rpc", "method": method, "data": data}))
        .await
}

/// Publish as a chat would use it, against `herald`: allowed, refused for each reason, rate
/// limited, received once with `from`, never echoed to the publishing connection.
async fn client_publish_scenario(herald: &Herald) {
    let url = &herald.ws_url;
    let mut alice = Ws::user(url, "alice", &["chat-1", "news"]).await;
    let mut alice_phone = Ws::user(url, "alice", &["chat-1"]).await;
    let mut bob = Ws::user(url, "bob", &["chat-1"]).await;

    let ok = publish(&mut alice, "chat-1", "MESSAGE:NEW", json!({"text": "hi"})).await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let event_id = ok["event_id"].as_str().expect("event_id").to_string();
    for receiver in [&mut bob, &mut alice_phone] {
        let event = receiver.event().await;
        assert_eq!(event["id"], event_id.as_str());
        assert_eq!(event["event"], "MESSAGE:NEW");
        assert_eq!(event["payload"], json!({"text": "hi"}));
        assert_eq!(event["from"], json!({"user": "alice"}));
        assert_eq!(event["via"]["channels"], json!(["chat-1"]));
        receiver.assert_quiet().await;
    }
    // The publishing connection does not get its own event back.
    alice.assert_quiet().await;

    let not_allowed = publish(&mut alice, "news", "M", json!(1)).await;
    assert_eq!(not_allowed["code"], "forbidden", "{not_allowed}");
    assert!(
        not_allowed["message"]
            .as_str()
            .unwrap()
            .contains("client_publish"),
        "{not_allowed}"
    );
    let not_joined = publish(&mut alice, "chat-2", "M", json!(1)).await;
    assert_eq!(not_joined["code"], "forbidden", "{not_joined}");
    assert!(
        not_joined["message"].as_str().unwrap().contains("join"),
        "{not_joined}"
    );
    let mut anonymous = Ws::connect(url).await;
    let unidentified = publish(&mut anonymous, "chat-1", "M", json!(1)).await;
    assert_eq!(unidentified["code"], "unauthorized", "{unidentified}");
    let bad = alice
        .request(json!({"type": "publish", "channel": "chat-1"}))
        .await;
    assert_eq!(bad["code"], "bad_request", "{bad}");

    // A token's `publish` claim (here minted by POST /v1/tokens) allows channels the server's
    // patterns do not.
    let (status, minted) = herald
        .rest
        .post("/v1/tokens", json!({"user": "carol", "publish": ["new*"]}))
        .await;
    assert_eq!(status, 200, "{minted}");
    let mut carol = Ws::connect(url).await;
    assert_eq!(
        carol.ident(minted["token"].as_str().unwrap()).await["type"],
        "ok"
    );
    assert_eq!(carol.join("news").await["type"], "ok");
    let claimed = publish(&mut carol, "news", "NEWS", json!("extra")).await;
    assert_eq!(claimed["type"], "ok", "{claimed}");
    let news = alice.event().await;
    assert_eq!(
        (&news["event"], &news["from"]),
        (&json!("NEWS"), &json!({"user": "carol"}))
    );

    // The rate (3 per second in these tests) holds per connection; beyond it, rate_limited.
    let mut results = Vec::new();
    for n in 0..4 {
        results.push(publish(&mut bob, "chat-1", "M", json!(n)).await);
    }
    assert!(
        results[..3].iter().all(|r| r["type"] == "ok"),
        "{results:?}"
    );
    assert_eq!(results[3]["code"], "rate_limited", "{results:?}");
    for receiver in [&mut alice, &mut alice_phone] {
        for n in 0..3 {
            assert_eq!(receiver.event().await["payload"], json!(n));
        }
        receiver.assert_quiet().await;
    }
    // Another connection has its own allowance.
    let other = publish(&mut alice_phone, "chat-1", "M", json!("phone")).await;
    assert_eq!(other["type"], "ok", "{other}");
}

const PUBLISH_ARGS: &[&str] = &["--client-publish", "chat-*", "--client-publish-rate", "3"];

#[tokio::test]
async fn client_publish_embedded() {
    let herald = Herald::serve(None, PUBLISH_ARGS);
    client_publish_scenario(&herald).await;
}

#[tokio::test]
async fn client_publish_on_nats() {
    let nats = Nats::start();
    let herald = Herald::serve(Some(&nats.url), PUBLISH_ARGS);
    client_publish_scenario(&herald).await;
}

/// What the test backend saw: each call's path and body, once its signature checked.
type Calls = Arc<std::sync::Mutex<Vec<(String, Value)>>>;

/// A backend on loopback serving `/rpc` (calc.double, calc.fail, calc.slow, calc.weird) and
/// `/publish` (the publish hook: refuses `forbidden-word`, rewrites `shout` to upper case);
/// it refuses calls whose signature does not verify with 401.
async fn backend() -> (String, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let handler = move |path: &'static str| {
        let seen = seen.clone();
        move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let signature = headers
                    .get("x-herald-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !herald_core::signature::verify(BACKEND_SECRET.as_bytes(), &body, signature) {
                    return (StatusCode::UNAUTHORIZED, "bad signature".to_string());
                }
                let call: Value = serde_json::from_slice(&body).expect("JSON call");
                seen.lock().unwrap().push((path.to_string(), call.clone()));
                let answer = match (path, call["method"].as_str()) {
                    ("/rpc", Some("calc.double")) => {
                        json!({"result": call["data"].as_i64().unwrap_or(0) * 2})
                    }
                    ("/rpc", Some("calc.whoami")) => {
                        json!({"result": {"user": call["user"], "conn": call["conn"]}})
                    }
                    ("/rpc", Some("calc.fail")) => {
                        json!({"error": {"code": "app_1001", "message": "always fails"}})
                    }
                    ("/rpc", Some("calc.denied")) => {
                        json!({"error": {"code": "forbidden", "message": "not for you"}})
                    }
                    ("/rpc", Some("calc.weird")) => {
                        json!({"error": {"code": "teapot", "message": "?"}})
                    }
                    ("/rpc", Some("calc.slow")) => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        json!({"result": "late"})
                    }
                    ("/rpc", Some("calc.broken")) => {
                        return (StatusCode::INTERNAL_SERVER_ERROR, "boom".into())
                    }
                    ("/publish", _) if call["payload"] == "forbidden-word" => {
                        json!({"allow": false, "message": "mind your language"})
                    }
                    ("/publish", _) => match call["payload"].as_str() {
                        Some(text) if text.starts_with("shout ") => {
                            json!({"allow": true, "payload": text.to_uppercase()})
                        }
                        _ => json!({"allow": true}),
                    },
                    _ => json!({"error": {"code": "not_found", "message": "no such method"}}),
                };
                (StatusCode::OK, answer.to_string())
            }
        }
    };
    let app = axum::Router::new()
        .route("/rpc", axum::routing::post(handler("/rpc")))
        .route("/publish", axum::routing::post(handler("/publish")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, calls)
}

/// A configuration with an `[[rpc]]` route for `calc.` and the publish hook, both at `base`.
fn backend_config(dir: &tempfile::TempDir, base: &str) -> String {
    let path = dir.path().join("herald.toml");
    std::fs::write(
        &path,
        format!(
            "client_publish = [\"chat-*\"]\n\
             [publish_hook]\nurl = \"{base}/publish\"\nsecret = \"{BACKEND_SECRET}\"\n\
             [[rpc]]\nprefix = \"calc.\"\nurl = \"{base}/rpc\"\nsecret = \"{BACKEND_SECRET}\"\n\
             timeout_ms = 1000\nmax_concurrency = 4\n"
        ),
    )
    .expect("write config");
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn rpc_over_http_is_signed_and_passes_answers_and_error_codes_through() {
    let (base, calls) = backend().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = backend_config(&dir, &base);
    let herald = Herald::serve(None, &["--config", &config]);
    let mut ws = Ws::user(&herald.ws_url, "alice", &[]).await;

    let doubled = rpc(&mut ws, "calc.double", json!(10)).await;
    assert_eq!(
        (&doubled["type"], &doubled["data"]),
        (&json!("result"), &json!(20)),
        "{doubled}"
    );
    let whoami = rpc(&mut ws, "calc.whoami", Value::Null).await;
    assert_eq!(whoami["data"], json!({"user": "alice", "conn": ws.conn}));
    let last = calls.lock().unwrap().last().cloned().expect("a call");
    assert_eq!(
        last,
        (
            "/rpc".to_string(),
            json!({"method": "calc.whoami", "data": null, "user": "alice", "conn": ws.conn})
        )
    );

    let app_error = rpc(&mut ws, "calc.fail", json!(1)).await;
    assert_eq!(
        (&app_error["code"], &app_error["message"]),
        (&json!("app_1001"), &json!("always fails")),
        "{app_error}"
    );
    assert_eq!(
        rpc(&mut ws, "calc.denied", json!(1)).await["code"],
        "forbidden"
    );
    let weird = rpc(&mut ws, "calc.weird", json!(1)).await;
    assert_eq!(weird["code"], "internal", "{weird}");
    assert!(
        weird["message"]
            .as_str()
            .unwrap()
            .contains("unknown error code"),
        "{weird}"
    );
    let broken = rpc(&mut ws, "calc.broken", json!(1)).await;
    assert_eq!(broken["code"], "unavailable", "{broken}");
    let slow = rpc(&mut ws, "calc.slow", json!(1)).await;
    assert_eq!(slow["code"], "unavailable", "{slow}");
    assert!(
        slow["message"].as_str().unwrap().contains("1000 ms"),
        "{slow}"
    );
    // The connection stays usable after every one of those.
    assert_eq!(rpc(&mut ws, "calc.double", json!(4)).await["data"], 8);

    // A slow call does not hold the connection: a ping sent after it is answered first.
    ws.send_text(&json!({"type": "rpc", "id": "slow", "method": "calc.slow"}).to_string())
        .await;
    ws.send_text(&json!({"type": "ping", "id": "p"}).to_string())
        .await;
    assert_eq!(ws.recv().await, json!({"type": "pong", "id": "p"}));
    let late = ws.recv().await;
    assert_eq!(
        (&late["id"], &late["code"]),
        (&json!("slow"), &json!("unavailable")),
        "{late}"
    );
    // At most 8 calls of one connection wait at once; a 9th is refused at once.
    for n in 0..9 {
        let call = json!({"type": "rpc", "id": format!("c{n}"), "method": "calc.slow"});
        ws.send_text(&call.to_string()).await;
    }
    let refused = ws.recv().await;
    assert_eq!(
        (&refused["id"], &refused["code"]),
        (&json!("c8"), &json!("rate_limited")),
        "{refused}"
    );
    let mut answered = Vec::new();
    for _ in 0..8 {
        let answer = ws.recv().await;
        assert_eq!(answer["code"], "unavailable", "{answer}");
        answered.push(answer["id"].as_str().unwrap().to_string());
    }
    answered.sort();
    assert_eq!(
        answered,
        (0..8).map(|n| format!("c{n}")).collect::<Vec<_>>()
    );

    let unknown = rpc(&mut ws, "nobody.home", json!(1)).await;
    assert_eq!(unknown["code"], "not_found", "{unknown}");
    // Each call is timed by route and outcome.
    let metrics = scrape_metrics(&herald.base).await;
    let calls = |route: &str, outcome: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("herald_gateway_rpc_duration_seconds_count{"))
            .filter(|l| {
                l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(calls("calc.", "result"), 3.0, "{metrics}");
    assert_eq!(calls("calc.", "app"), 1.0);
    assert_eq!(calls("calc.", "unavailable"), 11.0);
    assert_eq!(calls("nats", "not_found"), 1.0);
    let bad = ws.request(json!({"type": "rpc", "method": "a b"})).await;
    assert_eq!(bad["code"], "bad_request", "{bad}");
    let mut anonymous = Ws::connect(&herald.ws_url).await;
    let unidentified = rpc(&mut anonymous, "calc.double", json!(1)).await;
    assert_eq!(unidentified["code"], "unauthorized", "{unidentified}");
}

#[tokio::test]
async fn the_publish_hook_refuses_and_rewrites_publishes() {
    let (base, calls) = backend().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = backend_config(&dir, &base);
    let herald = Herald::serve(None, &["--config", &config]);
    let mut alice = Ws::user(&herald.ws_url, "alice", &["chat-1"]).await;
    let mut bob = Ws::user(&herald.ws_url, "bob", &["chat-1"]).await;

    let refused = publish(&mut alice, "chat-1", "M", json!("forbidden-word")).await;
    assert_eq!(
        (&refused["code"], &refused["message"]),
        (&json!("forbidden"), &json!("mind your language"))
    );
    let rewritten = publish(&mut alice, "chat-1", "M", json!("shout hello")).await;
    assert_eq!(rewritten["type"], "ok", "{rewritten}");
    let plain = publish(&mut alice, "chat-1", "M", json!("as is")).await;
    assert_eq!(plain["type"], "ok", "{plain}");
    assert_eq!(bob.event().await["payload"], "SHOUT HELLO");
    assert_eq!(bob.event().await["payload"], "as is");
    bob.assert_quiet().await;
    let hook_calls: Vec<Value> = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _)| path == "/publish")
        .map(|(_, call)| call.clone())
        .collect();
    assert_eq!(hook_calls.len(), 3);
    assert_eq!(
        hook_calls[0],
        json!({"channel": "chat-1", "event": "M", "payload": "forbidden-word", "user": "alice", "conn": alice.conn})
    );
}

#[tokio::test]
async fn rpc_over_nats_request_reply() {
    let nats = Nats::start();
    let herald = Herald::serve(Some(&nats.url), &[]);
    let backend = async_nats::connect(&nats.url)
        .await
        .expect("backend on NATS");
    let mut calls = backend
        .subscribe("herald.rpc.calc.>")
        .await
        .expect("subscribe");
    backend.flush().await.expect("flush");
    let answering = backend.clone();
    tokio::spawn(async move {
        while let Some(call) = calls.next().await {
            let body: Value = serde_json::from_slice(&call.payload).expect("JSON call");
            let answer = match body["method"].as_str() {
                Some("calc.double") => json!({"result": body["data"].as_i64().unwrap_or(0) * 2}),
                _ => {
                    json!({"error": {"code": "app_1404", "message": format!("{} by {}", body["method"], body["user"])}})
                }
            };
            if let Some(reply) = call.reply {
                let _ = answering.publish(reply, answer.to_string().into()).await;
            }
        }
    });
    let mut ws = Ws::user(&herald.ws_url, "alice", &[]).await;
    let doubled = rpc(&mut ws, "calc.double", json!(21)).await;
    assert_eq!(doubled["data"], 42, "{doubled}");
    let coded = rpc(&mut ws, "calc.other", json!(null)).await;
    assert_eq!(
        (&coded["code"], &coded["message"]),
        (&json!("app_1404"), &json!("\"calc.other\" by \"alice\"")),
        "{coded}"
    );
    let unserved = rpc(&mut ws, "mail.send", json!(null)).await;
    assert_eq!(unserved["code"], "not_found", "{unserved}");
}

#[test]
fn check_config_names_a_bad_rpc_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[rpc]]\nprefix = \"calc.\"\nurl = \"ftp://x\"\nsecret = \"0123456789abcdef\"\n",
    )
    .expect("write");
    let (passed, said) = check_config(&path);
    assert!(!passed, "{said}");
    assert!(
        said.contains("[[rpc]] table 1") && said.contains("http://"),
        "{said}"
    );
    std::fs::write(
        &path,
        "[publish_hook]\nurl = \"http://127.0.0.1:1/\"\nsecret = \"short\"\n",
    )
    .expect("write");
    let (passed, said) = check_config(&path);
    assert!(!passed, "{said}");
    assert!(
        said.contains("[publish_hook]") && said.contains("16 bytes"),
        "{said}"
    );
}

#[tokio::test]
async fn a_dispatcher_refuses_a_publish_for_a_connection_that_did_not_join() {
    use herald_core::messages::Publisher;
    use herald_core::protocol::notify::Notify;
    let nats = Nats::start();
    let herald = Herald::serve(Some(&nats.url), PUBLISH_ARGS);
    let mut alice = Ws::user(&herald.ws_url, "alice", &["chat-1"]).await;
    let mut bob = Ws::user(&herald.ws_url, "bob", &["chat-1", "chat-2"]).await;
    // What a compromised gateway could send on herald.publish, straight onto NATS.
    let client = async_nats::connect(&nats.url).await.expect("NATS");
    let bus = Arc::new(herald_core::bus::NatsBus::new(client));
    let requests = herald_core::requests::Requester::new(bus, DEADLINE);
    let forge = |channel: &str, user: &str| {
        let notify = Notify::decode(
            json!({"event": "FORGED", "targets": {"channels": [channel]}, "payload": 1})
                .to_string()
                .as_bytes(),
        )
        .expect("notify");
        let from = Publisher {
            user: user.into(),
            conn: alice.conn.clone(),
        };
        (notify, from)
    };
    for (channel, user) in [("chat-2", "alice"), ("chat-1", "mallory")] {
        let (notify, from) = forge(channel, user);
        let refused = requests
            .notify_request(&forged_request(&notify, from))
            .await
            .expect_err("a forged publish");
        assert_eq!(refused.code, herald_core::ErrorCode::Forbidden, "{refused}");
    }
    // The real member's publish, sent the same way, goes through: the check is KV, not luck.
    let (notify, from) = forge("chat-1", "alice");
    requests
        .notify_request(&forged_request(&notify, from))
        .await
        .expect("a member's publish");
    assert_eq!(bob.event().await["event"], "FORGED");
    bob.assert_quiet().await;
    alice.assert_quiet().await;
}

fn forged_request(
    notify: &herald_core::protocol::notify::Notify,
    from: herald_core::messages::Publisher,
) -> herald_core::messages::NotifyRequest<&herald_core::protocol::notify::Notify> {
    herald_core::messages::NotifyRequest {
        id: herald_core::messages::EventIds::fresh(),
        notify,
        from: Some(from),
        except: None,
    }
}
