//! Multi-process deployments on one real nats-server: separate gateway, dispatcher and REST
//! adapter processes, as in production, including processes that die.

mod support;

use herald_core::bus::NatsBus;
use herald_core::kv::NatsKv;
use serde_json::json;
use std::time::Duration;
use support::*;

struct Cluster {
    nats: Nats,
    gateways: Vec<(Process, String)>,
    dispatchers: Vec<Process>,
    _rest_process: Process,
    rest: Rest,
}

fn role_args(role: &[&str], nats: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = role.iter().map(|s| s.to_string()).collect();
    args.extend(common_args(Some(nats)));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn start(args: Vec<String>) -> (Process, Option<String>) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    herald(&refs)
}

/// `gateways` gateways, `dispatchers` dispatchers and one REST adapter on one nats-server,
/// with fast liveness so a killed gateway is noticed within seconds.
fn cluster(gateways: usize, dispatchers: usize) -> Cluster {
    let nats = Nats::start();
    let fast = [
        "--liveness-interval-ms",
        "200",
        "--gateway-timeout-ms",
        "1500",
    ];
    let dispatchers = (0..dispatchers)
        .map(|_| start(role_args(&["dispatcher"], &nats.url, &fast)).0)
        .collect();
    let gateways = (0..gateways)
        .map(|_| {
            let (p, addr) = start(role_args(&["gateway"], &nats.url, &fast));
            (p, addr.expect("gateway address"))
        })
        .collect();
    let (rest_process, rest_addr) = start(role_args(&["adapter", "rest"], &nats.url, &[]));
    Cluster {
        nats,
        gateways,
        dispatchers,
        _rest_process: rest_process,
        rest: Rest::new(&rest_addr.expect("rest address")),
    }
}

impl Cluster {
    fn ws(&self, gateway: usize) -> String {
        ws_url(&self.gateways[gateway].1)
    }
}

#[tokio::test]
async fn events_cross_gateways_exactly_once_and_survive_a_dispatcher_kill() {
    let mut c = cluster(2, 2);
    // Members of one channel spread over both gateways; one user on both gateways.
    let mut members = Vec::new();
    for i in 0..6 {
        members.push(Ws::user(&c.ws(i % 2), &format!("member{i}"), &["team"]).await);
    }
    let mut ann_a = Ws::user(&c.ws(0), "ann", &["team"]).await;
    let mut ann_b = Ws::user(&c.ws(1), "ann", &[]).await;

    let id = c
        .rest
        .notify(
            "TEAM",
            json!({"channels": ["team"], "users": ["ann"]}),
            json!({"n": 1}),
        )
        .await;
    for ws in members.iter_mut() {
        let event = ws.event().await;
        assert_eq!(event["id"], json!(id));
        assert_eq!(event["via"], json!({"users": [], "channels": ["team"]}));
        ws.assert_quiet().await;
    }
    assert_eq!(
        ann_a.event().await["via"],
        json!({"users": ["ann"], "channels": ["team"]})
    );
    assert_eq!(
        ann_b.event().await["via"],
        json!({"users": ["ann"], "channels": []})
    );
    ann_a.assert_quiet().await;
    ann_b.assert_quiet().await;

    // Presence agrees with reality across gateways.
    assert_eq!(c.rest.get("/v1/channels/team").await.1["connections"], 7);
    assert_eq!(c.rest.get("/v1/users/ann").await.1["connections"], 2);
    ann_a.leave("team").await;
    drop(members.pop());
    eventually(
        "the leave and the closed socket show in presence",
        || async { c.rest.get("/v1/channels/team").await.1["connections"] == json!(5) },
    )
    .await;

    // SIGKILL one dispatcher: events keep flowing through the other.
    c.dispatchers[0].kill();
    for n in 0..20 {
        c.rest
            .notify("AFTER", json!({"channels": ["team"]}), json!({"n": n}))
            .await;
    }
    for ws in members.iter_mut() {
        for n in 0..20 {
            let event = ws.event().await;
            assert_eq!(event["payload"]["n"], json!(n), "in order, none lost");
        }
    }
    // Joins still work too (commands go to the surviving dispatcher).
    let mut late = Ws::user(&c.ws(1), "late", &["team"]).await;
    c.rest
        .notify("LATE", json!({"channels": ["team"]}), json!(1))
        .await;
    assert_eq!(late.event().await["event"], "LATE");
}

