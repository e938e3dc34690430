//! The PHP, Java and Python backend clients, run by their real interpreters against a herald on
//! NATS, with a WebSocket subscriber checking what they posted arrived.

mod support;

use serde_json::{json, Value};
use std::process::Command;
use support::*;

const USER: &str = "client-user";
const CHANNEL: &str = "client-chan";

async fn run_client(tag: &str, program: &str, args: &[&str]) {
    let nats = Nats::start();
    let herald = Herald::serve(Some(&nats.url), &[]);
    let mut ws = Ws::user(&herald.ws_url, USER, &[CHANNEL]).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let output = tokio::task::spawn_blocking({
        let (program, args, base) = (
            program.to_string(),
            args.iter()
                .map(|a| format!("{root}/{a}"))
                .collect::<Vec<_>>(),
            herald.base.clone(),
        );
        let tag = tag.to_string();
        move || {
            Command::new(&program)
                .args(&args)
                .env("HERALD_URL", base)
                .env("HERALD_API_KEY", API_KEY)
                .env("HERALD_JWT_SECRET", SECRET)
                .env("HERALD_TEST_USER", USER)
                .env("HERALD_TEST_CHANNEL", CHANNEL)
                .env("HERALD_TEST_TAG", tag)
                .output()
        }
    })
    .await
    .expect("join")
    .unwrap_or_else(|e| panic!("cannot run {program} (the test command installs it): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("E2E OK"),
        "{tag} client failed:\n{stdout}\n{stderr}"
    );

    // What the client posted arrived, each through the right target.
    let expected: [(&str, Value); 5] = [
        ("CLIENT:USER", json!({"users": [USER], "channels": []})),
        (
            "CLIENT:CHANNEL",
            json!({"users": [], "channels": [CHANNEL]}),
        ),
        (
            "CLIENT:BOTH",
            json!({"users": [USER], "channels": [CHANNEL]}),
        ),
        ("CLIENT:BATCH", json!({"users": [USER], "channels": []})),
        ("CLIENT:BATCH", json!({"users": [USER], "channels": []})),
    ];
    for (event, via) in expected {
        let frame = ws.event().await;
        assert_eq!(frame["event"], event, "{frame}");
        assert_eq!(frame["via"], via, "{frame}");
        assert_eq!(frame["payload"]["lang"], tag, "{frame}");
    }
    // The rejected calls (bad key, oversized payload) delivered nothing.
    ws.assert_quiet().await;

    // The token it minted locally is accepted by the server, with its grant.
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("TOKEN "))
        .unwrap_or_else(|| panic!("{tag} printed no TOKEN line:\n{stdout}"));
    let mut minted = Ws::connect(&herald.ws_url).await;
    assert_eq!(minted.ident(token.trim()).await["user"], USER);
    assert_eq!(minted.join("private-backend").await["type"], "ok");
}

#[tokio::test]
async fn php_client_posts_and_mints() {
    run_client("php", "php", &["clients/php/tests/e2e.php"]).await;
}

#[tokio::test]
async fn java_client_posts_and_mints() {
    run_client("java", "bash", &["clients/java/tests/e2e.sh"]).await;
}

#[tokio::test]
async fn python_client_posts_and_mints() {
    run_client("python", "python3", &["clients/python/tests/e2e.py"]).await;
}
