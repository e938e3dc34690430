//! `herald-bench jitter`: clients whose connections drop for a second every ~15 s (staggered)
//! while events flow steadily to their channels, as in AnyCable's reliability test. Each client
//! reconnects and re-joins with the last position it saw (or, with `--no-recovery`, without:
//! the reference of a server that does not recover). Prints how much was delivered, the
//! duplicates, and how long the replays took.

use crate::faults::{next_json, token_signed};
use crate::publisher::HttpConn;
use crate::stats::{new_histogram, percentiles_ms, record_ns};
use crate::sys::{loopback_addr, now_ns};
use crate::wsclient::WsClient;
use crate::Common;
use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// `jitter`.
#[derive(clap::Args, Clone, Debug)]
pub struct JitterArgs {
    #[command(flatten)]
    pub common: Common,
    /// Client connections, spread over the gateways and channels.
    #[arg(long, default_value_t = 2_000)]
    pub clients: u64,
    /// Channels; each client joins one.
    #[arg(long, default_value_t = 10)]
    pub channels: u32,
    /// Events per second to each channel.
    #[arg(long, default_value_t = 2.0)]
    pub rate_per_channel: f64,
    /// How long events are sent, seconds.
    #[arg(long, default_value_t = 120)]
    pub secs: u64,
    /// Each connection drops about this often, seconds (the first drop at a random moment in
    /// the first period, so drops are staggered).
    #[arg(long, default_value_t = 15.0)]
    pub drop_every_secs: f64,
    /// How long a dropped client stays away, ms.
    #[arg(long, default_value_t = 1_000)]
    pub down_ms: u64,
    /// Re-join without `since`: what a client of a server without recovery gets.
    #[arg(long)]
    pub no_recovery: bool,
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    /// Event number → copies received.
    counts: HashMap<u64, u32>,
    reconnects: u64,
    not_recovered: u64,
    failures: u64,
}

/// Shared results of all clients.
struct Totals {
    replay: Histogram<u64>,
    live: Histogram<u64>,
}

/// One connection: connect, ident, join with `since`; answers the join's `ok`.
async fn open(
    gateway: SocketAddr,
    token: &str,
    channel: &str,
    since: Option<&str>,
) -> anyhow::Result<(WsClient, Value)> {
    let mut ws = WsClient::connect(gateway, None, "/ws", 64 * 1024, now_ns()).await?;
    let welcome = next_json(&mut ws).await?.context("closed before welcome")?;
    if welcome["type"] != "welcome" {
        bail!("expected welcome, got {welcome}");
    }
    let ident = json!({"type": "ident", "id": 1, "auth": {"token": token}});
    ws.send_text(ident.to_string().as_bytes()).await?;
    let ok = next_json(&mut ws)
        .await?
        .context("closed before the ident's answer")?;
    if ok["type"] != "ok" {
        bail!("ident refused: {ok}");
    }
    let mut join = json!({"type": "join", "id": 2, "channel": channel});
    if let Some(since) = since {
        join["since"] = json!(since);
    }
    ws.send_text(join.to_string().as_bytes()).await?;
    let ok = next_json(&mut ws)
        .await?
        .context("closed before the join's answer")?;
    if ok["type"] != "ok" {
        bail!("join refused: {ok}");
    }
    Ok((ws, ok))
}