#[tokio::test]
async fn sse_posts_are_forwarded_to_the_gateway_holding_the_connection() {
    let c = cluster(2, 1);
    let mut sse = Sse::open(&c.gateways[0].1).await;
    // POST to the *other* gateway, as a load balancer might.
    let other = &c.gateways[1].1;
    let reply = sse
        .post(
            other,
            json!({"type": "ident", "id": 1, "auth": {"token": token("sue", &[])}}),
        )
        .await;
    assert_eq!(
        (&reply["type"], &reply["user"]),
        (&json!("ok"), &json!("sue")),
        "{reply}"
    );
    assert_eq!(
        sse.post(other, json!({"type": "join", "id": 2, "channel": "s"}))
            .await["type"],
        "ok"
    );
    c.rest
        .notify("VIA:OTHER", json!({"channels": ["s"]}), json!(1))
        .await;
    assert_eq!(sse.next_frame().await["event"], "VIA:OTHER");

    // Through the other gateway, too, a POST without the stream's secret (or for a WebSocket
    // connection) gets the same 404 as an unknown id, and changes nothing.
    let ws = Ws::connect(&c.ws(0)).await;
    let leave = json!({"type": "leave", "id": 3, "channel": "s"});
    let mut messages = std::collections::BTreeSet::new();
    for (conn, secret) in [
        (&sse.conn, Some("wrong")),
        (&sse.conn, None),
        (&ws.conn, Some(sse.secret.as_str())),
    ] {
        let (status, body) = post_sse_frame(other, conn, secret, leave.clone()).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["code"], "not_found", "{body}");
        messages.insert(body["message"].to_string());
    }
    let (status, body) = post_sse_frame(&c.gateways[0].1, &sse.conn, Some("wrong"), leave).await;
    assert_eq!(status, 404, "{body}");
    messages.insert(body["message"].to_string());
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        c.rest.get("/v1/channels/s").await.1["users"],
        json!(["sue"])
    );
}

#[tokio::test]
async fn a_killed_gateway_is_noticed_and_its_connections_removed() {
    let mut c = cluster(2, 1);
    let _a = Ws::user(&c.ws(0), "gone", &["room"]).await;
    let _b = Ws::user(&c.ws(1), "stays", &["room"]).await;
    assert_eq!(c.rest.get("/v1/channels/room").await.1["connections"], 2);
    c.gateways[0].0.kill();
    eventually("the dead gateway's connection leaves presence", || async {
        c.rest.get("/v1/channels/room").await.1
            == json!({"channel": "room", "connections": 1, "users": ["stays"]})
    })
    .await;
    assert_eq!(c.rest.get("/v1/users/gone").await.1["connected"], false);
}

