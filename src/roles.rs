//! Wires roles together: connects the bus and KV, builds each role's routes, serves HTTP, and
//! shuts everything down in order on SIGINT/SIGTERM.

use crate::config::Settings;
pub(crate) use crate::http_server::serve_http;
use anyhow::{bail, Context};
use axum::routing::get;
use axum::Router;
use herald_core::bus::{Bus, MemoryBus, NatsBus};
use herald_core::credentials::ApiKeys;
use herald_core::kv::{Kv, MemoryKv, NatsKv};
use herald_core::metrics::Metrics;
use herald_core::subjects;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Spent one-time tokens are remembered this long: longer than any one-time token lives.
const SPENT_TOKEN_MEMORY: Duration = Duration::from_secs(15 * 60);
/// How long a stopping process waits for connections and requests to finish.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// `herald serve`: every role in one process.
pub async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signal();
    let metrics = Metrics::new();
    let mut settings = settings;
    let generated_key = if settings.api_key_hashes.is_empty() {
        let key = random_secret();
        settings.api_key_hashes =
            vec![herald_core::credentials::hash_secret(&key).map_err(anyhow::Error::msg)?];
        Some(key)
    } else {
        None
    };
    if settings.jwt_secret.is_none() {
        settings.jwt_secret = Some(random_secret());
        tracing::info!("no --jwt-secret given: generated one for this run; tokens die with it");
    }
    let (bus, client) = connect_bus(settings.nats.as_deref(), "herald-serve").await?;
    let (kv, spent) = open_kv(client.as_ref(), settings.kv_replicas).await?;
    let dispatcher = tokio::spawn(herald_dispatcher::run(
        bus.clone(),
        kv.clone(),
        spent,
        dispatcher_config(&settings)?,
        metrics.clone(),
        shutdown.clone(),
    ));
    let file_tails =
        crate::adapter_roles::spawn_file_tails(&settings, bus.clone(), &metrics, shutdown.clone())?;
    let (gateway, router) = start_gateway(&settings, &bus, &metrics, &shutdown, demo).await?;
    let router = router
        .merge(herald_adapters::rest::router(
            bus.clone(),
            rest_config(&settings)?,
            &metrics,
        ))
        .merge(health_routes(bus, Some(kv), metrics));
    let listener = bind(&settings).await?;
    let address = listener.local_addr()?;
    announce(&settings, "serve", address);
    if let Some(key) = generated_key {
        say(&format!("herald serve api key: {key}"));
        say("  (generated for this run; configure your own with --api-key-hash, see `herald passwd`)");
    }
    if demo {
        say(&format!(
            "  open http://{address}/ for the demo; POST events to http://{address}/v1/notify"
        ));
    }
    serve_http(listener, router, shutdown.clone(), &settings).await?;
    gateway.stopped(SHUTDOWN_DEADLINE).await;
    if let Some(file_tails) = file_tails {
        file_tails.await??;
    }
    dispatcher.await??;
    Ok(())
}

/// `herald gateway`.
pub async fn gateway(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signal();
    let metrics = Metrics::new();
    let (bus, _) = connect_bus(Some(require_nats(&settings, "gateway")?), "herald-gateway").await?;
    let (gateway, router) = start_gateway(&settings, &bus, &metrics, &shutdown, demo).await?;
    let router = router.merge(health_routes(bus, None, metrics));
    let listener = bind(&settings).await?;
    announce(&settings, "gateway", listener.local_addr()?);
    serve_http(listener, router, shutdown, &settings).await?;
    gateway.stopped(SHUTDOWN_DEADLINE).await;
    Ok(())
}

/// `herald dispatcher`.
pub async fn dispatcher(settings: Settings) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signal();
    let (bus, client) = connect_bus(
        Some(require_nats(&settings, "dispatcher")?),
        "herald-dispatcher",
    )
    .await?;
    let (kv, spent) = open_kv(client.as_ref(), settings.kv_replicas).await?;
    let dispatcher = herald_dispatcher::start(
        bus,
        kv,
        spent,
        dispatcher_config(&settings)?,
        Metrics::new(),
        shutdown,
    )
    .await?;
    // Scripts and tests wait for this line: from here on requests are answered.
    say("herald dispatcher running");
    dispatcher.stopped().await;
    Ok(())
}

/// `herald adapter rest`.
pub async fn rest(settings: Settings) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signal();
    let metrics = Metrics::new();
    let (bus, _) = connect_bus(
        Some(require_nats(&settings, "adapter rest")?),
        "herald-rest",
    )
    .await?;
    if settings.api_key_hashes.is_empty() {
        bail!("the REST adapter needs at least one --api-key-hash (make one with `herald passwd`)");
    }
    let router = herald_adapters::rest::router(bus.clone(), rest_config(&settings)?, &metrics)
        .merge(health_routes(bus, None, metrics));
    let listener = bind(&settings).await?;
    announce(&settings, "rest", listener.local_addr()?);
    serve_http(listener, router, shutdown, &settings).await
}

/// `herald passwd`: one secret on stdin, its argon2id hash on stdout.
pub fn passwd() -> anyhow::Result<()> {
    let mut secret = String::new();
    std::io::stdin()
        .read_line(&mut secret)
        .context("cannot read the secret from stdin")?;
    let secret = secret.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        bail!("empty secret: type it (or pipe it) on stdin");
    }
    println!(
        "{}",
        herald_core::credentials::hash_secret(secret).map_err(anyhow::Error::msg)?
    );
    Ok(())
}

