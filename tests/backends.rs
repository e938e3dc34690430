//! The example backends of the PHP, Python and Java clients, run by their real interpreters:
//! Herald's signed RPC calls reach them and their answers (results, application error codes,
//! timeouts) reach the browser; their webhook endpoint verifies and records lifecycle events.

mod support;

use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

const BACKEND_SECRET: &str = "secret-the-backends-share-with-herald";

/// Starts one example backend on a free port; returns it, its base URL and its webhook log.
fn start_backend(lang: &str, log: &std::path::Path) -> (Process, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut command = match lang {
        "php" => {
            let mut c = Command::new("php");
            c.args([
                "-S",
                &address,
                &format!("{root}/clients/php/examples/backend.php"),
            ]);
            c
        }
        "python" => {
            let mut c = Command::new("python3");
            c.arg(format!("{root}/clients/python/examples/backend.py"))
                .arg(port.to_string())
                .env("PYTHONPATH", format!("{root}/clients/python"));
            c
        }
        "java" => {
            // The jar is what clients/java/build.sh builds (the unit-test step runs it first).
            let built = Command::new(format!("{root}/clients/java/build.sh"))
                .stdout(Stdio::null())
                .status()
                .expect("run clients/java/build.sh");
            assert!(built.success(), "clients/java/build.sh failed");
            let mut c = Command::new("java");
            c.args([
                "-cp",
                &format!("{root}/clients/java/build/herald-client.jar"),
                &format!("{root}/clients/java/examples/BackendExample.java"),
                &port.to_string(),
            ]);
            c
        }
        other => panic!("no example backend in {other}"),
    };
    let child = command
        .env("HERALD_BACKEND_SECRET", BACKEND_SECRET)
        .env("HERALD_WEBHOOK_LOG", log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start the {lang} backend (the test command installs it): {e}")
        });
    let process = Process {
        child,
        name: format!("{lang} backend"),
    };
    // Ready once it accepts connections (the JVM compiles the example first: allow it time).
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the {lang} backend did not listen on {address}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (process, format!("http://{address}"))
}

/// Herald with an `[[rpc]]` route for `calc.` and a `[[webhook]]`, both at `base`.
fn herald_for(dir: &tempfile::TempDir, base: &str) -> Herald {
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "[[rpc]]\nprefix = \"calc.\"\nurl = \"{base}/rpc\"\nsecret = \"{BACKEND_SECRET}\"\ntimeout_ms = 1500\n\
             [[webhook]]\nurl = \"{base}/hooks\"\nsecret = \"{BACKEND_SECRET}\"\nbatch_ms = 50\n"
        ),
    )
    .expect("write config");
    Herald::serve(None, &["--config", config.to_str().expect("utf-8 path")])
}

/// Every event the backend verified and wrote down so far.
fn logged(log: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

async fn backend_scenario(lang: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("events.jsonl");
    let (_backend, base) = start_backend(lang, &log);
    let herald = herald_for(&dir, &base);
    let mut ws = Ws::user(&herald.ws_url, "alice", &["chat"]).await;
    let rpc = |method: &str, data: Value| json!({"type": "rpc", "method": method, "data": data});

    let doubled = ws.request(rpc("calc.double", json!(10))).await;
    assert_eq!(
        (&doubled["type"], &doubled["data"]),
        (&json!("result"), &json!(20)),
        "{lang}: {doubled}"
    );
    let failed = ws.request(rpc("calc.fail", json!(1))).await;
    assert_eq!(
        (&failed["code"], &failed["message"]),
        (&json!("app_1001"), &json!("always fails")),
        "{lang}: {failed}"
    );
    let unknown = ws.request(rpc("calc.nope", json!(1))).await;
    assert_eq!(unknown["code"], "not_found", "{lang}: {unknown}");
    let slow = ws.request(rpc("calc.slow", json!(1))).await;
    assert_eq!(slow["code"], "unavailable", "{lang}: {slow}");

    // The backend verified the webhook's signature before writing each event down.
    let conn = ws.conn.clone();
    eventually_within(
        Duration::from_secs(20),
        "the backend logged alice's connect and join",
        || async {
            let events = logged(&log);
            let has = |kind: &str| {
                events
                    .iter()
                    .any(|e| e["type"] == kind && e["conn"] == conn.as_str())
            };
            has("connect") && has("join")
        },
    )
    .await;
    let online = logged(&log)
        .into_iter()
        .find(|e| e["type"] == "online")
        .expect("online");
    assert_eq!(online["user"], "alice", "{lang}: {online}");
}

#[tokio::test]
async fn the_php_example_backend_answers_rpcs_and_takes_webhooks() {
    backend_scenario("php").await;
}

#[tokio::test]
async fn the_python_example_backend_answers_rpcs_and_takes_webhooks() {
    backend_scenario("python").await;
}

#[tokio::test]
async fn the_java_example_backend_answers_rpcs_and_takes_webhooks() {
    backend_scenario("java").await;
}

#[test]
fn herald_signs_as_the_clients_verify() {
    // The vector every client's unit tests check.
    assert_eq!(
        herald_core::signature::sign(
            b"herald-shared-test-secret",
            br#"{"method":"calc.double","data":10,"user":"alice","conn":"g-1"}"#
        ),
        "sha256=ca5ab0e0a12c99ee841484ea8316b1e24b852bf0b9c806e3a197e0c8d064de39"
    );
}
