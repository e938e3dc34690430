//! Black-box mutation test against a running `herald serve`: mutated client frames over
//! WebSocket and `POST /sse/{conn}`, mutated REST notify, `/push` and `/v1/tokens` bodies over
//! HTTP, from a seeded RNG. Every reply must carry a documented code, a healthy client in a
//! channel must never be closed, and a notify must still reach it afterwards.
//!
//! The seed is printed; `HERALD_MUTATION_SEED=<seed>` replays a run, and
//! `HERALD_MUTATION_ITERATIONS` changes how many mutated requests it sends (default 2,000).

mod support;

use futures::SinkExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// Error codes docs/protocol.md documents.
const CODES: [&str; 8] = [
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "too_large",
    "rate_limited",
    "unavailable",
    "internal",
];
/// HTTP statuses a REST or SSE reply may have.
const STATUSES: [u16; 11] = [200, 202, 400, 401, 403, 404, 405, 413, 415, 429, 503];
/// Close codes docs/protocol.md documents (plus 1002/1007 for frames that break the WebSocket
/// protocol or UTF-8, which issue 9 adds). 1006, a dropped TCP connection without a close
/// frame, is not among them.
const CLOSE_CODES: [u16; 10] = [1001, 1002, 1003, 1007, 1008, 1009, 4001, 4002, 4003, 4008];
/// `max_payload_bytes` of the server under test: small, so frames over it are cheap to send.
const MAX_PAYLOAD: usize = 4096;
/// The run stops after this long even if iterations remain.
const TIME_BOUND: Duration = Duration::from_secs(90);

/// Valid client frames the mutations start from.
fn client_frames() -> Vec<Value> {
    vec![
        json!({"type":"ident","id":1,"auth":{"token": token("mallory", &["private-*"])}}),
        json!({"type":"ident","id":"i","auth":{"username":"mallory","password":"pw"}}),
        json!({"type":"join","id":2,"channel":"chat"}),
        json!({"type":"join","id":3,"channel":"private-x"}),
        json!({"type":"leave","id":4,"channel":"chat"}),
        json!({"type":"ping","id":5}),
    ]
}

/// Valid REST calls the mutations start from: path and body.
fn rest_calls() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/v1/notify",
            json!({"event":"FUZZ:N","targets":{"users":["mallory"],"channels":["other"]},"payload":{"n":1}}),
        ),
        (
            "/v1/notify",
            json!({"event":"FUZZ:B","targets":{"broadcast":true},"payload":[1,"two",null]}),
        ),
        (
            "/v1/notify/user/mallory",
            json!({"event":"FUZZ:U","payload":"x"}),
        ),
        ("/v1/notify/channel/chat", json!({"event":"FUZZ:C"})),
        (
            "/push",
            json!({"event":"FUZZ:P","targets":{"users":"mallory","channels":["chat"]},"payload":{"a":true}}),
        ),
        (
            "/push",
            json!({"event":"FUZZ:P","targets":{"channels":"other"},"auth":{"password": API_KEY}}),
        ),
        (
            "/v1/tokens",
            json!({"user":"mallory","channels":["private-*"],"ttl_secs":60}),
        ),
        ("/v1/tokens", json!({"user":"mallory","once":true})),
    ]
}

/// A JSON value of another type, or an extreme one.
fn odd_value(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..10) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => serde_json::from_str("123456789012345678901234567890").unwrap_or(json!(0)),
        4 => json!(u64::MAX),
        5 => json!(1e308),
        6 => json!([]),
        7 => json!({}),
        8 => json!("x".repeat(rng.gen_range(0..300))),
        _ => json!("\u{0}\u{fffd}é\"\\"),
    }
}

/// Changes one value somewhere in `value`: a type swap, an extreme value or an unknown field.
fn mutate_value(rng: &mut StdRng, value: &mut Value) {
    match value {
        Value::Object(map) if !map.is_empty() && rng.gen_bool(0.8) => {
            if rng.gen_bool(0.2) {
                map.insert(format!("zz{}", rng.gen::<u8>()), odd_value(rng));
                return;
            }
            let key = map.keys().nth(rng.gen_range(0..map.len())).cloned();
            if let Some(child) = key.and_then(|k| map.get_mut(&k)) {
                mutate_value(rng, child);
            }
        }
        Value::Array(items) if !items.is_empty() && rng.gen_bool(0.8) => {
            let i = rng.gen_range(0..items.len());
            mutate_value(rng, &mut items[i]);
        }
        _ => *value = odd_value(rng),
    }
}

