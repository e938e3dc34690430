//! The demo's endpoints are a development convenience that must not become a hole: on only for
//! a plain local `herald serve` (or when asked), loud about it, loopback unless told otherwise,
//! minting small tokens that publish only where their holder may join.

mod support;

use serde_json::{json, Value};
use support::*;

/// POSTs a JSON body without credentials; returns status and body.
async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    Rest::new(base).post_raw(path, body.to_string(), None).await
}

async fn demo_token(base: &str, user: &str) -> String {
    let (status, body) = post(base, "/demo/token", json!({"user": user})).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn a_local_serve_warns_and_its_tokens_grant_no_private_channel_for_long() {
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut args = vec!["serve".to_string()];
    args.extend(common_args(None));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_herald, address) = herald_with(&refs, &[], log.reopen().expect("log"));
    let base = address.expect("address");

    let token = demo_token(&base, "alice").await;
    let claims = herald_core::token::verify(SECRET.as_bytes(), &token).expect("valid token");
    assert!(
        !claims.channels.iter().any(|c| c.contains('*')),
        "no wildcard grant: {:?}",
        claims.channels
    );
    let ttl = claims.exp.saturating_sub(herald_core::token::now_secs());
    assert!(ttl <= 15 * 60, "short-lived, not {ttl} s");

    let mut ws = Ws::connect(&ws_url(&base)).await;
    assert_eq!(ws.ident(&token).await["type"], "ok");
    assert_eq!(ws.join("private-payroll").await["code"], "forbidden");
    assert_eq!(ws.join("chat").await["type"], "ok");

    let text = std::fs::read_to_string(log.path()).expect("read log");
    assert!(
        text.contains("WARN") && text.contains("can mint a token"),
        "a loud warning at startup, got: {text}"
    );
}

#[tokio::test]
async fn demo_tokens_publish_only_where_they_may_join() {
    let herald = Herald::serve(None, &[]);
    let mut hr = Ws::connect(&herald.ws_url).await;
    hr.ident(&token("hr", &["private-*"])).await;
    assert_eq!(hr.join("private-payroll").await["type"], "ok");
    assert_eq!(hr.join("chat").await["type"], "ok");

    let mut mallory = Ws::connect(&herald.ws_url).await;
    let demo = demo_token(&herald.base, "mallory").await;
    assert_eq!(mallory.ident(&demo).await["type"], "ok");
    assert_eq!(mallory.join("private-payroll").await["code"], "forbidden");
    let publish = |channel: &str| json!({"type": "publish", "channel": channel, "event": "CHAT:MESSAGE", "payload": {"text": "pay me"}});
    let refused = mallory.request(publish("private-payroll")).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert_eq!(mallory.join("chat").await["type"], "ok");
    assert_eq!(mallory.request(publish("chat")).await["type"], "ok");
    let event = hr.event().await;
    assert_eq!(
        (&event["from"]["user"], &event["via"]["channels"]),
        (&json!("mallory"), &json!(["chat"]))
    );
    hr.assert_quiet().await;
}

#[tokio::test]
async fn the_demo_is_off_on_nats_unless_asked() {
    let nats = Nats::start();
    let herald = Herald::serve(Some(&nats.url), &[]);
    let (status, _) = post(&herald.base, "/demo/token", json!({"user": "x"})).await;
    assert_eq!(status, 404, "no token endpoint with --nats by default");

    let (_dispatcher, _gateway, ws) = dispatcher_and_gateway(&nats.url, &[]);
    let base = ws.trim_end_matches("/ws").replacen("ws://", "http://", 1);
    let (status, _) = post(&base, "/demo/token", json!({"user": "x"})).await;
    assert_eq!(status, 404, "no token endpoint on a gateway by default");

    let asked = Herald::serve(Some(&nats.url), &["--demo"]);
    demo_token(&asked.base, "x").await;
}

#[tokio::test]
async fn the_demo_refuses_a_public_address_unless_told() {
    let log = herald_refuses(&["serve", "--listen", "0.0.0.0:0", "--demo"]);
    assert!(
        log.contains("refusing to serve the demo") && log.contains("--demo-public"),
        "{log}"
    );
}

#[tokio::test]
async fn a_local_serve_shows_lifecycle_events_on_the_demo_channel() {
    let herald = Herald::serve(None, &[]);
    let mut watcher = Ws::user(&herald.ws_url, "watcher", &["lifecycle"]).await;
    let newcomer = Ws::user(&herald.ws_url, "newcomer", &["chat"]).await;
    let mut seen = Vec::new();
    while !seen.contains(&"join".to_string()) {
        let event = watcher.event().await;
        assert_eq!(event["event"], "LIFECYCLE", "{event}");
        if event["payload"]["user"] == "newcomer" {
            seen.push(event["payload"]["type"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        seen,
        ["connect", "online", "join"],
        "in the order they happened"
    );
    drop(newcomer);
    loop {
        let event = watcher.event().await;
        if event["payload"]["type"] == "offline" && event["payload"]["user"] == "newcomer" {
            break;
        }
    }
}
