//! The two-way paths: events a client publishes over its WebSocket (the fan-out publisher of
//! `fanout --via client`), and RPC round trips from WebSocket clients to a backend on NATS
//! (`rpc`), beside the same backend called straight over NATS as the reference.

use crate::plan::{payload, Mark};
use crate::publisher::{run_workers, Job, Outcome, Plan};
use crate::stats::{new_histogram, percentiles_ms, record_ns};
use crate::subscriber::next_json;
use crate::sys;
use crate::wsclient::WsClient;
use anyhow::{anyhow, bail, Context};
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

/// Longest wait for one answer (publish ack or RPC result).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The method the bench's backend serves.
const METHOD: &str = "bench.echo";

/// A WebSocket client identified as `user`, whose token may publish anywhere it joins.
async fn identified(
    addr: SocketAddr,
    jwt_secret: &str,
    user: &str,
    seed: u64,
) -> anyhow::Result<WsClient> {
    let mut ws = WsClient::connect(addr, None, "/ws", 64 * 1024, seed).await?;
    let welcome = next_json(&mut ws).await?;
    if welcome["type"] != "welcome" {
        bail!("expected a welcome frame, got {welcome}");
    }
    let claims = herald_core::token::Claims {
        sub: user.to_string(),
        exp: herald_core::token::now_secs() + 24 * 3600,
        iat: None,
        channels: Vec::new(),
        publish: vec!["*".to_string()],
        jti: None,
        once: false,
    };
    let token = herald_core::token::mint(jwt_secret.as_bytes(), &claims)
        .map_err(|e| anyhow!("minting a token: {e}"))?;
    let ident = json!({"type": "ident", "id": 0, "auth": {"token": token}});
    answer(&mut ws, &ident.to_string(), 0).await?;
    Ok(ws)
}

/// Sends request `frame` (whose id is `id`) and waits for its answer, skipping events; an
/// `error` answer is an error.
async fn answer(ws: &mut WsClient, frame: &str, id: u64) -> anyhow::Result<Value> {
    ws.send_text(frame.as_bytes()).await?;
    let wait = async {
        loop {
            let reply = next_json(ws).await?;
            if reply["id"] != id {
                continue;
            }
            return match reply["type"].as_str() {
                Some("error") => Err(anyhow!("request {id} refused: {reply}")),
                _ => Ok(reply),
            };
        }
    };
    tokio::time::timeout(ANSWER_TIMEOUT, wait)
        .await
        .map_err(|_| anyhow!("no answer to request {id} within {ANSWER_TIMEOUT:?}"))?
}

/// Publishes `plan`'s events as `publish` frames from `plan.workers` client connections to the
/// gateway at `addr`; each waits for its `ok` before the next, as a REST publisher waits for
/// its 202.
pub async fn publish_client(addr: SocketAddr, jwt_secret: &str, plan: Plan) -> Outcome {
    let secret = jwt_secret.to_string();
    run_workers(plan, move |job, w| {
        let secret = secret.clone();
        async move { client_worker(addr, &secret, &job, w).await }
    })
    .await
}

async fn client_worker(addr: SocketAddr, jwt_secret: &str, job: &Job, w: u64) -> Outcome {
    let mut outcome = Outcome::new(job.start_ns);
    let user = format!("bench-publisher-{}-{w}", job.plan.layout.run);
    let mut ws = match identified(addr, jwt_secret, &user, w + 1).await {
        Ok(ws) => ws,
        Err(e) => {
            outcome.error(format!("publisher {w}: {e:#}"));
            outcome.rejected.extend(job.unsent(w, 0, 0));
            return outcome;
        }
    };
    let mut joined = BTreeSet::new();
    let mut k = 0;
    while let Some((g, due)) = job.next_event(w, k).await {
        let mark = Mark { g, w, k, t: due };
        k += 1;
        let channel = job.plan.layout.channel(job.plan.layout.channel_of_event(g));
        let id = 1_000_000 + k;
        let sent_ns = sys::now_ns();
        let result = async {
            if joined.insert(channel.clone()) {
                let join = json!({"type": "join", "id": id, "channel": channel});
                answer(&mut ws, &join.to_string(), id).await?;
            }
            let body = payload(mark, job.plan.payload_bytes);
            let frame = format!(
                "{{\"type\":\"publish\",\"id\":{id},\"channel\":\"{channel}\",\"event\":\"BENCH\",\"payload\":{body}}}"
            );
            answer(&mut ws, &frame, id).await
        }
        .await;
        let now = sys::now_ns();
        outcome.end_ns = now;
        match result {
            Ok(_) => {
                outcome.accepted += 1;
                record_ns(&mut outcome.post_latency, now - sent_ns);
            }
            Err(e) => {
                // One connection carries every publish of this worker: a failure ends it.
                outcome.rejected.push(g);
                outcome.failed += 1;
                outcome.error(format!("publisher {w}: {e:#}"));
                outcome.rejected.extend(job.unsent(w, k, u64::MAX));
                break;
            }
        }
    }
    outcome
}

