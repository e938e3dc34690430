//! End-to-end scenarios of issue 2 against the real `herald serve` binary, each run twice:
//! on the embedded bus and on a real nats-server with JetStream.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

/// Runs `$scenario` against an embedded herald and against one on NATS.
macro_rules! both_modes {
    ($($name:ident => $scenario:ident $(($($extra:expr),*))?;)*) => {
        mod embedded {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                let herald = Herald::serve(None, &[$($($extra),*)?]);
                super::$scenario(&herald).await;
            })*
        }
        mod on_nats {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                let nats = Nats::start();
                let herald = Herald::serve(Some(&nats.url), &[$($($extra),*)?]);
                super::$scenario(&herald).await;
            })*
        }
    };
}

both_modes! {
    events_reach_exactly_their_targets => events_reach_exactly_their_targets;
    bad_frames_get_coded_errors_and_the_connection_stays => bad_frames;
    failed_idents_close_the_connection => failed_idents;
    private_channels_need_a_grant => private_channels;
    bad_rest_calls_get_coded_errors => bad_rest_calls;
    presence_queries_agree_with_reality => presence_queries;
    disconnect_closes_every_connection_of_a_user => disconnect_user;
    one_time_tokens_work_once => one_time_tokens;
    turted_push_is_accepted => turted_push;
    sse_streams_the_same_frames => sse_transport;
    health_and_metrics_answer => health_and_metrics;
    dead_peers_are_closed_and_leave_presence => dead_peers("--heartbeat-ms", "1000");
    strangers_cannot_drive_a_connection_by_its_id => connection_takeover;
    bad_websocket_frames_close_with_the_documented_code => bad_websocket_frames;
    http_errors_are_json_with_a_documented_code => http_errors_are_json;
}

async fn events_reach_exactly_their_targets(h: &Herald) {
    let mut alice_tab1 = Ws::user(&h.ws_url, "alice", &["chat"]).await;
    let mut alice_tab2 = Ws::user(&h.ws_url, "alice", &[]).await;
    let mut bob = Ws::user(&h.ws_url, "bob", &["chat", "news"]).await;
    let mut anonymous = Ws::connect(&h.ws_url).await;

    // A user event reaches every tab of that user and nobody else.
    let id = h
        .rest
        .notify("MESSAGE:NEW", json!({"users": ["alice"]}), json!({"n": 1}))
        .await;
    for tab in [&mut alice_tab1, &mut alice_tab2] {
        let event = tab.event().await;
        assert_eq!(event["id"], json!(id));
        assert_eq!(event["event"], "MESSAGE:NEW");
        assert_eq!(event["payload"], json!({"n": 1}));
        assert_eq!(event["via"], json!({"users": ["alice"], "channels": []}));
    }
    bob.assert_quiet().await;

    // Reached through a user and two channels at once: delivered once, `via` lists all.
    let (status, _) = h
        .rest
        .post(
            "/v1/notify/channel/chat",
            json!({"event": "CHAT", "payload": "hi"}),
        )
        .await;
    assert_eq!(status, 202);
    h.rest
        .notify(
            "BOTH",
            json!({"users": ["bob", "alice"], "channels": ["chat", "news"]}),
            json!(null),
        )
        .await;
    let chat = bob.event().await;
    assert_eq!(chat["event"], "CHAT");
    assert_eq!(chat["via"], json!({"users": [], "channels": ["chat"]}));
    let both = bob.event().await;
    assert_eq!(both["event"], "BOTH");
    assert_eq!(
        both["via"],
        json!({"users": ["bob"], "channels": ["chat", "news"]})
    );
    bob.assert_quiet().await;
    assert_eq!(alice_tab1.event().await["event"], "CHAT");
    let both = alice_tab1.event().await;
    assert_eq!(
        both["via"],
        json!({"users": ["alice"], "channels": ["chat"]})
    );
    alice_tab1.assert_quiet().await;
    assert_eq!(
        alice_tab2.event().await["via"],
        json!({"users": ["alice"], "channels": []})
    );
    alice_tab2.assert_quiet().await;

    // Broadcast reaches identified connections only; after leaving, a channel is silent.
    h.rest
        .notify("ALL", json!({"broadcast": true}), json!(1))
        .await;
    for ws in [&mut alice_tab1, &mut alice_tab2, &mut bob] {
        let event = ws.event().await;
        assert_eq!(event["event"], "ALL");
        assert_eq!(event["via"]["broadcast"], json!(true));
    }
    anonymous.assert_quiet().await;
    assert_eq!(bob.leave("news").await["type"], "ok");
    h.rest
        .notify("NEWS", json!({"channels": ["news"]}), json!(1))
        .await;
    h.rest
        .notify("CHAT2", json!({"channels": ["chat"]}), json!(1))
        .await;
    assert_eq!(
        bob.event().await["event"],
        "CHAT2",
        "news was left, so only chat arrives"
    );

    // Events to nobody connected are accepted (there may be no one online right now).
    h.rest
        .notify("NOBODY", json!({"users": ["carol"]}), json!(1))
        .await;
}

