//! Faults on NATS, multi-process, with a steady stream of events: a gateway SIGKILLed (its
//! clients reconnect to the other and recover), and a node of a three-node NATS cluster
//! SIGKILLed (the gateway on it reconnects to another and catches up from history). Every
//! event a backend got a 202 for reaches every client once, in order.

mod support;

use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio::sync::Notify;

/// How long a scenario may take before it fails.
const SCENARIO: Duration = Duration::from_secs(90);

fn role(args: &[&str], nats: &str, extra: &[&str]) -> (Process, Option<String>) {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(common_args(Some(nats)));
    all.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    herald(&refs)
}

/// A client as the JS client behaves: on a lost connection it connects to the next gateway,
/// idents and joins `channel` with the last position it saw. Returns the ids of the events it
/// got, in order, once it got the `END` event.
async fn steady_client(
    gateways: Vec<String>,
    user: String,
    channel: &'static str,
    ready: Arc<Notify>,
) -> Vec<String> {
    let started = Instant::now();
    let mut since: Option<String> = None;
    let mut got = Vec::new();
    let mut ready = Some(ready);
    for attempt in 0.. {
        assert!(started.elapsed() < SCENARIO, "{user} never got END");
        let url = &gateways[attempt % gateways.len()];
        let Ok(Ok((stream, _))) =
            tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url)).await
        else {
            continue;
        };
        let mut ws = Ws::from_stream(stream).await;
        let ident = ws.ident(&token(&user, &[])).await;
        assert_eq!(ident["type"], "ok", "{ident}");
        let mut join = json!({"type": "join", "channel": channel});
        if let Some(since) = &since {
            join["since"] = json!(since);
        }
        let joined = ws.request(join).await;
        assert_eq!(joined["type"], "ok", "{joined}");
        if since.is_some() {
            assert_eq!(joined["recovered"], true, "{user}: {joined}");
        } else {
            since = joined["pos"].as_str().map(str::to_string);
        }
        if let Some(ready) = ready.take() {
            ready.notify_one();
        }
        loop {
            match ws.next_frame(SCENARIO).await {
                Ok(Some(frame)) if frame["type"] == "event" => {
                    since = frame["pos"]["channels"][channel]
                        .as_str()
                        .map(str::to_string)
                        .or(since);
                    if frame["event"] == "END" {
                        return got;
                    }
                    got.push(frame["id"].as_str().expect("id").to_string());
                }
                Ok(Some(_)) => {}
                Ok(None) => panic!("{user}: nothing for the whole scenario"),
                Err(_) => break,
            }
        }
    }
    unreachable!()
}

