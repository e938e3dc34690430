//! Issue 9, items 5 and 8, against the real `herald` binary: a client without credentials
//! cannot hold descriptors (slow headers, never identifying, too many connections), `/healthz`
//! answers when the gateway is full, browsers from other sites are refused, and TLS is served
//! natively with the certificate reloaded on SIGHUP.

mod support;

use futures::SinkExt;
use serde_json::Value;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite;
use tungstenite::client::IntoClientRequest;

/// The host:port of a base URL such as `http://127.0.0.1:1234`.
fn host(base: &str) -> &str {
    base.split_once("://")
        .map(|(_, rest)| rest)
        .expect("base URL")
}

/// Opens a WebSocket with an optional `Origin`; on refusal returns the HTTP status and body.
async fn ws_open(url: &str, origin: Option<&str>) -> Result<Ws, (u16, Value)> {
    let mut request = url.into_client_request().expect("request");
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("origin"));
    }
    match tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
    {
        Ok((stream, _)) => Ok(Ws::from_stream(stream).await),
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            Err((response.status().as_u16(), body))
        }
        Err(e) => panic!("handshake failed: {e}"),
    }
}

/// Waits for the server to end `socket` and returns how long that took.
async fn closed_by_server(mut socket: tokio::net::TcpStream) -> Duration {
    let started = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut rest))
        .await
        .expect("the server closes a stalled connection within the header timeout")
        .ok();
    started.elapsed()
}

#[tokio::test]
async fn a_client_that_stalls_in_its_headers_is_disconnected() {
    let herald = Herald::serve(None, &["--header-read-timeout-ms", "500"]);
    let connect = || tokio::net::TcpStream::connect(host(&herald.base));
    let mut slow = connect().await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write half a header");
    let silent = connect().await.expect("connect");
    let (slow, silent) = tokio::join!(closed_by_server(slow), closed_by_server(silent));
    assert!(slow < Duration::from_secs(3), "half a header: {slow:?}");
    assert!(silent < Duration::from_secs(3), "nothing sent: {silent:?}");
    // A client that sends its headers in time is served as usual.
    assert_eq!(herald.rest.get("/healthz").await.0, 200);
}

#[tokio::test]
async fn a_websocket_that_never_idents_is_closed_with_4003() {
    let herald = Herald::serve(None, &["--ident-timeout-ms", "400"]);
    let mut anonymous = Ws::connect(&herald.ws_url).await;
    let mut identified = Ws::connect(&herald.ws_url).await;
    assert_eq!(identified.ident(&token("alice", &[])).await["type"], "ok");
    let error = anonymous.recv().await;
    assert_eq!(error["code"], "unauthorized", "{error}");
    let closed = anonymous.closed().await;
    assert_eq!(closed.code, 4003, "{closed:?}");
    assert_eq!(closed.reason, "ident timeout");
    // The identified one stays: it still answers after the anonymous one was closed.
    let pong = identified
        .request(serde_json::json!({"type": "ping"}))
        .await;
    assert_eq!(pong["type"], "pong", "{pong}");
}

#[tokio::test]
async fn an_sse_stream_that_never_idents_ends_with_the_reason() {
    let herald = Herald::serve(None, &["--ident-timeout-ms", "400"]);
    let mut sse = Sse::open(&herald.base).await;
    let error = sse.next_frame().await;
    assert_eq!(error["code"], "unauthorized", "{error}");
    assert!(
        error["message"].as_str().unwrap_or("").contains("no ident"),
        "{error}"
    );
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_share() {
    let herald = Herald::serve(None, &["--max-connections-per-address", "2"]);
    let _first = Ws::connect(&herald.ws_url).await;
    let second = Ws::connect(&herald.ws_url).await;
    let (status, body) = ws_open(&herald.ws_url, None).await.err().expect("refused");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    let response = reqwest::get(format!("{}/sse", herald.base))
        .await
        .expect("GET /sse");
    assert_eq!(response.status().as_u16(), 429);
    // A place comes back when a connection closes.
    drop(second);
    let url = herald.ws_url.clone();
    eventually("a place frees up after a close", || {
        let url = url.clone();
        async move { ws_open(&url, None).await.is_ok() }
    })
    .await;
}

#[tokio::test]
async fn a_full_gateway_refuses_with_503_and_health_still_answers() {
    let herald = Herald::serve(
        None,
        &[
            "--max-connections",
            "3",
            "--max-connections-per-address",
            "0",
        ],
    );
    let _held = [
        Ws::connect(&herald.ws_url).await,
        Ws::connect(&herald.ws_url).await,
        Ws::connect(&herald.ws_url).await,
    ];
    let (status, body) = ws_open(&herald.ws_url, None).await.err().expect("refused");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("unavailable"))
    );
    for path in ["/healthz", "/readyz"] {
        assert_eq!(herald.rest.get(path).await.0, 200, "{path}");
    }
    let metrics = reqwest::get(format!("{}/metrics", herald.base))
        .await
        .expect("GET /metrics");
    assert_eq!(metrics.status().as_u16(), 200);
}

