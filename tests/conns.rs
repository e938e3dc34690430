//! Memory and state per connection stay bounded (issue 9, item 6 and the slow consumer of
//! item 10), against the real `herald serve` binary: request ids, the outbox in bytes, channels
//! per connection, `GET /v1/channels` in pages, and a client that stops reading.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Three connections each send hundreds of pings with 60 KiB ids before ident and never read
/// the replies. Each is refused with a `bad_request` that carries no id (so no reply echoes
/// the id), and the server's memory stays flat. Before the bound, every reply echoed the id
/// and queued it: hundreds of MiB for a handful of sockets.
#[tokio::test]
async fn big_request_ids_are_refused_without_echo_and_cost_no_memory() {
    let h = Herald::serve(None, &[]);
    let huge = "x".repeat(60 * 1024);
    let ping = json!({"type": "ping", "id": huge}).to_string();
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut ws = Ws::connect(&h.ws_url).await;
        ws.send_text(&ping).await;
        let reply = ws.recv().await;
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["code"], "bad_request", "{reply}");
        assert!(reply.get("id").is_none(), "the id is never echoed: {reply}");
        let message = reply["message"].as_str().expect("message");
        assert!(message.contains("at most 64"), "{message}");
        assert!(message.len() < 200, "{message}");
        sockets.push(ws);
    }
    let before = rss_kib(h.process.child.id());
    for ws in &mut sockets {
        for _ in 0..300 {
            ws.send_text(&ping).await;
        }
    }
    // Every ping was read and answered: a ping round trip on each socket proves it.
    for ws in &mut sockets {
        let mut refused = 0;
        ws.send_text(r#"{"type":"ping","id":"last"}"#).await;
        loop {
            let frame = ws.recv().await;
            if frame["type"] == "pong" {
                assert_eq!(frame["id"], "last");
                break;
            }
            assert!(frame.get("id").is_none(), "{}", frame.to_string().len());
            refused += 1;
        }
        assert_eq!(refused, 300);
    }
    let grown = rss_kib(h.process.child.id()).saturating_sub(before);
    eprintln!("RSS grew by {grown} KiB for 900 pings with 60 KiB ids on 3 sockets");
    // 900 echoed ids would be 54 MiB; allow for allocator noise only.
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
}

/// An identified socket that never reads while large events arrive is closed as a slow consumer
/// by the byte bound of its outbox, long before its frame bound (set far away here).
#[tokio::test]
async fn outbox_byte_bound_closes_a_socket_that_never_reads() {
    let h = Herald::serve(
        None,
        &[
            "--outbox-max-bytes",
            "262144",
            "--outbox-capacity",
            "1000000",
        ],
    );
    let rest = &h.rest;
    let _stuck = Ws::user(&h.ws_url, "stuck", &[]).await;
    let payload = json!({ "blob": "y".repeat(60 * 1024) });
    let started = Instant::now();
    let mut sent = 0;
    while metric(&h.base, "herald_gateway_slow_consumers_total").await == 0.0 {
        assert!(
            sent < 2000 && started.elapsed() < 3 * DEADLINE,
            "no slow consumer after {sent} events of 60 KiB"
        );
        for _ in 0..10 {
            rest.notify("BIG", json!({"users": ["stuck"]}), payload.clone())
                .await;
        }
        sent += 10;
    }
    eprintln!("slow consumer declared after {sent} events of 60 KiB");
    eventually("the stuck socket leaves presence", || async {
        rest.get("/v1/users/stuck").await.1["connected"] == json!(false)
    })
    .await;
}

/// A socket whose queue overflows is dropped at once (no close frame waited for: it would
/// never be read) and leaves presence within 2 s, while the other clients keep receiving.
/// Before, the gateway blocked writing to it and it stayed open and present until the client
/// read again.
async fn slow_consumer_is_dropped_at_once(h: &Herald) {
    let rest = &h.rest;
    assert_eq!(rest.get("/v1/users/slow").await.1["connected"], false);
    let mut slow = Ws::user(&h.ws_url, "slow", &["news"]).await;
    let mut alive = Ws::user(&h.ws_url, "alive", &["news"]).await;
    let payload = json!({ "blob": "z".repeat(16 * 1024) });
    let started = Instant::now();
    let mut sent = 0;
    while metric(&h.base, "herald_gateway_slow_consumers_total").await == 0.0 {
        assert!(
            sent < 5000 && started.elapsed() < 3 * DEADLINE,
            "no slow consumer after {sent} events"
        );
        for _ in 0..20 {
            rest.notify("FLOOD", json!({"users": ["slow"]}), payload.clone())
                .await;
        }
        sent += 20;
        // `alive` reads; it is not part of the flood and must see nothing of it.
        assert_eq!(alive.next_frame(Duration::ZERO).await, Ok(None));
    }
    let overflowed = Instant::now();
    eventually_within(Duration::from_secs(2), "the slow socket leaves", || async {
        rest.get("/v1/users/slow").await.1["connected"] == json!(false)
            && metric(&h.base, "herald_gateway_connections").await == 1.0
    })
    .await;
    eprintln!(
        "slow consumer gone {} ms after its overflow was counted ({sent} events sent)",
        overflowed.elapsed().as_millis()
    );
    assert_eq!(
        rest.get("/v1/channels/news").await.1["users"],
        json!(["alive"])
    );
    // The TCP connection is gone: reading what the kernel still holds ends with a drop.
    let end = tokio::time::timeout(DEADLINE, slow.closed()).await;
    assert!(end.is_ok(), "the slow socket was not closed");
    h.rest
        .notify("NEWS", json!({"channels": ["news"]}), json!("still here"))
        .await;
    let event = alive.event().await;
    assert_eq!(event["payload"], "still here");
}

