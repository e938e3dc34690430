//! The feed adapter roles: `herald adapter file-tail` and `herald adapter redis`, plus the hook
//! that lets `herald serve` follow the `[[file_tail]]` files of its configuration.
//!
//! A feed adapter answers no requests; given a `--listen` address (flag, environment or TOML) it
//! serves `/healthz`, `/readyz` and `/metrics` there. Each prints `herald <role> running` once
//! it follows its feed.

use crate::config::Settings;
use crate::roles::{
    announce, bind, connect_bus, health_routes, require_nats, serve_http, shutdown_on_signal,
};
use anyhow::bail;
use herald_adapters::file_tail::FileTail;
use herald_adapters::redis::{RedisAdapter, RedisConfig};
use herald_core::bus::Bus;
use herald_core::metrics::Metrics;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// `herald adapter file-tail`: follows `--file` or the `[[file_tail]]` tables.
pub async fn file_tail(settings: Settings) -> anyhow::Result<()> {
    let nats = require_nats(&settings, "adapter file-tail")?;
    if settings.file_tail.is_empty() {
        bail!("nothing to follow: pass --file PATH --channel C --event E, or [[file_tail]] tables in --config");
    }
    for entry in &settings.file_tail {
        entry.validate()?;
    }
    let shutdown = shutdown_on_signal();
    let metrics = Metrics::new();
    let (bus, _) = connect_bus(Some(nats), &settings.nats_auth, "herald-file-tail").await?;
    let tails = FileTail::start(
        settings.file_tail.clone(),
        &metrics.labelled(&[("role", "file-tail")]),
    )?;
    let http = serve_health(&settings, "file-tail", bus.clone(), &metrics, &shutdown).await?;
    announce_running("file-tail");
    let result = tails.run(bus, shutdown.clone()).await;
    finish(result, http, shutdown).await
}

/// `herald adapter redis`: subscribes to `--redis-channel` on `--redis-url`.
pub async fn redis(settings: Settings) -> anyhow::Result<()> {
    let nats = require_nats(&settings, "adapter redis")?;
    let config = RedisConfig {
        url: settings.redis_url.clone(),
        channel: settings.redis_channel.clone(),
        max_payload_bytes: settings.max_payload_bytes,
    };
    config.validate()?;
    let shutdown = shutdown_on_signal();
    let metrics = Metrics::new();
    let (bus, _) = connect_bus(Some(nats), &settings.nats_auth, "herald-redis").await?;
    let adapter = RedisAdapter::connect(config, &metrics.labelled(&[("role", "redis")])).await?;
    let http = serve_health(&settings, "redis", bus.clone(), &metrics, &shutdown).await?;
    announce_running("redis");
    let result = adapter.run(bus, shutdown.clone()).await;
    finish(result, http, shutdown).await
}

type HttpTask = JoinHandle<anyhow::Result<()>>;

/// Serves the health and metrics routes when a listen address was configured.
async fn serve_health(
    settings: &Settings,
    role: &str,
    bus: Arc<dyn Bus>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<HttpTask>> {
    if !settings.listen_configured {
        return Ok(None);
    }
    let listener = bind(settings).await?;
    announce(settings, role, listener.local_addr()?);
    let routes = health_routes(bus, None, metrics.clone());
    Ok(Some(tokio::spawn(serve_http(
        listener,
        routes,
        shutdown.clone(),
        settings,
    ))))
}

/// Stops the HTTP side once the adapter stopped, and reports the first failure.
async fn finish(
    result: anyhow::Result<()>,
    http: Option<HttpTask>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    shutdown.cancel();
    if let Some(http) = http {
        http.await??;
    }
    result
}

/// For `herald serve`: follows the `[[file_tail]]` files of `settings` on `bus` until
/// `shutdown`; `None` when there are none. Invalid entries and unreadable files fail here,
/// before serving.
pub fn spawn_file_tails(
    settings: &Settings,
    bus: Arc<dyn Bus>,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<JoinHandle<anyhow::Result<()>>>> {
    if settings.file_tail.is_empty() {
        return Ok(None);
    }
    let tails = FileTail::start(
        settings.file_tail.clone(),
        &metrics.labelled(&[("role", "file-tail")]),
    )?;
    Ok(Some(tokio::spawn(tails.run(bus, shutdown))))
}

/// The line tests wait for: `herald <role> running`.
fn announce_running(role: &str) {
    crate::roles::say(&format!("herald {role} running"));
}