/// One level of `rpc`: calls per second and round-trip percentiles.
struct Level {
    calls: u64,
    failed: u64,
    secs: f64,
    latency: Histogram<u64>,
    errors: Vec<String>,
}

impl Level {
    fn empty() -> Level {
        Level {
            calls: 0,
            failed: 0,
            secs: 0.0,
            latency: new_histogram(),
            errors: Vec::new(),
        }
    }

    fn json(&self, clients: u32) -> Value {
        json!({
            "clients": clients,
            "calls": self.calls,
            "failed": self.failed,
            "secs": (self.secs * 1000.0).round() / 1000.0,
            "per_sec": if self.secs > 0.0 { (self.calls as f64 / self.secs).round() } else { 0.0 },
            "latency_ms": percentiles_ms(&self.latency),
            "errors": self.errors,
        })
    }

    fn line(&self, what: &str, clients: u32) -> String {
        let latency = percentiles_ms(&self.latency);
        format!(
            "rpc [{what}]: {clients:>3} clients: {} calls in {:.2} s = {:.0} calls/s, {} failed; ms p50 {} p99 {}",
            self.calls,
            self.secs,
            if self.secs > 0.0 { self.calls as f64 / self.secs } else { 0.0 },
            self.failed,
            latency.get("p50").unwrap_or(&Value::Null),
            latency.get("p99").unwrap_or(&Value::Null),
        )
    }
}

/// The bench's RPC backend on NATS: answers every call on `herald.rpc.bench.>` with its data.
async fn serve_backend(client: async_nats::Client) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut calls = client
        .subscribe(format!("{}bench.>", herald_core::subjects::RPC_PREFIX))
        .await
        .context("subscribing the bench backend")?;
    client.flush().await?;
    Ok(tokio::spawn(async move {
        while let Some(call) = calls.next().await {
            let Some(reply) = call.reply else { continue };
            let data = serde_json::from_slice::<Value>(&call.payload)
                .map(|c| c["data"].clone())
                .unwrap_or(Value::Null);
            let answer = json!({ "result": data }).to_string();
            let _ = client.publish(reply, answer.into()).await;
        }
    }))
}

/// `clients` WebSocket clients (spread over `gateways`) calling the backend for `duration`.
async fn herald_level(
    gateways: &[SocketAddr],
    jwt_secret: &str,
    clients: u32,
    duration: Duration,
    payload_bytes: usize,
) -> Level {
    let data = "x".repeat(payload_bytes);
    let started = sys::now_ns();
    let deadline = started + duration.as_nanos() as u64;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let addr = gateways[c as usize % gateways.len()];
        let (secret, data) = (jwt_secret.to_string(), data.clone());
        tasks.push(tokio::spawn(async move {
            let mut level = Level::empty();
            let user = format!("bench-rpc-{c}");
            let mut ws = match identified(addr, &secret, &user, u64::from(c) + 7).await {
                Ok(ws) => ws,
                Err(e) => {
                    level.failed += 1;
                    level.errors.push(format!("{e:#}"));
                    return level;
                }
            };
            let mut id = 0;
            while sys::now_ns() < deadline {
                id += 1;
                let frame =
                    json!({"type": "rpc", "id": id, "method": METHOD, "data": data}).to_string();
                let sent = sys::now_ns();
                match answer(&mut ws, &frame, id).await {
                    Ok(reply) if reply["type"] == "result" => {
                        level.calls += 1;
                        record_ns(&mut level.latency, sys::now_ns() - sent);
                    }
                    Ok(other) => {
                        level.failed += 1;
                        level.errors.push(format!("unexpected answer {other}"));
                        break;
                    }
                    Err(e) => {
                        level.failed += 1;
                        level.errors.push(format!("{e:#}"));
                        break;
                    }
                }
            }
            level
        }));
    }
    gather(tasks, started).await
}