/// A mutated version of `seed` as bytes: structural (JSON-aware) or byte-level.
fn mutate(rng: &mut StdRng, seed: &Value) -> Vec<u8> {
    let mut value = seed.clone();
    for _ in 0..rng.gen_range(1..=3) {
        mutate_value(rng, &mut value);
    }
    let mut bytes = if rng.gen_bool(0.5) {
        value.to_string().into_bytes()
    } else {
        seed.to_string().into_bytes()
    };
    match rng.gen_range(0..8) {
        0 => {
            // Bit flips.
            for _ in 0..rng.gen_range(1..4) {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] ^= 1 << rng.gen_range(0..8);
            }
        }
        1 => bytes.truncate(rng.gen_range(0..bytes.len())),
        2 => {
            // Duplicate a slice in place.
            let start = rng.gen_range(0..bytes.len());
            let end = rng.gen_range(start..=bytes.len());
            let copy = bytes[start..end].to_vec();
            bytes.splice(end..end, copy);
        }
        3 => {
            // Deep nesting around the whole body.
            let depth = rng.gen_range(100..5000);
            let mut nested = vec![b'['; depth];
            nested.extend_from_slice(&bytes);
            nested.extend(std::iter::repeat_n(b']', depth));
            bytes = nested;
        }
        4 => {
            // Invalid UTF-8.
            let i = rng.gen_range(0..=bytes.len());
            bytes.splice(i..i, [0xff, 0xc3, 0x28]);
        }
        5 => {
            // Over the size limit, but not far (answered with `too_large`, socket kept).
            let i = bytes.len() / 2;
            bytes.splice(i..i, std::iter::repeat_n(b' ', MAX_PAYLOAD + 300));
        }
        _ => {}
    }
    bytes
}

