//! Tells the dispatchers this gateway is alive, and that it left.

use crate::session::{command, request};
use crate::Shared;
use herald_core::messages::GatewayCommand;
use herald_core::subjects;
use std::sync::Arc;

/// Sends a heartbeat now and then every `liveness_interval` until shutdown.
pub(crate) async fn start(shared: &Arc<Shared>) {
    let shared = shared.clone();
    let tracker = shared.tracker.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(shared.config.liveness_interval);
        let mut beat = 0u64;
        loop {
            tokio::select! {
                _ = shared.shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            beat += 1;
            let heartbeat = GatewayCommand::Heartbeat {
                gateway: shared.id.clone(),
                beat,
            };
            if let Err(e) = request(&shared, subjects::HEARTBEAT, &heartbeat).await {
                tracing::warn!(error = %e, "heartbeat not recorded");
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
