//! Processes that die under a running deployment on a real nats-server, with the deadlines a
//! user would notice: a backend's notify, an event delivered once, presence emptied.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

fn role(role: &[&str], nats: &str) -> (Process, Option<String>) {
    let mut args: Vec<String> = role.iter().map(|s| s.to_string()).collect();
    args.extend(common_args(Some(nats)));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    herald(&refs)
}

/// Freezes a process (SIGSTOP): it keeps its NATS subscriptions but answers nothing.
fn freeze(process: &Process) {
    let status = std::process::Command::new("kill")
        .args(["-STOP", &process.child.id().to_string()])
        .status()
        .expect("kill -STOP");
    assert!(status.success());
}

/// A dispatcher that dies holding a backend's notify costs that backend one short attempt,
/// not the 5 s request timeout, and the event reaches its target once.
#[tokio::test]
async fn a_notify_held_by_a_killed_dispatcher_is_answered_within_1_5_s_and_delivered_once() {
    let nats = Nats::start();
    let (mut doomed, _) = role(&["dispatcher"], &nats.url);
    let (_survivor, _) = role(&["dispatcher"], &nats.url);
    let (_gateway, gateway) = role(&["gateway"], &nats.url);
    let (_rest, rest) = role(&["adapter", "rest"], &nats.url);
    let rest = Rest::new(&rest.expect("rest address"));
    let mut ws = Ws::user(
        &ws_url(&gateway.expect("gateway address")),
        "eve",
        &["feed"],
    )
    .await;

    // The first request verifies the API key (argon2, slow in a debug build): not a stall.
    let warm = rest
        .notify("FEED", json!({"channels": ["feed"]}), json!("warm"))
        .await;
    assert_eq!(ws.event().await["id"], json!(warm));

    // Frozen, the doomed dispatcher swallows whatever the queue group hands it. Post one notify
    // at a time (a sequential backend) until one is stuck there, then kill it mid-request.
    freeze(&doomed);
    let mut delivered = Vec::new();
    let mut stuck = None;
    for n in 0..40 {
        let rest = rest.clone();
        let started = Instant::now();
        let mut post = tokio::spawn(async move {
            let body = json!({"event": "FEED", "targets": {"channels": ["feed"]}, "payload": n});
            rest.post("/v1/notify", body).await
        });
        match tokio::time::timeout(Duration::from_millis(300), &mut post).await {
            Ok(answer) => {
                let (status, body) = answer.expect("post task");
                assert_eq!(status, 202, "{body}");
                delivered.push(body["id"].clone());
            }
            Err(_) => {
                stuck = Some((post, started));
                break;
            }
        }
    }
    let (post, started) = stuck.expect("the queue group never chose the frozen dispatcher");
    doomed.kill();
    let (status, body) = post.await.expect("post task");
    let waited = started.elapsed();
    assert_eq!(status, 202, "{body}");
    assert!(
        waited < Duration::from_millis(1500),
        "the backend waited {waited:?} for a dispatcher that died"
    );
    delivered.push(body["id"].clone());

    // The next notify is answered at once, and every accepted event arrived exactly once.
    let started = Instant::now();
    let last = rest
        .notify("FEED", json!({"channels": ["feed"]}), json!("last"))
        .await;
    assert!(started.elapsed() < Duration::from_millis(500));
    delivered.push(json!(last));
    for id in &delivered {
        assert_eq!(&ws.event().await["id"], id, "in order, none lost");
    }
    ws.assert_quiet().await;
}

/// When a dispatcher published an event and its answer was lost, the adapter's retry publishes
/// it again under the same id: gateways drop that copy.
#[tokio::test]
async fn a_copy_of_an_event_published_again_under_its_id_is_delivered_once() {
    let nats = Nats::start();
    let (_dispatcher, _gateway, gateway) = dispatcher_and_gateway(&nats.url, &[]);
    let mut ws = Ws::user(&gateway, "kai", &["news"]).await;
    let client = async_nats::connect(&nats.url).await.expect("connect");
    let delivery = json!({
        "id": "0123456789abcdef-7",
        "event": "NEWS",
        "targets": {"channels": ["news"]},
        "payload": 1,
    });
    for _ in 0..2 {
        client
            .publish("herald.to.c.news", delivery.to_string().into())
            .await
            .expect("publish");
    }
    client.flush().await.expect("flush");
    assert_eq!(ws.event().await["id"], "0123456789abcdef-7");
    ws.assert_quiet().await;
}

/// With the default liveness settings, a SIGKILLed gateway's connections leave presence within
/// gateway_timeout (3 s) plus one beat and one look (1.5 s) plus margin.
#[tokio::test]
async fn a_killed_gateway_leaves_presence_within_the_default_timeout() {
    let nats = Nats::start();
    let (_dispatcher, _) = role(&["dispatcher"], &nats.url);
    let (mut doomed, doomed_addr) = role(&["gateway"], &nats.url);
    let (_gateway, gateway) = role(&["gateway"], &nats.url);
    let (_rest, rest) = role(&["adapter", "rest"], &nats.url);
    let rest = Rest::new(&rest.expect("rest address"));
    let doomed_ws = ws_url(&doomed_addr.expect("gateway address"));
    let mut lost = Vec::new();
    for i in 0..20 {
        lost.push(Ws::user(&doomed_ws, &format!("lost{i}"), &["hall"]).await);
    }
    let _stays = Ws::user(
        &ws_url(&gateway.expect("gateway address")),
        "stays",
        &["hall"],
    )
    .await;
    assert_eq!(rest.get("/v1/channels/hall").await.1["connections"], 21);

    doomed.kill();
    let killed = Instant::now();
    eventually_within(
        Duration::from_secs(6),
        "the dead gateway's connections leave presence",
        || async { rest.get("/v1/channels/hall").await.1["connections"] == json!(1) },
    )
    .await;
    let gone = killed.elapsed();
    assert!(gone <= Duration::from_millis(5500), "took {gone:?}");
    assert_eq!(rest.get("/v1/users/lost0").await.1["connected"], false);
}