/// Checks an error frame (WebSocket or SSE reply); returns its code.
fn check_frame(frame: &Value, sent: &[u8]) -> Option<String> {
    let sent = String::from_utf8_lossy(&sent[..sent.len().min(300)]).into_owned();
    match frame["type"].as_str() {
        Some("error") => {
            let code = frame["code"].as_str().unwrap_or("<none>");
            assert!(
                CODES.contains(&code),
                "undocumented code in {frame} after {sent}"
            );
            assert!(
                frame["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{frame}"
            );
            Some(code.to_string())
        }
        Some("ok" | "pong") => None,
        _ => panic!("unexpected reply {frame} to {sent}"),
    }
}

/// Checks an HTTP reply: a documented status, and a JSON error body of the documented shape
/// whose code matches the status.
fn check_http(path: &str, status: u16, body: &Value, sent: &[u8]) {
    let sent = String::from_utf8_lossy(&sent[..sent.len().min(300)]).into_owned();
    assert!(
        STATUSES.contains(&status),
        "status {status} for {path} {sent}: {body}"
    );
    if status < 300 {
        return;
    }
    let code = body["error"]["code"].as_str().unwrap_or_else(|| {
        panic!("{status} for {path} without a JSON error body: {body} (sent {sent})")
    });
    assert!(CODES.contains(&code), "undocumented code {code} ({path})");
    assert!(body["error"]["message"].as_str().is_some(), "{body}");
    let expected = herald_core::ErrorCode::parse(code).map(|c| c.http_status());
    assert_eq!(
        expected,
        Some(status),
        "{path} answered {status} with {body}"
    );
}

/// A mutation connection (the attacker's): replaced when the server closes it.
async fn attacker(url: &str) -> Ws {
    Ws::connect(url).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutated_requests_get_documented_replies_and_spare_other_clients() {
    let seed: u64 = std::env::var("HERALD_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let iterations: usize = std::env::var("HERALD_MUTATION_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    eprintln!("mutation seed {seed} (replay with HERALD_MUTATION_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);

    let max_payload = MAX_PAYLOAD.to_string();
    // The attacker and the healthy client share 127.0.0.1: without turning the per-address
    // limit on failed authentication off, the attacker's bad keys would lock out the healthy
    // backend too (that limit has its own tests in tests/authcost.rs).
    let herald = Herald::serve(
        None,
        &[
            "--max-payload-bytes",
            &max_payload,
            "--auth-fail-limit",
            "0",
        ],
    );
    let mut healthy = Ws::user(&herald.ws_url, "alice", &["chat"]).await;

    // The healthy client is read all along (so its queue never fills); it ends when the event
    // sent after the run arrives, or reports how the server closed it.
    let reader = tokio::spawn(async move {
        loop {
            match healthy.next_frame(Duration::from_secs(1)).await {
                Err(closed) => return Err(closed),
                Ok(Some(frame)) if frame["event"] == "FUZZ:AFTER" => return Ok(()),
                Ok(_) => {}
            }
        }
    });

    let frames = client_frames();
    let calls = rest_calls();
    let mut ws = attacker(&herald.ws_url).await;
    let mut sse = Sse::open(&herald.base).await;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut sent = 0;
    while sent < iterations && started.elapsed() < TIME_BOUND {
        sent += 1;
        match rng.gen_range(0..3) {
            0 => {
                let pick = rng.gen_range(0..frames.len());
                let body = mutate(&mut rng, &frames[pick]);
                let far_over = rng.gen_ratio(1, 200);
                let message = if far_over {
                    // Far over the limit: the documented answer is close 1009.
                    Message::text(" ".repeat(MAX_PAYLOAD * 4))
                } else {
                    match String::from_utf8(body.clone()) {
                        Ok(text) => Message::text(text),
                        Err(_) => Message::binary(body.clone()),
                    }
                };
                ws.stream_mut().send(message).await.expect("send");
                // Events for the attacker (identified as mallory) come in between; skip them.
                let mut reply = ws.next_frame(DEADLINE).await;
                while matches!(&reply, Ok(Some(frame)) if frame["type"] == "event") {
                    reply = ws.next_frame(DEADLINE).await;
                }
                match reply {
                    Ok(Some(frame)) => {
                        check_frame(&frame, &body);
                    }
                    Ok(None) => panic!("no reply to {}", String::from_utf8_lossy(&body)),
                    Err(closed) => {
                        // Every close carries a documented code (a frame far over the limit
                        // closes with 1009, not a dropped TCP connection).
                        assert!(
                            CLOSE_CODES.contains(&closed.code),
                            "attacker socket closed with {closed:?} after {}",
                            if far_over {
                                "a frame far over the limit".into()
                            } else {
                                String::from_utf8_lossy(&body).into_owned()
                            }
                        );
                        ws = attacker(&herald.ws_url).await;
                    }
                }
            }
            1 => {
                let pick = rng.gen_range(0..frames.len());
                let body = mutate(&mut rng, &frames[pick]);
                let (status, reply) = sse.post_raw(&herald.base, body.clone()).await;
                assert!(
                    STATUSES.contains(&status),
                    "SSE POST answered {status}: {reply}"
                );
                check_frame(&reply, &body);
                if status == 404 {
                    // An unknown connection is `not_found`, as docs/protocol.md's table says.
                    assert_eq!(
                        reply["code"], "not_found",
                        "SSE POST answered 404 with {reply}"
                    );
                    // The stream closed (five refused idents): open another.
                    sse = Sse::open(&herald.base).await;
                } else if let Some(code) = reply["code"].as_str() {
                    // An SSE reply's status is its code's (docs/protocol.md).
                    let expected = herald_core::ErrorCode::parse(code).map(|c| c.http_status());
                    assert!(
                        status == 200 || expected == Some(status),
                        "{status} {reply}"
                    );
                }
            }
            _ => {
                let (path, seed_body) = &calls[rng.gen_range(0..calls.len())];
                let body = mutate(&mut rng, seed_body);
                let response = http
                    .post(format!("{}{path}", herald.base))
                    .bearer_auth(API_KEY)
                    .body(body.clone())
                    .send()
                    .await
                    .expect("HTTP request");
                let status = response.status().as_u16();
                let text = response.text().await.expect("body");
                let reply = serde_json::from_str(&text).unwrap_or(Value::String(text));
                check_http(path, status, &reply, &body);
            }
        }
    }
    eprintln!("sent {sent} mutated requests in {:?}", started.elapsed());
    assert!(
        sent >= iterations.min(200),
        "only {sent} requests within the time bound"
    );

    // Afterwards the healthy client is still there and still gets events.
    herald
        .rest
        .notify("FUZZ:AFTER", json!({"channels": ["chat"]}), json!({}))
        .await;
    let ended = tokio::time::timeout(DEADLINE, reader)
        .await
        .expect("the healthy client got the event sent after the run in time")
        .expect("reader task");
    assert_eq!(ended, Ok(()), "the server closed the healthy client");
}