async fn expect_error(ws: &mut Ws, text: &str, code: &str, needle: &str) {
    ws.send_text(text).await;
    let reply = ws.recv().await;
    assert_eq!(reply["type"], "error", "{text} -> {reply}");
    assert_eq!(reply["code"], code, "{text} -> {reply}");
    let message = reply["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{text} -> {message:?} lacks {needle:?}"
    );
}

async fn bad_frames(h: &Herald) {
    let mut ws = Ws::connect(&h.ws_url).await;
    // Before ident, only ident and ping work.
    expect_error(
        &mut ws,
        r#"{"type":"join","id":1,"channel":"chat"}"#,
        "unauthorized",
        "identify first",
    )
    .await;
    expect_error(
        &mut ws,
        r#"{"type":"leave","id":1,"channel":"chat"}"#,
        "unauthorized",
        "identify first",
    )
    .await;
    expect_error(&mut ws, "not json", "bad_request", "not valid JSON").await;
    expect_error(&mut ws, "[1,2]", "bad_request", "JSON object").await;
    expect_error(
        &mut ws,
        r#"{"id":1}"#,
        "bad_request",
        "missing field `type`",
    )
    .await;
    expect_error(
        &mut ws,
        r#"{"type":"dance","id":9}"#,
        "bad_request",
        "unknown frame type",
    )
    .await;
    expect_error(
        &mut ws,
        r#"{"type":"ident","id":1}"#,
        "bad_request",
        "missing field `auth`",
    )
    .await;
    expect_error(
        &mut ws,
        r#"{"type":"ident","id":1,"auth":{"token":5}}"#,
        "bad_request",
        "must be a string",
    )
    .await;
    expect_error(
        &mut ws,
        r#"{"type":"ping","id":1,"extra":true}"#,
        "bad_request",
        "unknown field",
    )
    .await;
    expect_error(
        &mut ws,
        r#"{"type":"ident","id":1,"auth":{"token":"x.y.z"}}"#,
        "unauthorized",
        "token",
    )
    .await;
    let expired = token_with("alice", &[], -3600);
    expect_error(
        &mut ws,
        &json!({"type":"ident","auth":{"token":expired}}).to_string(),
        "unauthorized",
        "expired",
    )
    .await;
    let forged = herald_core::token::mint(
        b"not-the-secret",
        &herald_core::token::Claims {
            sub: "alice".into(),
            exp: herald_core::token::now_secs() + 60,
            iat: None,
            channels: vec![],
            publish: Vec::new(),
            jti: None,
            once: false,
        },
    )
    .expect("mint");
    expect_error(
        &mut ws,
        &json!({"type":"ident","auth":{"token":forged}}).to_string(),
        "unauthorized",
        "signature",
    )
    .await;
    expect_error(
        &mut ws,
        r#"{"type":"ident","id":1,"auth":{"username":"u","password":"p"}}"#,
        "unauthorized",
        "users file",
    )
    .await;
    // An oversized frame is refused, and the connection stays open.
    let big = json!({"type": "ping", "pad": "x".repeat(70 * 1024)}).to_string();
    expect_error(&mut ws, &big, "too_large", "exceeds the limit").await;
    // The id of a bad request is echoed.
    ws.send_text(r#"{"type":"join","id":"j1","channel":"bad name!"}"#)
        .await;
    let reply = ws.recv().await;
    assert_eq!(reply["id"], "j1");

    // Still usable: ident and join work after all of that.
    assert_eq!(ws.ident(&token("alice", &[])).await["user"], "alice");
    expect_error(
        &mut ws,
        r#"{"type":"join","id":1,"channel":"bad name!"}"#,
        "bad_request",
        "invalid channel name",
    )
    .await;
    expect_error(
        &mut ws,
        &json!({"type":"join","channel":"x".repeat(129)}).to_string(),
        "bad_request",
        "invalid channel name",
    )
    .await;
    expect_error(
        &mut ws,
        r#"{"type":"leave","id":1,"channel":"never-joined"}"#,
        "bad_request",
        "not a member",
    )
    .await;
    expect_error(
        &mut ws,
        &json!({"type":"ident","auth":{"token":token("bob", &[])}}).to_string(),
        "bad_request",
        "already identified",
    )
    .await;
    assert_eq!(ws.join("chat").await["channel"], "chat");
    assert_eq!(ws.request(json!({"type": "ping"})).await["type"], "pong");
}

async fn failed_idents(h: &Herald) {
    let mut ws = Ws::connect(&h.ws_url).await;
    for attempt in 1..=5 {
        let reply = ws.ident("wrong").await;
        assert_eq!(reply["code"], "unauthorized", "attempt {attempt}: {reply}");
    }
    let closed = ws.closed().await;
    assert_eq!(closed.code, 1008, "{closed:?}");
    assert!(closed.reason.contains("failed idents"), "{closed:?}");
}

async fn private_channels(h: &Herald) {
    let mut plain = Ws::user(&h.ws_url, "eve", &[]).await;
    let reply = plain.join("private-payroll").await;
    assert_eq!(reply["code"], "forbidden", "{reply}");
    assert!(reply["message"]
        .as_str()
        .unwrap_or_default()
        .contains("grant"));
    // A grant for another pattern does not help either.
    let mut other = Ws::connect(&h.ws_url).await;
    other.ident(&token("mallory", &["private-team-*"])).await;
    assert_eq!(other.join("private-payroll").await["code"], "forbidden");
    assert_eq!(other.join("private-team-7").await["type"], "ok");

    let mut granted = Ws::connect(&h.ws_url).await;
    assert_eq!(
        granted.ident(&token("hr", &["private-*"])).await["type"],
        "ok"
    );
    assert_eq!(granted.join("private-payroll").await["type"], "ok");
    h.rest
        .notify("PAY", json!({"channels": ["private-payroll"]}), json!(1))
        .await;
    assert_eq!(granted.event().await["event"], "PAY");
    plain.assert_quiet().await;
}

async fn bad_rest_calls(h: &Herald) {
    let rest = &h.rest;
    let check = |(status, body): (u16, Value), want_status: u16, code: &str, needle: &str| {
        assert_eq!(status, want_status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    };
    let event = json!({"event": "E", "targets": {"users": ["u"]}}).to_string();
    check(
        rest.post_raw("/v1/notify", event.clone(), None).await,
        401,
        "unauthorized",
        "Bearer",
    );
    check(
        rest.post_raw("/v1/notify", event, Some("wrong")).await,
        401,
        "unauthorized",
        "not accepted",
    );
    check(
        rest.post_raw("/v1/notify", "{oops".into(), Some(API_KEY))
            .await,
        400,
        "bad_request",
        "invalid notify body",
    );
    check(
        rest.post(
            "/v1/notify",
            json!({"event": "E", "targets": {"users": ["u"]}, "colour": 1}),
        )
        .await,
        400,
        "bad_request",
        "unknown field",
    );
    check(
        rest.post(
            "/v1/notify",
            json!({"event": "E", "targets": {"users": "u"}}),
        )
        .await,
        400,
        "bad_request",
        "invalid type",
    );
    check(
        rest.post("/v1/notify", json!({"event": "E", "targets": {}}))
            .await,
        400,
        "bad_request",
        "names nobody",
    );
    check(
        rest.post("/v1/notify", json!({"targets": {"users": ["u"]}}))
            .await,
        400,
        "bad_request",
        "missing field `event`",
    );
    check(
        rest.post(
            "/v1/notify",
            json!({"event": "no spaces", "targets": {"users": ["u"]}}),
        )
        .await,
        400,
        "bad_request",
        "invalid event name",
    );
    check(
        rest.post(
            "/v1/notify",
            json!({"event": "E", "targets": {"channels": ["a/b"]}}),
        )
        .await,
        400,
        "bad_request",
        "invalid channel name",
    );
    check(
        rest.post("/v1/notify/user/a%20b", json!({"event": "E"}))
            .await,
        400,
        "bad_request",
        "invalid user name",
    );
    let big =
        json!({"event": "E", "targets": {"users": ["u"]}, "payload": {"blob": "x".repeat(70_000)}});
    check(
        rest.post("/v1/notify", big).await,
        413,
        "too_large",
        "exceeds the limit",
    );
    check(
        rest.post(
            "/v1/notify/channel/c",
            json!({"event": "E", "payload": "x".repeat(70_000)}),
        )
        .await,
        413,
        "too_large",
        "exceeds the limit",
    );
    check(
        rest.post("/v1/tokens", json!({"user": "u", "ttl_secs": 0}))
            .await,
        400,
        "bad_request",
        "ttl_secs",
    );
    check(
        rest.post(
            "/v1/tokens",
            json!({"user": "u", "once": true, "ttl_secs": 3600}),
        )
        .await,
        400,
        "bad_request",
        "one-time",
    );
    check(
        rest.get("/v1/nothing-here").await,
        404,
        "not_found",
        "no such endpoint",
    );
    // A payload just under the limit is fine.
    let fits = json!({"event": "E", "targets": {"users": ["u"]}, "payload": "x".repeat(60_000)});
    assert_eq!(rest.post("/v1/notify", fits).await.0, 202);
}

async fn presence_queries(h: &Herald) {
    let rest = &h.rest;
    let mut a1 = Ws::user(&h.ws_url, "pat", &["room", "lobby"]).await;
    let _a2 = Ws::user(&h.ws_url, "pat", &["room"]).await;
    let mut b = Ws::user(&h.ws_url, "quinn", &["room"]).await;

    let (status, user) = rest.get("/v1/users/pat").await;
    assert_eq!(status, 200);
    assert_eq!(
        user,
        json!({"user": "pat", "connected": true, "connections": 2, "channels": ["lobby", "room"]})
    );
    assert_eq!(
        rest.get("/v1/channels/room").await.1,
        json!({"channel": "room", "connections": 3, "users": ["pat", "quinn"]})
    );
    let (_, all) = rest.get("/v1/channels").await;
    assert_eq!(
        all,
        json!({"channels": [{"channel": "lobby", "connections": 1}, {"channel": "room", "connections": 3}]})
    );

    a1.leave("lobby").await;
    assert_eq!(
        rest.get("/v1/channels/lobby").await.1,
        json!({"channel": "lobby", "connections": 0, "users": []})
    );
    // Closing a socket removes it: wait, with a deadline, for the gateway to report it.
    b.send_text("").await;
    drop(b);
    eventually("quinn's connection is gone", || async {
        rest.get("/v1/users/quinn").await.1["connected"] == json!(false)
    })
    .await;
    assert_eq!(
        rest.get("/v1/channels/room").await.1["users"],
        json!(["pat"])
    );
    assert_eq!(
        rest.get("/v1/users/nobody").await.1,
        json!({"user": "nobody", "connected": false, "connections": 0, "channels": []})
    );
}

async fn disconnect_user(h: &Herald) {
    let mut t1 = Ws::user(&h.ws_url, "rex", &["c"]).await;
    let mut t2 = Ws::user(&h.ws_url, "rex", &[]).await;
    let mut other = Ws::user(&h.ws_url, "sam", &["c"]).await;
    let (status, body) = h.rest.post("/v1/users/rex/disconnect", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["connections"], 2);
    for tab in [&mut t1, &mut t2] {
        let closed = tab.closed().await;
        assert_eq!(closed.code, 4001, "{closed:?}");
    }
    other.assert_quiet().await;
    eventually("rex is gone from presence", || async {
        h.rest.get("/v1/users/rex").await.1["connections"] == json!(0)
    })
    .await;
}

async fn one_time_tokens(h: &Herald) {
    let (status, body) = h
        .rest
        .post("/v1/tokens", json!({"user": "once-user", "once": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_string();
    let mut first = Ws::connect(&h.ws_url).await;
    assert_eq!(first.ident(&token).await["user"], "once-user");
    let mut second = Ws::connect(&h.ws_url).await;
    let reply = second.ident(&token).await;
    assert_eq!(reply["code"], "unauthorized", "{reply}");
    assert!(reply["message"]
        .as_str()
        .unwrap_or_default()
        .contains("already used"));

    // A regular minted token carries its grants.
    let (_, body) = h
        .rest
        .post(
            "/v1/tokens",
            json!({"user": "vip", "channels": ["private-vip"]}),
        )
        .await;
    let mut vip = Ws::connect(&h.ws_url).await;
    vip.ident(body["token"].as_str().expect("token")).await;
    assert_eq!(vip.join("private-vip").await["type"], "ok");
}

async fn turted_push(h: &Herald) {
    let mut ws = Ws::user(&h.ws_url, "legacy", &["old"]).await;
    let body = json!({
        "event": "TURTED:EVENT",
        "targets": {"users": ["legacy"], "channels": ["old"]},
        "payload": {"from": "php"},
        "auth": {"password": API_KEY},
    });
    let (status, answer) = h.rest.post_raw("/push", body.to_string(), None).await;
    assert_eq!((status, answer), (200, json!("OK")));
    let event = ws.event().await;
    assert_eq!(event["payload"], json!({"from": "php"}));
    assert_eq!(
        event["via"],
        json!({"users": ["legacy"], "channels": ["old"]})
    );
    // The string form of auth, and the trailing slash, work too; a wrong secret does not.
    let body = json!({"event": "E2", "targets": {"broadcast": true}, "auth": API_KEY});
    assert_eq!(
        h.rest.post_raw("/push/", body.to_string(), None).await.0,
        200
    );
    assert_eq!(ws.event().await["event"], "E2");
    let body = json!({"event": "E3", "targets": {"broadcast": true}, "auth": {"password": "nope"}});
    assert_eq!(
        h.rest.post_raw("/push", body.to_string(), None).await.0,
        401
    );
    ws.assert_quiet().await;
}

async fn sse_transport(h: &Herald) {
    let mut sse = Sse::open(&h.base).await;
    let post = |frame: Value| sse.post(&h.base, frame);
    let mut reply =
        post(json!({"type": "ident", "id": 1, "auth": {"token": token("sid", &[])}})).await;
    // The user's stream position: opaque, a string.
    assert!(reply["pos"].is_string(), "{reply}");
    reply.as_object_mut().unwrap().remove("pos");
    assert_eq!(reply, json!({"type": "ok", "id": 1, "user": "sid"}));
    let reply = post(json!({"type": "join", "id": 2, "channel": "feed"})).await;
    assert_eq!(reply["type"], "ok");
    let reply = post(json!({"type": "join", "id": 3, "channel": "a b"})).await;
    assert_eq!(reply["code"], "bad_request");
    h.rest
        .notify(
            "SSE:EVENT",
            json!({"channels": ["feed"]}),
            json!({"k": "v"}),
        )
        .await;
    let event = sse.next_frame().await;
    assert_eq!(event["event"], "SSE:EVENT");
    assert_eq!(event["via"], json!({"users": [], "channels": ["feed"]}));
    let (status, body) = h
        .rest
        .post_raw("/sse/nosuch-1", r#"{"type":"ping"}"#.into(), None)
        .await;
    assert_eq!(status, 404, "{body}");
}

/// A WebSocket that stops answering pings is closed after two heartbeats, and an SSE stream
/// whose client went away is dropped; both leave presence. A client that reads (and so answers
/// pings) stays. Runs with a 1 s heartbeat: `alive` must be read at least every 2 s.
async fn dead_peers(h: &Herald) {
    let rest = &h.rest;
    // The first REST call verifies the API key (argon2, slow on purpose): before the clock runs.
    assert_eq!(rest.get("/v1/channels/wake").await.1["connections"], 0);
    let mut silent = Ws::user(&h.ws_url, "silent", &["wake"]).await;
    let mut alive = Ws::user(&h.ws_url, "alive", &["wake"]).await;
    let sse = Sse::open(&h.base).await;
    let reply = sse
        .post(
            &h.base,
            json!({"type": "ident", "id": 1, "auth": {"token": token("gone", &[])}}),
        )
        .await;
    assert_eq!(reply["type"], "ok", "{reply}");
    drop(sse);

    // `silent` is not read from here on, so its pings stay unanswered; `alive` is read (its
    // client library answers each ping) while we wait.
    let started = std::time::Instant::now();
    loop {
        assert_eq!(alive.next_frame(Duration::from_millis(50)).await, Ok(None));
        let users = [
            rest.get("/v1/users/silent").await.1,
            rest.get("/v1/users/gone").await.1,
        ];
        if users.iter().all(|u| u["connected"] == json!(false)) {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the silent socket and the vanished SSE stream are still present: {users:?}"
        );
    }
    assert_eq!(
        silent.raw_close_without_answering().await,
        Some(Closed {
            code: 4002,
            reason: "heartbeat timeout".into()
        })
    );
    assert_eq!(rest.get("/v1/users/alive").await.1["connected"], true);
    assert_eq!(
        rest.get("/v1/channels/wake").await.1["users"],
        json!(["alive"])
    );
    alive.assert_quiet().await;
}

async fn health_and_metrics(h: &Herald) {
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/healthz", h.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let ready = client
        .get(format!("{}/readyz", h.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
    let _ws = Ws::user(&h.ws_url, "m", &[]).await;
    h.rest.notify("M", json!({"users": ["m"]}), json!(1)).await;
    let text = scrape_metrics(&h.base).await;
    assert!(
        text.contains("herald_gateway_connections{role=\"gateway\",gateway=\""),
        "the gateway's metrics carry its role and id: {text}"
    );
    assert_eq!(metric_sum(&text, "herald_gateway_connections"), Some(1.0));
    assert_eq!(
        metric_sum(&text, "herald_rest_events_accepted_total"),
        Some(1.0),
        "{text}"
    );
}

/// Asserts the one answer for a POST that does not prove it owns an SSE connection, and
/// returns its message (which must be the same whatever the reason).
fn assert_not_found((status, body): (u16, Value)) -> String {
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["code"], "not_found", "{body}");
    body["message"].as_str().expect("message").to_string()
}

/// Issue 9, item 1: a stranger who knows a victim's connection id (the worst case) cannot
/// drive it over `POST /sse/{conn}` without the secret only the victim's stream received:
/// not identify it as the stranger's user, not join or leave for it, not close it with failed
/// idents, and the refusal does not tell which ids exist. Connection ids tell nothing of
/// each other, and no error names another connection's user.
async fn connection_takeover(h: &Herald) {
    let mut ws_victim = Ws::connect(&h.ws_url).await;
    let sse_victim = Sse::open(&h.base).await;
    let other_sse = Sse::open(&h.base).await;
    let (gateway, _) = sse_victim.conn.split_once('-').expect("<gateway>-<local>");
    let unknown = format!("{gateway}-{}", "f".repeat(32));
    let attacks = [
        json!({"type": "ident", "id": 1, "auth": {"token": token("mallory", &[])}}),
        json!({"type": "join", "id": 2, "channel": "chat"}),
        json!({"type": "ping", "id": 3}),
    ];
    let mut messages = std::collections::BTreeSet::new();
    let wrong = "A".repeat(43);
    let targets: [(&str, Option<&str>); 8] = [
        (&ws_victim.conn, None),
        (&ws_victim.conn, Some(&sse_victim.secret)),
        (&sse_victim.conn, None),
        (&sse_victim.conn, Some("")),
        (&sse_victim.conn, Some(&wrong)),
        (&sse_victim.conn, Some(&other_sse.secret)),
        (&unknown, Some(&sse_victim.secret)),
        ("nosuch-1", None),
    ];
    for (conn, secret) in targets {
        for frame in &attacks {
            let reply = post_sse_frame(&h.base, conn, secret, frame.clone()).await;
            messages.insert(assert_not_found(reply));
        }
    }
    assert_eq!(
        messages.len(),
        1,
        "one answer for every refusal: {messages:?}"
    );
    // Failed idents would close a connection after five; these never reach the victims.
    for _ in 0..6 {
        for conn in [&ws_victim.conn, &sse_victim.conn] {
            let ident = json!({"type": "ident", "auth": {"token": "wrong"}});
            assert_not_found(post_sse_frame(&h.base, conn, None, ident).await);
        }
    }
    // The victims are as they were: open, not identified, not joined.
    assert_eq!(ws_victim.join("chat").await["code"], "unauthorized");
    assert_eq!(
        ws_victim.request(json!({"type": "ping"})).await["type"],
        "pong"
    );
    let reply = sse_victim
        .post(&h.base, json!({"type": "join", "id": 4, "channel": "chat"}))
        .await;
    assert_eq!(reply["code"], "unauthorized", "{reply}");
    assert_eq!(h.rest.get("/v1/users/mallory").await.1["connected"], false);
    // With its secret, the real client works.
    let reply = sse_victim
        .post(
            &h.base,
            json!({"type": "ident", "id": 5, "auth": {"token": token("vic", &[])}}),
        )
        .await;
    assert_eq!(
        (&reply["type"], &reply["id"], &reply["user"]),
        (&json!("ok"), &json!(5), &json!("vic"))
    );
    // A second ident says nothing of who the connection is.
    let reply = ws_victim.ident(&token("ws-vic", &[])).await;
    assert_eq!(reply["user"], "ws-vic");
    let reply = ws_victim.ident(&token("someone", &[])).await;
    assert_eq!(reply["code"], "bad_request", "{reply}");
    assert!(!reply.to_string().contains("ws-vic"), "{reply}");

    // Ids: the same gateway prefix, then 128 random bits; consecutive ids are not neighbours.
    let mut locals = Vec::new();
    for _ in 0..8 {
        let ws = Ws::connect(&h.ws_url).await;
        let (prefix, local) = ws.conn.split_once('-').expect("<gateway>-<local>");
        assert_eq!(prefix, gateway);
        assert!(local.len() >= 24, "at least 96 bits: {}", ws.conn);
        locals.push(u128::from_str_radix(local, 16).expect("hex"));
    }
    for pair in locals.windows(2) {
        assert!(pair[0].abs_diff(pair[1]) > 1 << 64, "{locals:x?}");
    }
}

/// Issue 9, item 9: frames the protocol cannot take end the connection with a close frame
/// carrying the code docs/protocol.md names, not a dropped socket (1006).
async fn bad_websocket_frames(h: &Herald) {
    let far_too_large = json!({"type": "ping", "pad": "x".repeat(1 << 20)}).to_string();
    let mut ws = Ws::connect(&h.ws_url).await;
    ws.try_send_text(&far_too_large).await;
    assert_eq!(ws.closed().await.code, 1009);

    let mut ws = Ws::connect(&h.ws_url).await;
    ws.send_binary(br#"{"type":"ping"}"#).await;
    let closed = ws.closed().await;
    assert_eq!(closed.code, 1003, "{closed:?}");
    assert!(closed.reason.contains("text frames"), "{closed:?}");

    // Masked text frames (mask key 0, so the payload is as written): invalid UTF-8, then one
    // with a reserved bit set.
    let mut ws = Ws::connect(&h.ws_url).await;
    ws.send_raw(&[0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe]).await;
    assert_eq!(ws.closed().await.code, 1007);
    let mut ws = Ws::connect(&h.ws_url).await;
    ws.send_raw(&[0xa1, 0x82, 0, 0, 0, 0, b'{', b'}']).await;
    assert_eq!(ws.closed().await.code, 1002);

    // Malformed JSON is an error frame; the connection stays.
    let mut ws = Ws::connect(&h.ws_url).await;
    expect_error(&mut ws, "{not json", "bad_request", "not valid JSON").await;
    assert_eq!(ws.request(json!({"type": "ping"})).await["type"], "pong");
}

/// Issue 9, item 9: no plain-text or empty error answers. REST calls (and unknown paths) answer
/// `{"error":{"code","message"}}`, the gateway's `/sse` and `/ws` an `error` frame, with the
/// fitting status, also for what axum refuses before a handler runs.
async fn http_errors_are_json(h: &Herald) {
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Vec<u8>| {
        let request = client
            .request(method, format!("{}{path}", h.base))
            .bearer_auth(API_KEY)
            .body(body);
        async move {
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let json = response
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            let text = response.text().await.expect("body");
            assert!(json, "{status} is not JSON: {text:?}");
            let body: Value = serde_json::from_str(&text).expect("a JSON body");
            (status, body)
        }
    };
    use reqwest::Method;
    let rest_cases = [
        (Method::GET, "/v1/notify", 405, "bad_request"),
        (Method::DELETE, "/v1/users/alice", 405, "bad_request"),
        (Method::GET, "/v1/users/%FF", 400, "bad_request"),
        (
            Method::POST,
            "/v1/notify/channel/%C3%28",
            400,
            "bad_request",
        ),
        (Method::GET, "/no/such/page", 404, "not_found"),
        (Method::GET, "/v1/nope", 404, "not_found"),
        (Method::POST, "/healthz", 405, "bad_request"),
    ];
    for (method, path, status, code) in rest_cases {
        let (got, body) = call(method.clone(), path, Vec::new()).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    let gateway_cases = [
        (Method::GET, "/sse/x-1", Vec::new(), 405, "bad_request"),
        (Method::POST, "/sse/%FF", Vec::new(), 400, "bad_request"),
        (Method::GET, "/ws", Vec::new(), 400, "bad_request"),
        (
            Method::POST,
            "/sse/x-1",
            vec![b' '; 200 << 10],
            413,
            "too_large",
        ),
    ];
    for (method, path, body, status, code) in gateway_cases {
        let (got, body) = call(method.clone(), path, body).await;
        assert_eq!(body["type"], "error", "{method} {path}: {body}");
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {body}"
        );
    }
}