/// Posts `count` events to `channel`, one after another, retrying each refused one (under a
/// new id: a refused attempt may or may not arrive) until accepted; calls `midway` once half
/// are accepted. Returns the accepted ids in order.
async fn post_steadily(
    rest: &Rest,
    channel: &str,
    count: usize,
    midway: impl FnOnce(),
) -> Vec<String> {
    let started = Instant::now();
    let mut midway = Some(midway);
    let mut accepted = Vec::new();
    for n in 0..count {
        if n == count / 2 {
            if let Some(midway) = midway.take() {
                midway();
            }
        }
        loop {
            assert!(
                started.elapsed() < SCENARIO,
                "events were refused for too long"
            );
            let (status, body) = rest
                .post(
                    "/v1/notify",
                    json!({"event": "N", "targets": {"channels": [channel]}, "payload": n}),
                )
                .await;
            if status == 202 {
                accepted.push(body["id"].as_str().expect("id").to_string());
                break;
            }
            assert_eq!(
                status, 503,
                "only unavailability may refuse an event: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    loop {
        let (status, _) = rest
            .post(
                "/v1/notify",
                json!({"event": "END", "targets": {"channels": [channel]}}),
            )
            .await;
        if status == 202 {
            break;
        }
        assert!(started.elapsed() < SCENARIO);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    accepted
}

/// Each client got every accepted event once, in order; anything else it got is at most one
/// copy of a refused attempt.
fn assert_complete(clients: &[Vec<String>], accepted: &[String]) {
    let wanted: HashSet<&String> = accepted.iter().collect();
    for (n, got) in clients.iter().enumerate() {
        let distinct: HashSet<&String> = got.iter().collect();
        assert_eq!(distinct.len(), got.len(), "client {n} got an event twice");
        let kept: Vec<&String> = got.iter().filter(|id| wanted.contains(id)).collect();
        let lost = accepted.len() - kept.len();
        assert_eq!(
            lost,
            0,
            "client {n} lost {lost} of {} accepted events",
            accepted.len()
        );
        assert!(
            kept.iter().zip(accepted).all(|(a, b)| *a == b),
            "client {n}: out of order"
        );
    }
}

/// What each client received, once all got `END`.
async fn received(clients: Vec<tokio::task::JoinHandle<Vec<String>>>) -> Vec<Vec<String>> {
    futures::future::join_all(clients)
        .await
        .into_iter()
        .map(|r| r.expect("client"))
        .collect()
}

/// Starts `clients` steady clients split over `gateways`; returns once each has joined.
async fn start_clients(
    gateways: &[String],
    clients: usize,
    channel: &'static str,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    let mut handles = Vec::new();
    for n in 0..clients {
        let mut order = gateways.to_vec();
        order.rotate_left(n % gateways.len());
        let ready = Arc::new(Notify::new());
        handles.push(tokio::spawn(steady_client(
            order,
            format!("c{n}"),
            channel,
            ready.clone(),
        )));
        ready.notified().await;
    }
    handles
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_gateway_recover_on_the_other_without_losing_an_event() {
    let nats = Nats::start();
    let (_dispatcher, _) = role(&["dispatcher"], &nats.url, &[]);
    let (doomed, first) = role(&["gateway"], &nats.url, &[]);
    let (_survivor, second) = role(&["gateway"], &nats.url, &[]);
    let (_rest, rest) = role(&["adapter", "rest"], &nats.url, &[]);
    let rest = Rest::new(&rest.expect("rest address"));
    let gateways = [first, second].map(|g| ws_url(&g.expect("gateway address")));
    let clients = start_clients(&gateways, 200, "stream").await;

    let mut doomed = Some(doomed);
    let accepted = post_steadily(&rest, "stream", 300, || {
        doomed.take().expect("once").kill();
    })
    .await;
    assert_complete(&received(clients).await, &accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_whose_nats_node_dies_catches_up_from_history() {
    let mut nodes = Nats::cluster();
    let others = format!("{},{}", nodes[1].url, nodes[2].url);
    let _dispatcher =
        start_when_the_cluster_is_ready(&["dispatcher"], &others, &["--kv-replicas", "3"]);
    // The gateway knows only the node that dies; NATS tells it of the others.
    let (_gateway, gateway) = role(&["gateway"], &nodes[0].url, &[]);
    let (_rest, rest) = role(&["adapter", "rest"], &nodes[2].url, &[]);
    let rest = Rest::new(&rest.expect("rest address"));
    let gateway = ws_url(&gateway.expect("gateway address"));
    let clients = start_clients(std::slice::from_ref(&gateway), 100, "steady").await;

    let accepted = post_steadily(&rest, "steady", 300, || nodes[0].stop()).await;
    assert_complete(&received(clients).await, &accepted);
}

/// A TCP relay to NATS that a test can cut: while cut it drops every connection through it
/// and refuses new ones, as a network partition between one process and NATS would.
struct Relay {
    port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Relay {
    async fn start(upstream: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let generation = Arc::new(tokio::sync::watch::channel(0u64).0);
        let (c, g) = (cut.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if c.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let mut cuts = g.subscribe();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Relay {
            port,
            cut,
            generation,
        }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|n| *n += 1);
    }

    fn mend(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Whether the gateway at `base` says it is ready (on NATS) as `wanted`.
async fn ready(base: &str, wanted: bool) -> bool {
    let answer = reqwest::get(format!("{base}/readyz")).await;
    answer.is_ok_and(|r| (r.status() == 200) == wanted)
}

/// A gateway cut off from NATS misses what is published meanwhile on its subjects; once back,
/// it reads that from history, so its clients (still connected to it) lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_cut_off_from_nats_catches_up_from_history() {
    let nats = Nats::start();
    let relay = Relay::start(nats.port).await;
    let (_dispatcher, _) = role(&["dispatcher"], &nats.url, &[]);
    let (_gateway, gateway) = role(
        &["gateway"],
        &format!("nats://127.0.0.1:{}", relay.port),
        &[],
    );
    let (_rest, rest) = role(&["adapter", "rest"], &nats.url, &[]);
    let rest = Rest::new(&rest.expect("rest address"));
    let gateway = gateway.expect("gateway address");
    let clients = start_clients(&[ws_url(&gateway)], 20, "partitioned").await;

    let mut missed = Vec::new();
    for n in 0..10 {
        missed.push(
            rest.notify("N", json!({"channels": ["partitioned"]}), json!(n))
                .await,
        );
    }
    relay.cut();
    eventually("the gateway notices it is cut off", || {
        ready(&gateway, false)
    })
    .await;
    for n in 10..30 {
        missed.push(
            rest.notify("N", json!({"channels": ["partitioned"]}), json!(n))
                .await,
        );
    }
    relay.mend();
    eventually("the gateway is back on NATS", || ready(&gateway, true)).await;
    let rest_of_them = post_steadily(&rest, "partitioned", 10, || {}).await;
    missed.extend(rest_of_them);
    assert_complete(&received(clients).await, &missed);
}