#[tokio::test]
async fn a_production_gateway_accepts_only_its_own_origin_by_default() {
    let herald = Herald::serve(None, &["--no-demo"]);
    let same = format!("http://{}", host(&herald.base));
    let (status, body) = ws_open(&herald.ws_url, Some("https://evil.example"))
        .await
        .err()
        .expect("refused");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert!(ws_open(&herald.ws_url, Some(&same)).await.is_ok());
    assert!(ws_open(&herald.ws_url, None).await.is_ok());

    let client = reqwest::Client::new();
    let sse = client
        .get(format!("{}/sse", herald.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(sse.status().as_u16(), 403);
    let stream = Sse::open(&herald.base).await;
    let post = client
        .post(format!("{}/sse/{}", herald.base, stream.conn))
        .header("origin", "https://evil.example")
        .body(r#"{"type":"ping"}"#)
        .send()
        .await
        .expect("POST /sse");
    assert_eq!(post.status().as_u16(), 403);
}

#[tokio::test]
async fn configured_origins_are_matched_exactly() {
    let herald = Herald::serve(
        None,
        &[
            "--allowed-origins",
            "https://app.example.com,https://admin.example.com",
        ],
    );
    assert!(ws_open(&herald.ws_url, Some("https://admin.example.com"))
        .await
        .is_ok());
    for refused in [
        "http://app.example.com",
        "https://app.example.com.evil.example",
    ] {
        let (status, _) = ws_open(&herald.ws_url, Some(refused))
            .await
            .err()
            .expect(refused);
        assert_eq!(status, 403, "{refused}");
    }
}

#[tokio::test]
async fn the_demo_accepts_any_origin() {
    let herald = Herald::serve(None, &[]);
    assert!(ws_open(&herald.ws_url, Some("http://localhost:3000"))
        .await
        .is_ok());
}

/// `GET /healthz` over HTTPS; returns the status line and the certificate shown.
async fn https_health(address: &str, trusted: &[&[u8]]) -> (String, Vec<u8>) {
    let (mut stream, shown) = tls_connect(address, trusted).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    (response.lines().next().unwrap_or("").to_string(), shown)
}

#[tokio::test]
async fn tls_is_served_natively_and_the_certificate_reloads_on_sighup() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (old_pem, old_key, old_der) = certificate();
    let (new_pem, new_key, new_der) = certificate();
    std::fs::write(&cert_path, &old_pem).expect("write cert");
    std::fs::write(&key_path, &old_key).expect("write key");
    let herald = Herald::serve(
        None,
        &[
            "--tls-cert",
            cert_path.to_str().expect("path"),
            "--tls-key",
            key_path.to_str().expect("path"),
        ],
    );
    assert!(herald.base.starts_with("https://"), "{}", herald.base);
    let address = host(&herald.base).to_string();
    let trusted: &[&[u8]] = &[&old_der, &new_der];

    let (status, shown) = https_health(&address, trusted).await;
    assert_eq!((status.as_str(), &shown), ("HTTP/1.1 200 OK", &old_der));
    let (tls, _) = tls_connect(&address, trusted).await;
    let url = format!("wss://{address}/ws");
    let (mut before, _) = tokio_tungstenite::client_async(url.as_str(), tls)
        .await
        .expect("wss handshake");
    let welcome = next_text(&mut before).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");

    let hangup = || {
        // SAFETY: sends a signal to the herald process this test started.
        unsafe { libc::kill(herald.process.child.id() as i32, libc::SIGHUP) };
    };
    // A reload that fails (a key that is not PEM) keeps the certificate being served.
    std::fs::write(&key_path, "not a key").expect("write key");
    hangup();
    std::fs::write(&cert_path, &new_pem).expect("write cert");
    std::fs::write(&key_path, &new_key).expect("write key");
    hangup();
    eventually("the new certificate is served", || async {
        let (status, shown) = https_health(&address, trusted).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        shown == new_der
    })
    .await;
    // The WebSocket opened before the reload is still open and served.
    before
        .send(tungstenite::Message::text(r#"{"type":"ping","id":1}"#))
        .await
        .expect("send");
    let pong = next_text(&mut before).await;
    assert_eq!(pong["type"], "pong", "{pong}");
}