/// Starts a gateway and returns it with its routes (plus the demo's when asked).
async fn start_gateway(
    settings: &Settings,
    bus: &Arc<dyn Bus>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
    demo: bool,
) -> anyhow::Result<(herald_gateway::Gateway, Router)> {
    let gateway = herald_gateway::Gateway::start(
        bus.clone(),
        gateway_config(settings, demo),
        metrics,
        shutdown.clone(),
    )
    .await?;
    let mut router = gateway.router();
    if demo {
        router = router.merge(herald_gateway::demo::router(
            bus.clone(),
            jwt_secret(settings)?,
        ));
    }
    Ok((gateway, router))
}

pub(crate) fn require_nats<'a>(settings: &'a Settings, role: &str) -> anyhow::Result<&'a str> {
    settings.nats.as_deref().with_context(|| {
        format!("`herald {role}` runs on NATS: pass --nats nats://host:4222 (or run `herald serve` for everything in one process)")
    })
}

fn jwt_secret(settings: &Settings) -> anyhow::Result<Vec<u8>> {
    match &settings.jwt_secret {
        Some(secret) if !secret.is_empty() => Ok(secret.as_bytes().to_vec()),
        _ => bail!("--jwt-secret is required: it signs the tokens clients ident with"),
    }
}

fn dispatcher_config(settings: &Settings) -> anyhow::Result<herald_dispatcher::DispatcherConfig> {
    Ok(herald_dispatcher::DispatcherConfig {
        jwt_secret: jwt_secret(settings)?,
        users: settings.users.clone(),
        gateway_timeout: settings.gateway_timeout,
        liveness_interval: settings.liveness_interval,
    })
}

fn gateway_config(settings: &Settings, demo: bool) -> herald_gateway::GatewayConfig {
    // The demo page may be opened under any name of the host (localhost, 127.0.0.1, a LAN
    // address behind a dev proxy); production gateways default to their own host only.
    let default_origins = if demo {
        vec!["*".to_string()]
    } else {
        Vec::new()
    };
    herald_gateway::GatewayConfig {
        heartbeat: settings.heartbeat,
        max_frame_bytes: settings.max_payload_bytes,
        outbox_capacity: settings.outbox_capacity,
        liveness_interval: settings.liveness_interval,
        ident_timeout: settings.ident_timeout,
        max_connections: settings.max_connections,
        max_connections_per_address: settings.max_connections_per_address,
        allowed_origins: settings.allowed_origins.clone().unwrap_or(default_origins),
        ..Default::default()
    }
}

fn rest_config(settings: &Settings) -> anyhow::Result<herald_adapters::rest::RestConfig> {
    Ok(herald_adapters::rest::RestConfig {
        api_keys: ApiKeys::new(settings.api_key_hashes.clone()),
        jwt_secret: jwt_secret(settings)?,
        max_payload_bytes: settings.max_payload_bytes,
    })
}

pub(crate) async fn connect_bus(
    nats: Option<&str>,
    name: &str,
) -> anyhow::Result<(Arc<dyn Bus>, Option<async_nats::Client>)> {
    let Some(url) = nats else {
        tracing::info!("no --nats given: running on the embedded in-memory bus");
        return Ok((Arc::new(MemoryBus::new()), None));
    };
    let options = async_nats::ConnectOptions::new()
        .name(name)
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("NATS connected"),
                async_nats::Event::Disconnected => {
                    tracing::warn!("NATS connection lost; reconnecting")
                }
                other => tracing::info!(event = %other, "NATS"),
            }
        });
    // A cluster is given as a comma-separated list; the client also learns the other
    // servers from the one it reaches, but a list lets it start while some are down.
    let servers: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let client = options
        .connect(servers)
        .await
        .with_context(|| format!("cannot reach NATS at {url}"))?;
    tracing::info!(%url, "connected to NATS");
    Ok((Arc::new(NatsBus::new(client.clone())), Some(client)))
}

async fn open_kv(
    client: Option<&async_nats::Client>,
    replicas: usize,
) -> anyhow::Result<(Arc<dyn Kv>, Arc<dyn Kv>)> {
    match client {
        None => Ok((Arc::new(MemoryKv::new()), Arc::new(MemoryKv::new()))),
        Some(client) => {
            let open = |bucket, max_age| NatsKv::open(client.clone(), bucket, max_age, replicas);
            let kv = open(subjects::KV_BUCKET, Duration::ZERO).await?;
            let spent = open(subjects::ONCE_BUCKET, SPENT_TOKEN_MEMORY).await?;
            Ok((Arc::new(kv), Arc::new(spent)))
        }
    }
}

pub(crate) fn health_routes(
    bus: Arc<dyn Bus>,
    kv: Option<Arc<dyn Kv>>,
    metrics: Metrics,
) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            get(move || {
                let bus = bus.clone();
                let kv = kv.clone();
                async move {
                    let bus_ok = bus.is_connected();
                    let kv_ok = match &kv {
                        Some(kv) => kv.is_ready().await,
                        None => true,
                    };
                    let status = if bus_ok && kv_ok {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    };
                    let body = serde_json::json!({"bus": bus_ok, "kv": kv_ok});
                    (status, axum::Json(body))
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
}

pub(crate) async fn bind(settings: &Settings) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))
}

pub(crate) fn announce(settings: &Settings, role: &str, address: std::net::SocketAddr) {
    let scheme = crate::http_server::scheme(settings);
    say(&format!("herald {role} listening on {scheme}://{address}"));
}

/// Writes a status line to stdout. A closed stdout (a supervisor that stopped reading) must
/// not take the server down, so write errors are ignored, unlike `println!`, which panics.
pub(crate) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub(crate) fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        fire.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        fire.cancel();
    });
    token
}

fn random_secret() -> String {
    format!("{:032x}", rand::random::<u128>())
}