/// The reference: `clients` tasks calling the same backend straight over NATS.
async fn nats_level(
    client: &async_nats::Client,
    clients: u32,
    duration: Duration,
    payload_bytes: usize,
) -> Level {
    let body = json!({"method": METHOD, "data": "x".repeat(payload_bytes), "user": "bench", "conn": "bench"}).to_string();
    let subject = format!("{}{METHOD}", herald_core::subjects::RPC_PREFIX);
    let started = sys::now_ns();
    let deadline = started + duration.as_nanos() as u64;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, body, subject) = (client.clone(), body.clone(), subject.clone());
        tasks.push(tokio::spawn(async move {
            let mut level = Level::empty();
            while sys::now_ns() < deadline {
                let sent = sys::now_ns();
                let call = client.request(subject.clone(), body.clone().into());
                match tokio::time::timeout(ANSWER_TIMEOUT, call).await {
                    Ok(Ok(_)) => {
                        level.calls += 1;
                        record_ns(&mut level.latency, sys::now_ns() - sent);
                    }
                    Ok(Err(e)) => {
                        level.failed += 1;
                        level.errors.push(format!("{e}"));
                        break;
                    }
                    Err(_) => {
                        level.failed += 1;
                        level.errors.push("request timed out".into());
                        break;
                    }
                }
            }
            level
        }));
    }
    gather(tasks, started).await
}

async fn gather(tasks: Vec<tokio::task::JoinHandle<Level>>, started: u64) -> Level {
    let mut total = Level::empty();
    for task in tasks {
        match task.await {
            Ok(level) => {
                total.calls += level.calls;
                total.failed += level.failed;
                let _ = total.latency.add(&level.latency);
                total
                    .errors
                    .extend(level.errors.into_iter().take(3 - total.errors.len().min(3)));
            }
            Err(e) => {
                total.failed += 1;
                total.errors.push(format!("client task failed: {e}"));
            }
        }
    }
    total.secs = sys::now_ns().saturating_sub(started) as f64 / 1e9;
    total
}

/// `rpc`: round trips per second and their latency, through Herald and straight over NATS, at
/// each number of concurrent clients; results and faults.
pub async fn rpc(args: &crate::RpcArgs) -> anyhow::Result<(Value, Vec<String>)> {
    let common = &args.common;
    if common.jwt_secret.is_empty() {
        bail!("give --jwt-secret (the gateways' token secret)");
    }
    let gateways: Vec<SocketAddr> = common
        .gateways
        .iter()
        .map(|g| sys::loopback_addr(g))
        .collect::<anyhow::Result<_>>()?;
    if gateways.is_empty() {
        bail!("give at least one --gateway URL");
    }
    let url = common
        .nats
        .as_deref()
        .ok_or_else(|| anyhow!("give --nats URL (the backend answers there)"))?;
    sys::loopback_addr(url)?;
    let nats = async_nats::connect(url)
        .await
        .with_context(|| format!("connecting to NATS at {url}"))?;
    let backend = serve_backend(nats.clone()).await?;
    let duration = Duration::from_secs(args.secs);
    let mut levels = Vec::new();
    let mut faults = Vec::new();
    for &clients in &args.clients {
        let clients = clients.max(1);
        let herald = herald_level(
            &gateways,
            &common.jwt_secret,
            clients,
            duration,
            args.payload_bytes,
        )
        .await;
        let reference = nats_level(&nats, clients, duration, args.payload_bytes).await;
        eprintln!("{}", herald.line("herald", clients));
        eprintln!("{}", reference.line("nats", clients));
        for e in herald.errors.iter().chain(&reference.errors) {
            eprintln!("  error: {e}");
        }
        if herald.failed > 0 || herald.calls == 0 {
            faults.push(format!(
                "{} RPCs failed with {clients} clients",
                herald.failed
            ));
        }
        levels.push(json!({"herald": herald.json(clients), "nats": reference.json(clients)}));
    }
    backend.abort();
    let (cores, mem_gib) = sys::machine();
    let results = json!({
        "mode": "rpc",
        "label": common.label,
        "cores": cores,
        "mem_gib": mem_gib,
        "payload_bytes": args.payload_bytes,
        "levels": levels,
    });
    Ok((results, faults))
}