/// A client: receives until `stop`, dropping its connection every `every` for `down`.
#[allow(clippy::too_many_arguments)]
async fn client(
    gateway: SocketAddr,
    token: String,
    channel: String,
    first_drop: Duration,
    (every, down): (Duration, Duration),
    recover: bool,
    stop: CancellationToken,
    totals: Arc<Mutex<Totals>>,
    ready: tokio::sync::mpsc::Sender<()>,
) -> Seen {
    let mut seen = Seen::default();
    let mut since: Option<String> = None;
    let mut next_drop = Instant::now() + first_drop;
    let mut ready = Some(ready);
    let (mut replay, mut live) = (new_histogram(), new_histogram());
    while !stop.is_cancelled() {
        let joined_ns = now_ns();
        let (mut ws, ok) = match open(
            gateway,
            &token,
            &channel,
            since.as_deref().filter(|_| recover),
        )
        .await
        {
            Ok(opened) => opened,
            Err(_) => {
                seen.failures += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if let Some(ready) = ready.take() {
            let _ = ready.send(()).await;
        } else {
            seen.reconnects += 1;
        }
        if ok["recovered"] != true {
            if since.is_some() {
                seen.not_recovered += 1;
            }
            since = ok["pos"].as_str().map(str::to_string);
        }
        // The replay ends at the last event sent before this join.
        let mut replay_end: Option<u64> = None;
        let dropped = loop {
            let wait = next_drop.saturating_duration_since(Instant::now());
            let frame = tokio::select! {
                _ = stop.cancelled() => break false,
                _ = tokio::time::sleep(wait) => break true,
                frame = next_json(&mut ws) => frame,
            };
            let Ok(Some(frame)) = frame else { break false };
            if frame["type"] != "event" {
                continue;
            }
            let now = now_ns();
            let (Some(n), Some(sent)) = (
                frame["payload"]["n"].as_u64(),
                frame["payload"]["t"].as_u64(),
            ) else {
                continue;
            };
            *seen.counts.entry(n).or_default() += 1;
            if let Some(pos) = frame["pos"]["channels"][channel.as_str()].as_str() {
                since = Some(pos.to_string());
            }
            if sent < joined_ns {
                replay_end = Some(now);
            } else {
                record_ns(&mut live, now.saturating_sub(sent));
            }
        };
        if let Some(end) = replay_end.filter(|_| seen.reconnects > 0) {
            record_ns(&mut replay, end.saturating_sub(joined_ns));
        }
        drop(ws);
        if dropped {
            next_drop += every;
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(down) => {}
            }
        } else if !stop.is_cancelled() {
            seen.failures += 1;
        }
    }
    let mut totals = totals.lock().unwrap_or_else(|e| e.into_inner());
    let _ = totals.replay.add(&replay);
    let _ = totals.live.add(&live);
    seen
}

/// Runs the jitter measurement; `Ok(false)` when something failed under `--strict`.
pub async fn run(args: JitterArgs) -> anyhow::Result<bool> {
    let common = &args.common;
    let rest = loopback_addr(common.rest.as_deref().context("give --rest")?)?;
    let gateways: Vec<SocketAddr> = common
        .gateways
        .iter()
        .map(|g| loopback_addr(g))
        .collect::<Result<_, _>>()?;
    if gateways.is_empty() {
        bail!("give --gateway");
    }
    let channels: Vec<String> = (0..args.channels).map(|c| format!("jitter{c}")).collect();
    let stop = CancellationToken::new();
    let totals = Arc::new(Mutex::new(Totals {
        replay: new_histogram(),
        live: new_histogram(),
    }));
    let every = Duration::from_secs_f64(args.drop_every_secs);
    let down = Duration::from_millis(args.down_ms);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(1024);
    let mut handles = Vec::new();
    let seed = now_ns();
    for c in 0..args.clients {
        let first_drop = every
            .mul_f64(((seed ^ c.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 10_000) as f64 / 10_000.0);
        handles.push(tokio::spawn(client(
            gateways[c as usize % gateways.len()],
            token_signed(&common.jwt_secret, &format!("j{c}"))?,
            channels[c as usize % channels.len()].clone(),
            first_drop + Duration::from_secs(2),
            (every, down),
            !args.no_recovery,
            stop.clone(),
            totals.clone(),
            ready_tx.clone(),
        )));
    }
    drop(ready_tx);
    let connect_deadline = Instant::now() + Duration::from_secs(common.ready_secs);
    for _ in 0..args.clients {
        tokio::time::timeout_at(connect_deadline.into(), ready_rx.recv())
            .await
            .map_err(|_| anyhow!("clients not connected in time"))?;
    }
    eprintln!(
        "jitter: {} clients connected; sending for {} s",
        args.clients, args.secs
    );

    // Events: `rate_per_channel` per second to each channel, round robin, numbered.
    let mut conn = HttpConn::connect(rest, &common.api_key).await?;
    let interval =
        Duration::from_secs_f64(1.0 / (args.rate_per_channel * f64::from(args.channels)));
    let started = Instant::now();
    let mut accepted: Vec<Vec<u64>> = vec![Vec::new(); channels.len()];
    let mut refused = 0u64;
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(args.secs) {
        let channel = (n % u64::from(args.channels)) as usize;
        let body = json!({"event": "J", "payload": {"n": n, "t": now_ns()}});
        let path = format!("/v1/notify/channel/{}", channels[channel]);
        match conn.post(&path, Bytes::from(body.to_string())).await {
            Ok((status, _)) if status.as_u16() == 202 => accepted[channel].push(n),
            Ok(_) => refused += 1,
            Err(_) => {
                refused += 1;
                conn = HttpConn::connect(rest, &common.api_key).await?;
            }
        }
        n += 1;
        tokio::time::sleep_until((started + interval * (n as u32)).into()).await;
    }
    // Let every client come back and catch up, then stop.
    tokio::time::sleep(down + Duration::from_secs(3)).await;
    stop.cancel();
    let mut expected = 0u64;
    let mut delivered = 0u64;
    let mut duplicates = 0u64;
    let (mut reconnects, mut not_recovered, mut failures) = (0, 0, 0);
    for (c, handle) in handles.into_iter().enumerate() {
        let seen = handle.await?;
        let wanted = &accepted[c % channels.len()];
        expected += wanted.len() as u64;
        delivered += wanted
            .iter()
            .filter(|n| seen.counts.contains_key(n))
            .count() as u64;
        duplicates += seen
            .counts
            .values()
            .map(|&k| u64::from(k.saturating_sub(1)))
            .sum::<u64>();
        reconnects += seen.reconnects;
        not_recovered += seen.not_recovered;
        failures += seen.failures;
    }
    let totals = totals.lock().unwrap_or_else(|e| e.into_inner());
    let pct = if expected == 0 {
        0.0
    } else {
        delivered as f64 * 100.0 / expected as f64
    };
    let result = json!({
        "mode": "jitter",
        "label": common.label,
        "recovery": !args.no_recovery,
        "clients": args.clients,
        "channels": args.channels,
        "events": n,
        "refused": refused,
        "expected_deliveries": expected,
        "delivered": delivered,
        "delivered_pct": (pct * 1000.0).round() / 1000.0,
        "duplicates": duplicates,
        "reconnects": reconnects,
        "not_recovered": not_recovered,
        "connect_failures": failures,
        "replay_delay_ms": percentiles_ms(&totals.replay),
        "live_latency_ms": percentiles_ms(&totals.live),
        "date": crate::driver::today(),
    });
    eprintln!(
        "jitter ({}): {delivered}/{expected} delivered ({pct:.3} %), {duplicates} duplicates, {reconnects} reconnects ({not_recovered} not recovered), replay delay p99 {} ms",
        if args.no_recovery { "no recovery" } else { "recovery" },
        result["replay_delay_ms"]["p99"]
    );
    println!("{result}");
    let clean = delivered == expected && duplicates == 0 && refused == 0;
    Ok(clean || !common.strict)
}
