//! What failed authentication may cost the server, against the real `herald serve` binary on
//! loopback: bounded argon2 hashing under a flood of random API keys, per-address refusal after
//! repeated failures (REST and idents), weak JWT secrets refused, and token limits (`exp`, `nbf`,
//! public keys).

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

/// Resident memory of process `pid`, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024
}

async fn notify_with(rest: &Rest, key: &str) -> reqwest::Response {
    rest.client
        .post(format!("{}/v1/notify", rest.base))
        .bearer_auth(key)
        .json(&json!({"event": "E", "targets": {"users": ["u"]}}))
        .send()
        .await
        .expect("request")
}

/// 48 random keys at once used to take herald from 220 MiB to 1.1 GiB (each unseen key ran a
/// 19 MiB argon2 on the blocking pool, with no bound). Now hashing is bounded process-wide: 200
/// at once leave memory flat, the surplus is refused with 429 + Retry-After, and the real key
/// keeps answering quickly. The per-address limit is off here, to test the hashing bound alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_random_api_keys_keeps_memory_bounded() {
    let herald = Herald::serve(
        None,
        &["--auth-fail-limit", "0", "--max-concurrent-hashes", "2"],
    );
    let pid = herald.process.child.id();
    assert_eq!(notify_with(&herald.rest, API_KEY).await.status(), 202);
    let before = rss_mib(pid);
    let flood: Vec<_> = (0..200)
        .map(|_| {
            let rest = herald.rest.clone();
            tokio::spawn(async move {
                let key = format!("{:032x}", rand::random::<u128>());
                let response = notify_with(&rest, &key).await;
                let retry_after = response.headers().contains_key("retry-after");
                (response.status().as_u16(), retry_after)
            })
        })
        .collect();
    // While the flood runs, the real (cached) key answers at once.
    let started = Instant::now();
    assert_eq!(notify_with(&herald.rest, API_KEY).await.status(), 202);
    let good_during = started.elapsed();
    let mut peak = before;
    let (mut refused, mut unauthorized) = (0, 0);
    for request in flood {
        peak = peak.max(rss_mib(pid));
        match request.await.expect("task") {
            (401, _) => unauthorized += 1,
            (429, true) => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let after = rss_mib(pid);
    eprintln!(
        "random-key flood of 200: RSS {before} MiB before, peak {peak} MiB, {after} MiB after; \
         {unauthorized} checked (401), {refused} refused (429); good key took {good_during:?}"
    );
    assert!(peak < before + 150, "RSS grew from {before} to {peak} MiB");
    assert!(refused > 0 && unauthorized > 0);
    // Generous: the machine's two cores are busy hashing; the cached key itself waits for none.
    assert!(good_during < Duration::from_secs(2), "{good_during:?}");
    // Still up, still serving the real key.
    assert_eq!(notify_with(&herald.rest, API_KEY).await.status(), 202);
}

/// Bad API keys from one address used to be checked forever, each an argon2 run.
#[tokio::test]
async fn rest_refuses_an_address_after_repeated_bad_keys() {
    let herald = Herald::serve(None, &["--auth-fail-limit", "3"]);
    for attempt in 1..=4 {
        let response = notify_with(&herald.rest, &format!("wrong-{attempt}")).await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let response = notify_with(&herald.rest, API_KEY).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // TURTED's /push (key in the body) is refused the same way.
    let (status, body) = herald
        .rest
        .post_raw(
            "/push",
            json!({"event": "E", "targets": {"users": ["u"]}, "auth": "x"}).to_string(),
            None,
        )
        .await;
    assert_eq!(status, 429, "{body}");
}

/// Wrong idents used to be limited per connection only: a client opened new connections and
/// went on guessing.
#[tokio::test]
async fn idents_are_refused_per_address_across_connections() {
    let herald = Herald::serve(None, &["--auth-fail-limit", "3"]);
    let mut first = Ws::connect(&herald.ws_url).await;
    for attempt in 1..=4 {
        let reply = first.ident("wrong").await;
        assert_eq!(reply["code"], "unauthorized", "attempt {attempt}: {reply}");
    }
    let mut second = Ws::connect(&herald.ws_url).await;
    let reply = second.ident(&token("alice", &[])).await;
    assert_eq!(reply["code"], "rate_limited", "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap_or_default()
            .contains("retry in"),
        "{reply}"
    );
}

fn herald_output(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .output()
        .expect("run herald")
}

/// `--jwt-secret x` used to start silently.
#[tokio::test]
async fn weak_jwt_secrets_are_refused_outside_a_local_serve() {
    for args in [
        &[
            "dispatcher",
            "--nats",
            "nats://127.0.0.1:1",
            "--jwt-secret",
            "x",
        ][..],
        &[
            "gateway",
            "--nats",
            "nats://127.0.0.1:1",
            "--jwt-secret",
            "change-me",
        ],
        &[
            "serve",
            "--nats",
            "nats://127.0.0.1:1",
            "--jwt-secret",
            "short",
        ],
    ] {
        let output = herald_output(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} started");
        assert!(
            stderr.contains("openssl rand -base64 32"),
            "{args:?}: {stderr}"
        );
    }
    // A plain local `herald serve` starts, with a loud warning.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--listen", "127.0.0.1:0", "--jwt-secret", "x"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start herald");
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take_while(|l| !l.contains("listening on"))
            .collect::<Vec<_>>()
    });
    let lines = tokio::time::timeout(DEADLINE, lines)
        .await
        .expect("serve started")
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("WARNING: weak --jwt-secret")),
        "{lines:?}"
    );
}

fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("this test needs the `openssl` command line tool");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?}");
    out.stdout
}

#[derive(serde::Serialize)]
struct TestClaims {
    sub: String,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
}

/// RS256/ES256/EdDSA tokens were not accepted at all; `exp` a century away and `nbf` in the
/// future were.
#[tokio::test]
async fn public_key_tokens_and_token_time_limits() {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let private = openssl(&["genpkey", "-algorithm", "ed25519"], b"");
    let public = openssl(&["pkey", "-pubout"], &private);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.pub.pem");
    std::fs::write(&path, &public).unwrap();
    let herald = Herald::serve(
        None,
        &[
            "--jwt-public-key",
            path.to_str().unwrap(),
            "--max-token-ttl-secs",
            "86400",
        ],
    );
    let key = EncodingKey::from_ed_pem(&private).unwrap();
    let now = herald_core::token::now_secs();
    let sign = |exp: u64, nbf: Option<u64>| {
        let claims = TestClaims {
            sub: "alice".into(),
            exp,
            nbf,
        };
        encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap()
    };
    let mut ws = Ws::connect(&herald.ws_url).await;
    let reply = ws.ident(&sign(now + 100 * 365 * 86400, None)).await;
    assert_eq!(reply["code"], "unauthorized", "{reply}");
    assert!(reply["message"]
        .as_str()
        .unwrap()
        .contains("max_token_ttl_secs"));
    let reply = ws.ident(&sign(now + 3600, Some(now + 600))).await;
    assert_eq!(reply["code"], "unauthorized", "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("nbf"));
    // The attack: an HS256 token "signed" with the public key the attacker can read.
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &TestClaims {
            sub: "alice".into(),
            exp: now + 60,
            nbf: None,
        },
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_eq!(ws.ident(&confused).await["code"], "unauthorized");
    let reply = ws.ident(&sign(now + 3600, None)).await;
    assert_eq!(reply["user"], "alice", "{reply}");
    // HS256 with the shared secret works alongside.
    let mut other = Ws::connect(&herald.ws_url).await;
    assert_eq!(other.ident(&token("bob", &[])).await["user"], "bob");
    // POST /v1/tokens does not mint beyond the limit either.
    let (status, body) = herald
        .rest
        .post("/v1/tokens", json!({"user": "bob", "ttl_secs": 86401}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("86400"));
}