#[tokio::test]
async fn slow_consumer_is_dropped_at_once_embedded() {
    let h = Herald::serve(None, &["--outbox-capacity", "64"]);
    slow_consumer_is_dropped_at_once(&h).await;
}

#[tokio::test]
async fn slow_consumer_is_dropped_at_once_on_nats() {
    let nats = Nats::start();
    let h = Herald::serve(Some(&nats.url), &["--outbox-capacity", "64"]);
    slow_consumer_is_dropped_at_once(&h).await;
}

/// A connection may join at most `max_channels_per_connection` channels; the next join is
/// `forbidden`, naming the limit, and leaving one makes room again.
#[tokio::test]
async fn channels_per_connection_are_capped() {
    let h = Herald::serve(None, &["--max-channels-per-connection", "3"]);
    let mut ws = Ws::user(&h.ws_url, "joiner", &["a", "b", "c"]).await;
    assert_eq!(ws.join("a").await["type"], "ok", "joining again is fine");
    let refused = ws.join("d").await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let message = refused["message"].as_str().expect("message");
    assert!(message.contains("3 channels"), "{message}");
    let user = h.rest.get("/v1/users/joiner").await.1;
    assert_eq!(user["channels"], json!(["a", "b", "c"]));
    assert_eq!(ws.leave("b").await["type"], "ok");
    assert_eq!(ws.join("d").await["type"], "ok");
}

/// The default cap: 300 joins on one connection no longer all go through.
#[tokio::test]
async fn default_cap_stops_hundreds_of_joins() {
    let h = Herald::serve(None, &[]);
    let mut ws = Ws::user(&h.ws_url, "greedy", &[]).await;
    let mut joined = 0;
    for i in 0..300 {
        let reply = ws.join(&format!("room-{i}")).await;
        if reply["type"] != "ok" {
            assert_eq!(reply["code"], "forbidden", "{reply}");
            break;
        }
        joined += 1;
    }
    assert_eq!(joined, 100);
}

/// `GET /v1/channels` comes in pages of `limit`, in name order, with a `next` cursor while more
/// follow; bad parameters are `bad_request`.
#[tokio::test]
async fn channel_list_is_paginated() {
    let h = Herald::serve(None, &[]);
    let rest = &h.rest;
    let names = ["e", "a", "d", "b", "c"];
    let _ws = Ws::user(&h.ws_url, "lister", &names).await;
    let mut seen: Vec<Value> = Vec::new();
    let mut path = "/v1/channels?limit=2".to_string();
    for _ in 0..5 {
        let (status, page) = rest.get(&path).await;
        assert_eq!(status, 200, "{page}");
        let channels = page["channels"].as_array().expect("channels");
        assert!(channels.len() <= 2, "{page}");
        seen.extend(channels.iter().map(|c| c["channel"].clone()));
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/channels?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        json!(["a", "b", "c", "d", "e"]).as_array().unwrap().clone()
    );
    let (_, all) = rest.get("/v1/channels").await;
    assert_eq!(all["channels"].as_array().map(Vec::len), Some(5), "{all}");
    assert!(all.get("next").is_none(), "{all}");
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "cursor=%%%",
        "cursor=YSBi",
        "page=2",
    ] {
        let (status, body) = rest.get(&format!("/v1/channels?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{bad}: {body}");
    }
}

/// An SSE stream that is not read overflows the same way and leaves presence at once, although
/// the HTTP server cannot end its response until the client reads again.
#[tokio::test]
async fn slow_sse_stream_leaves_presence_at_once() {
    let h = Herald::serve(None, &["--outbox-capacity", "64"]);
    let rest = &h.rest;
    assert_eq!(rest.get("/v1/users/slow-sse").await.1["connected"], false);
    let sse = Sse::open(&h.base).await;
    let reply = sse
        .post(
            &h.base,
            json!({"type": "ident", "id": 1, "auth": {"token": token("slow-sse", &[])}}),
        )
        .await;
    assert_eq!(reply["type"], "ok", "{reply}");
    let payload = json!({ "blob": "s".repeat(16 * 1024) });
    let started = Instant::now();
    let mut sent = 0;
    while metric(&h.base, "herald_gateway_slow_consumers_total").await == 0.0 {
        assert!(
            sent < 5000 && started.elapsed() < 3 * DEADLINE,
            "no slow consumer after {sent} events"
        );
        for _ in 0..20 {
            rest.notify("FLOOD", json!({"users": ["slow-sse"]}), payload.clone())
                .await;
        }
        sent += 20;
    }
    eventually_within(Duration::from_secs(2), "the slow stream leaves", || async {
        rest.get("/v1/users/slow-sse").await.1["connected"] == json!(false)
            && metric(&h.base, "herald_gateway_connections").await == 0.0
    })
    .await;
    drop(sse);
}
