//! Notices gateways whose heartbeat stopped and clears what they held from KV.
//!
//! Each gateway bumps a counter in `gw.<id>` every `liveness_interval`. A dispatcher reads the
//! counters twice per interval and remembers when it last saw each one change, by its own
//! clock, so clocks of different machines never need to agree. A counter unchanged for longer
//! than the timeout means the gateway is gone: its connections are removed and announced as
//! disconnected. Several dispatchers may do this for the same gateway; every step is
//! idempotent.
//!
//! Silence only counts while KV takes writes and answers reads: each round first writes a key
//! of its own (`disp.<id>`, which the cluster view lists), and after a failed write or reading
//! (a NATS node lost, a leader being elected, during which listings may still answer while
//! every write fails) every gateway gets a fresh
//! timeout, because its heartbeats failed for the same reason. So a degraded cluster delays
//! reaping; it never reaps a live gateway.

use crate::Context;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let mut last_change: HashMap<String, (Bytes, Instant)> = HashMap::new();
    let mut tick = tokio::time::interval(context.config.liveness_interval / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut kv_failed = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = context.presence.dispatcher_alive(&context.id).await {
            tracing::warn!(error = %e, "KV takes no writes; gateway heartbeats cannot land");
            kv_failed = true;
            continue;
        }
        let gateways = match context.presence.gateways().await {
            Ok(gateways) => gateways,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read gateway heartbeats");
                kv_failed = true;
                continue;
            }
        };
        let now = Instant::now();
        if std::mem::take(&mut kv_failed) {
            for entry in last_change.values_mut() {
                entry.1 = now;
            }
        }
        let live: Vec<String> = gateways.iter().map(|(gw, _)| gw.clone()).collect();
        last_change.retain(|gw, _| live.contains(gw));
        for (gateway, beat) in gateways {
            let entry = last_change
                .entry(gateway.clone())
                .or_insert_with(|| (beat.clone(), now));
            if entry.0 != beat {
                *entry = (beat, now);
                continue;
            }
            if now.duration_since(entry.1) < context.config.gateway_timeout {
                continue;
            }
            reap(&context, &gateway, "gateway_lost").await;
            last_change.remove(&gateway);
        }
    }
}

/// Clears everything `gateway` held and announces its connections as gone for `reason`.
pub(crate) async fn reap(context: &Arc<Context>, gateway: &str, reason: &str) {
    crate::pusher_members::gateway_lost(context, gateway).await;
    match context.presence.forget_gateway(gateway).await {
        Ok(lost) => {
            tracing::info!(
                %gateway,
                connections = lost.len(),
                %reason,
                "gateway gone; its connections were removed"
            );
            if reason == "gateway_lost" {
                crate::lifecycle::gateway_lost(context, gateway, &lost).await;
            } else {
                for lost in &lost {
                    let conn = lost.conn.to_string();
                    crate::lifecycle::disconnected(
                        context,
                        &conn,
                        &lost.user,
                        &lost.channels,
                        reason,
                    )
                    .await;
                }
            }
        }
        Err(e) => tracing::warn!(%gateway, error = %e, "could not clear a dead gateway"),
    }
}
