//! The demo's endpoints are a development convenience that must not become a hole: on only for
//! a plain local `herald serve` (or when asked), loud about it, loopback unless told otherwise,
//! minting small tokens, and posting only where the caller's token allows.

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
async fn demo_publish_honours_grants_and_one_time_tokens() {
    let herald = Herald::serve(None, &[]);
    let base = herald.base.as_str();
    let mut hr = Ws::connect(&herald.ws_url).await;
    hr.ident(&token("hr", &["private-*"])).await;
    assert_eq!(hr.join("private-payroll").await["type"], "ok");

    let demo = demo_token(base, "mallory").await;
    let (status, body) = post(
        base,
        "/demo/publish",
        json!({"token": demo, "channel": "private-payroll", "text": "pay me"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );

    let granted = token("boss", &["private-payroll"]);
    let (status, body) = post(
        base,
        "/demo/publish",
        json!({"token": granted, "channel": "private-payroll", "text": "bonus"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let event = hr.event().await;
    assert_eq!(event["payload"]["text"], "bonus");
    assert_eq!(event["payload"]["user"], "boss");
    hr.assert_quiet().await;

    let (status, body) = herald
        .rest
        .post("/v1/tokens", json!({"user": "once", "once": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    let once = body["token"].as_str().expect("token").to_string();
    let publish = json!({"token": once, "channel": "chat", "text": "hi"});
    assert_eq!(post(base, "/demo/publish", publish.clone()).await.0, 202);
    let (status, body) = post(base, "/demo/publish", publish).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "a one-time token works once: {body}"
    );
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
