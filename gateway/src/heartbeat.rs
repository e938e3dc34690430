//! Tells the dispatchers this gateway is alive, and that it left.

use crate::session::command;
use crate::Shared;
use herald_core::messages::GatewayCommand;
use std::sync::Arc;

/// Sends a heartbeat now and then every `liveness_interval` until shutdown.
pub(crate) async fn start(shared: &Arc<Shared>) {
    let shared = shared.clone();
    let tracker = shared.tracker.clone();
    tracker.spawn(async move {
        let interval = shared.config.liveness_interval;
        let mut tick = tokio::time::interval(interval);
        // A late beat is sent once, not in a burst: dispatchers only look for a change.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beat = 0u64;
        loop {
            tokio::select! {
                _ = shared.shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            beat += 1;
            for connection in shared.registry.all() {
                let depth = connection.outbox.depth();
                shared.metrics.outbox_depth.observe(depth as f64);
            }
            let heartbeat = GatewayCommand::Heartbeat {
                gateway: shared.id.clone(),
                beat,
                connections: shared.registry.all().len() as u64,
                url: shared.config.public_url.clone(),
            };
            // Never wait longer than a beat: the next one replaces an answer still missing.
            match tokio::time::timeout(interval, command(&shared, &heartbeat)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "heartbeat not recorded"),
                Err(_) => tracing::warn!("heartbeat not acknowledged within a beat"),
            }
        }
    });
}

/// Tells a dispatcher this gateway stopped, so its connections leave KV now rather than when
/// the heartbeat timeout notices.
pub(crate) async fn announce_departure(shared: &Shared) {
    let stopped = GatewayCommand::Stopped {
        gateway: shared.id.clone(),
    };
    match command(shared, &stopped).await {
        Ok(_) => tracing::info!(gateway = %shared.id, "departure announced"),
        Err(e) => {
            tracing::warn!(error = %e, "could not announce departure; dispatchers will notice the missing heartbeat")
        }
    }
}