#[tokio::test]
async fn a_stopped_gateway_closes_sockets_with_a_reason_and_leaves_presence_at_once() {
    let mut c = cluster(1, 1);
    let mut ws = Ws::user(&c.ws(0), "bye", &["room"]).await;
    let status = c.gateways[0]
        .0
        .terminate()
        .expect("gateway exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    assert_eq!(ws.closed().await.code, 1001);
    // No heartbeat timeout needed: the gateway announced its departure.
    assert_eq!(c.rest.get("/v1/channels/room").await.1["connections"], 0);
}

#[tokio::test]
async fn without_a_dispatcher_the_rest_adapter_answers_503() {
    let mut c = cluster(1, 1);
    c.dispatchers[0].kill();
    let (status, body) = c
        .rest
        .post(
            "/v1/notify",
            json!({"event": "E", "targets": {"users": ["u"]}}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("no dispatcher"));
    let mut ws = Ws::connect(&c.ws(0)).await;
    let reply = ws.ident(&token("u", &[])).await;
    assert_eq!(reply["code"], "unavailable", "{reply}");
    // A dispatcher coming back restores service without restarting anything else.
    let (dispatcher, _) = start(role_args(&["dispatcher"], &c.nats.url, &[]));
    c.dispatchers.push(dispatcher);
    eventually("the new dispatcher answers", || async {
        c.rest
            .post(
                "/v1/notify",
                json!({"event": "E", "targets": {"users": ["u"]}}),
            )
            .await
            .0
            == 202
    })
    .await;
}

#[tokio::test]
async fn a_close_no_dispatcher_recorded_is_reported_again_once_one_answers() {
    let mut c = cluster(1, 1);
    let mut gone = Ws::user(&c.ws(0), "gone", &["room"]).await;
    let _steady = Ws::user(&c.ws(0), "steady", &["room"]).await;
    c.dispatchers[0].kill();
    // The socket closes while no dispatcher can record it: the report waits at the gateway.
    gone.send_text("").await;
    drop(gone);
    let pending = || async {
        metric_sum(
            &scrape_metrics(&c.gateways[0].1).await,
            "herald_gateway_close_reports_pending",
        )
    };
    eventually("the gateway counts one unrecorded close", || async {
        pending().await == Some(1.0)
    })
    .await;
    // A new dispatcher slow to call the gateway dead: only the gateway's own retry can clear
    // `gone` before the test's deadline.
    let patient = ["--gateway-timeout-ms", "60000"];
    let (dispatcher, _) = start(role_args(&["dispatcher"], &c.nats.url, &patient));
    c.dispatchers.push(dispatcher);
    eventually("the retried close report reaches presence", || async {
        c.rest.get("/v1/users/gone").await.1["connected"] == json!(false)
    })
    .await;
    assert_eq!(pending().await, Some(0.0));
    assert_eq!(
        c.rest.get("/v1/channels/room").await.1["users"],
        json!(["steady"]),
        "the gateway was not reaped: its live connection is still present"
    );
}

#[tokio::test]
async fn nats_going_away_gives_503_and_service_returns_with_it() {
    let mut c = cluster(1, 1);
    let mut ws = Ws::user(&c.ws(0), "steady", &[]).await;
    c.nats.stop();
    let (status, body) = c
        .rest
        .post(
            "/v1/notify",
            json!({"event": "E", "targets": {"users": ["steady"]}}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    c.nats.restart();
    let gateway_ready = format!("{}/readyz", c.gateways[0].1);
    eventually("the gateway is back on NATS", || async {
        reqwest::get(&gateway_ready)
            .await
            .map(|r| r.status().as_u16() == 200)
            .unwrap_or(false)
    })
    .await;
    eventually("the REST adapter accepts events again", || async {
        c.rest
            .post(
                "/v1/notify",
                json!({"event": "BACK", "targets": {"users": ["steady"]}}),
            )
            .await
            .0
            == 202
    })
    .await;
    // The connection survived the outage on its gateway and gets what was accepted.
    assert_eq!(ws.event().await["event"], "BACK");
}

#[tokio::test]
async fn password_ident_uses_the_users_file() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let users = dir.path().join("users");
    let hash = herald_core::credentials::hash_secret("correct horse").expect("hash");
    std::fs::write(&users, format!("# test users\nwalt:{hash}\n")).expect("write");
    let users_arg = users.to_string_lossy().to_string();
    let herald = Herald::serve(Some(&nats.url), &["--users-file", &users_arg]);
    let mut ws = Ws::connect(&herald.ws_url).await;
    let bad = ws
        .request(json!({"type": "ident", "auth": {"username": "walt", "password": "wrong"}}))
        .await;
    assert_eq!(bad["code"], "unauthorized");
    let good = ws
        .request(
            json!({"type": "ident", "auth": {"username": "walt", "password": "correct horse"}}),
        )
        .await;
    assert_eq!(good["user"], "walt");
}

#[tokio::test]
async fn bus_and_kv_conform_on_nats() {
    let nats = Nats::start();
    let client = async_nats::connect(&nats.url).await.expect("connect");
    herald_core::bus::conformance::run_all(&NatsBus::new(client.clone()), "conf").await;
    let kv = NatsKv::open(client, "conformance", Duration::ZERO, 1)
        .await
        .expect("bucket");
    herald_core::kv::conformance::run_all(&kv, "t").await;
}

#[tokio::test]
async fn on_a_three_node_nats_cluster_presence_survives_losing_a_node() {
    let mut nodes = Nats::cluster();
    let all_nodes = nodes
        .iter()
        .map(|n| n.url.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let _dispatcher =
        start_when_the_cluster_is_ready(&["dispatcher"], &all_nodes, &["--kv-replicas", "3"]);
    let (_gateway, gateway) = start(role_args(&["gateway"], &nodes[1].url, &[]));
    let (_rest, rest) = start(role_args(&["adapter", "rest"], &nodes[2].url, &[]));
    let rest = Rest::new(&rest.expect("rest address"));
    let mut ws = Ws::user(&ws_url(&gateway.expect("gateway address")), "kim", &["ops"]).await;
    rest.notify("BEFORE", json!({"channels": ["ops"]}), json!(1))
        .await;
    assert_eq!(ws.event().await["event"], "BEFORE");

    let client = async_nats::connect(&nodes[1].url).await.expect("connect");
    let mut stream = async_nats::jetstream::new(client)
        .get_stream("KV_herald")
        .await
        .expect("the presence bucket");
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.config.num_replicas, 3, "presence is replicated");

    // A node dies; clients on it reconnect to another, and presence, replicated three times,
    // is still there. JetStream elects new stream leaders first: allow for that under load.
    nodes[0].stop();
    let failover = Duration::from_secs(45);
    eventually_within(
        failover,
        "presence is answered from the surviving nodes",
        || async {
            rest.get("/v1/channels/ops").await.1
                == json!({"channel": "ops", "connections": 1, "users": ["kim"]})
        },
    )
    .await;
    eventually_within(failover, "events flow again", || async {
        rest.post(
            "/v1/notify",
            json!({"event": "AFTER", "targets": {"channels": ["ops"]}}),
        )
        .await
        .0 == 202
    })
    .await;
    assert_eq!(ws.event().await["event"], "AFTER");
}
