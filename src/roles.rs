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
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let demo = settings.demo_on(true)?;
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
    if settings.nats.is_none() {
        // A plain local `herald serve` is for trying Herald out: a weak secret only warns.
        if let Some(Err(why)) = (settings.jwt_secret.as_ref())
            .map(|secret| herald_core::token::check_secret(secret.as_bytes()))
        {
            tracing::warn!("WEAK JWT SECRET, fine for a local try-out only: {why}");
            say(&format!("WARNING: weak --jwt-secret: {why}"));
            settings.allow_weak_jwt_secret = true;
        }
    }
    prepare_auth(&settings)?;
    let (bus, client) = connect_bus(
        settings.nats.as_deref(),
        &settings.nats_auth,
        "herald-serve",
    )
    .await?;
    let (kv, spent) = open_kv(client.as_ref(), settings.kv_replicas).await?;
    if demo {
        // The demo page shows lifecycle events live.
        settings.lifecycle_events = true;
    }
    let config = dispatcher_config(&settings, client.as_ref()).await?;
    let demo_events = match demo {
        true => Some(config.lifecycle.log.reader("demo-lifecycle").await?),
        false => None,
    };
    // Started (subscribed) before anything listens, so the first request finds it.
    let dispatcher = herald_dispatcher::start(
        bus.clone(),
        kv.clone(),
        spent,
        config,
        metrics.labelled(&[("role", "dispatcher")]),
        shutdown.clone(),
    )
    .await?;
    let dispatcher = tokio::spawn(dispatcher.stopped());
    if let Some(reader) = demo_events {
        let requests = herald_core::requests::Requester::new(bus.clone(), Duration::from_secs(5));
        tokio::spawn(herald_gateway::demo::relay_lifecycle(
            reader,
            requests,
            shutdown.clone(),
        ));
    }
    let file_tails =
        crate::adapter_roles::spawn_file_tails(&settings, bus.clone(), &metrics, shutdown.clone())?;
    let (gateway, router) = start_gateway(&settings, &bus, &metrics, &shutdown, demo).await?;
    let router = router
        .merge(herald_adapters::rest::router(
            bus.clone(),
            rest_config(&settings, settings.admin.unwrap_or(true))?,
            &metrics.labelled(&[("role", "rest")]),
        ))
        .merge(health_routes(bus, Some(kv), metrics));
    let listener = bind(&settings).await?;
    let address = listener.local_addr()?;
    announce(&settings, "serve", address);
    if demo {
        warn_demo(address);
    }
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
    dispatcher.await?;
    Ok(())
}

/// `herald gateway`.
pub async fn gateway(settings: Settings) -> anyhow::Result<()> {
    prepare_auth(&settings)?;
    let demo = settings.demo_on(false)?;
    let shutdown = shutdown_on_signal();
    let metrics = Metrics::new();
    let (bus, _) = connect_bus(
        Some(require_nats(&settings, "gateway")?),
        &settings.nats_auth,
        "herald-gateway",
    )
    .await?;
    let (gateway, router) = start_gateway(&settings, &bus, &metrics, &shutdown, demo).await?;
    let router = router.merge(health_routes(bus, None, metrics));
    let listener = bind(&settings).await?;
    announce(&settings, "gateway", listener.local_addr()?);
    if demo {
        warn_demo(listener.local_addr()?);
    }
    serve_http(listener, router, shutdown, &settings).await?;
    gateway.stopped(SHUTDOWN_DEADLINE).await;
    Ok(())
}

/// `herald dispatcher`.
pub async fn dispatcher(settings: Settings) -> anyhow::Result<()> {
    prepare_auth(&settings)?;
    let shutdown = shutdown_on_signal();
    let (bus, client) = connect_bus(
        Some(require_nats(&settings, "dispatcher")?),
        &settings.nats_auth,
        "herald-dispatcher",
    )
    .await?;
    let (kv, spent) = open_kv(client.as_ref(), settings.kv_replicas).await?;
    let dispatcher = herald_dispatcher::start(
        bus,
        kv,
        spent,
        dispatcher_config(&settings, client.as_ref()).await?,
        Metrics::new().labelled(&[("role", "dispatcher")]),
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
    prepare_auth(&settings)?;
    let shutdown = shutdown_on_signal();
    let metrics = Metrics::new();
    let (bus, _) = connect_bus(
        Some(require_nats(&settings, "adapter rest")?),
        &settings.nats_auth,
        "herald-rest",
    )
    .await?;
    if settings.api_key_hashes.is_empty() {
        bail!("the REST adapter needs at least one --api-key-hash (make one with `herald passwd`)");
    }
    let rest_metrics = metrics.labelled(&[("role", "rest")]);
    let router = herald_adapters::rest::router(
        bus.clone(),
        rest_config(&settings, settings.admin.unwrap_or(false))?,
        &rest_metrics,
    )
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
        &metrics.labelled(&[("role", "gateway")]),
        shutdown.clone(),
    )
    .await?;
    let mut router = gateway.router();
    if demo {
        router = router.merge(herald_gateway::demo::router(required_jwt_secret(
            settings,
            "the demo's tokens",
        )?));
    }
    Ok((gateway, router))
}

/// The demo's token endpoint is a hole by design: say so where operators look.
fn warn_demo(address: std::net::SocketAddr) {
    tracing::warn!(
        "the demo is on: anyone who can reach http://{address}/demo/token can mint a token for \
         any user name (valid {} minutes, no private channel); turn it off with --no-demo",
        herald_gateway::demo::DEMO_TOKEN_TTL_SECS / 60
    );
}

pub(crate) fn require_nats<'a>(settings: &'a Settings, role: &str) -> anyhow::Result<&'a str> {
    settings.nats.as_deref().with_context(|| {
        format!("`herald {role}` runs on NATS: pass --nats nats://host:4222 (or run `herald serve` for everything in one process)")
    })
}

/// Before a role connects anywhere: refuses a weak JWT secret, and bounds the argon2 hashes
/// of this process (API keys and passwords share the bound).
fn prepare_auth(settings: &Settings) -> anyhow::Result<()> {
    jwt_secret(settings)?;
    if let Err(e) =
        herald_core::credentials::HashLimit::set_process_wide(settings.max_concurrent_hashes)
    {
        tracing::warn!("{e}");
    }
    let limit = herald_core::credentials::HashLimit::process_wide();
    tracing::info!(
        max_concurrent_hashes = limit.max_concurrent(),
        "argon2 hashing bounded"
    );
    Ok(())
}

/// The HS256 secret, if one is configured; refused when shorter than 32 bytes (except where
/// `serve` allowed it after a warning).
fn jwt_secret(settings: &Settings) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(secret) = settings.jwt_secret.as_ref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Err(why) = herald_core::token::check_secret(secret.as_bytes()) {
        if !settings.allow_weak_jwt_secret {
            bail!("--jwt-secret: {why}");
        }
    }
    Ok(Some(secret.as_bytes().to_vec()))
}

fn required_jwt_secret(settings: &Settings, what: &str) -> anyhow::Result<Vec<u8>> {
    jwt_secret(settings)?.with_context(|| format!("--jwt-secret is required: it signs {what}"))
}

/// The keys that check client tokens: the HS256 secret and/or the configured public keys.
fn token_keys(settings: &Settings) -> anyhow::Result<herald_core::token::TokenKeys> {
    let keys = match jwt_secret(settings)? {
        Some(secret) => settings.jwt_public_keys.clone().with_secret(&secret),
        None => settings.jwt_public_keys.clone(),
    };
    if keys.is_empty() {
        bail!("--jwt-secret (or --jwt-public-key / --jwt-jwks) is required: it checks the tokens clients ident with");
    }
    Ok(keys)
}

async fn dispatcher_config(
    settings: &Settings,
    client: Option<&async_nats::Client>,
) -> anyhow::Result<herald_dispatcher::DispatcherConfig> {
    Ok(herald_dispatcher::DispatcherConfig {
        tokens: token_keys(settings)?,
        users: settings.users.clone(),
        gateway_timeout: settings.gateway_timeout,
        liveness_interval: settings.liveness_interval,
        lifecycle: lifecycle(settings, client).await?,
        history: history(settings, client).await?,
    })
}

/// History in JetStream on NATS (so it survives any Herald process), in memory on the
/// embedded bus (a restart starts a new epoch: no client recovers across it).
async fn history(
    settings: &Settings,
    client: Option<&async_nats::Client>,
) -> anyhow::Result<herald_core::history::History> {
    use herald_core::history::{History, HistoryStore, MemoryHistory, NatsHistory};
    let widest = settings.history.widest();
    let store: Arc<dyn HistoryStore> = match client {
        Some(client) => {
            Arc::new(NatsHistory::open(client.clone(), settings.kv_replicas, widest).await?)
        }
        None => Arc::new(MemoryHistory::new(widest)),
    };
    Ok(History::new(store, settings.history.clone()))
}

/// Lifecycle events when a webhook or `--lifecycle-events` wants them: kept in JetStream on
/// NATS (so they survive any Herald process), in memory on the embedded bus.
async fn lifecycle(
    settings: &Settings,
    client: Option<&async_nats::Client>,
) -> anyhow::Result<herald_dispatcher::lifecycle::Lifecycle> {
    use herald_dispatcher::lifecycle::Lifecycle;
    use herald_dispatcher::webhooks::WebhookConfig;
    let pusher_hooks = settings
        .pusher_apps
        .iter()
        .filter_map(|app| WebhookConfig::pusher(app));
    let webhooks: Vec<WebhookConfig> = settings
        .webhooks
        .iter()
        .cloned()
        .chain(pusher_hooks)
        .collect();
    if webhooks.is_empty() && !settings.lifecycle_events {
        return Ok(Lifecycle::off());
    }
    let log: Arc<dyn herald_core::event_log::EventLog> = match client {
        Some(client) => Arc::new(
            herald_core::event_log::NatsEventLog::open(client.clone(), settings.kv_replicas)
                .await?,
        ),
        None => Arc::new(herald_core::event_log::MemoryEventLog::new()),
    };
    Ok(Lifecycle::new(log, webhooks, settings.lifecycle_events))
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
        outbox_max_bytes: settings.outbox_max_bytes,
        max_channels_per_connection: settings.max_channels_per_connection,
        liveness_interval: settings.liveness_interval,
        auth_limit: settings.auth_limit.clone(),
        ident_timeout: settings.ident_timeout,
        max_connections: settings.max_connections,
        max_connections_per_address: settings.max_connections_per_address,
        allowed_origins: settings.allowed_origins.clone().unwrap_or(default_origins),
        publish: settings.publish.clone(),
        rpc_routes: settings.rpc_routes.clone(),
        rpc_timeout: settings.rpc_timeout,
        public_url: settings.public_url.clone(),
        users_by_interest: settings.users_by_interest,
        pusher_apps: settings.pusher_apps.clone(),
        ..Default::default()
    }
}

fn rest_config(
    settings: &Settings,
    admin: bool,
) -> anyhow::Result<herald_adapters::rest::RestConfig> {
    Ok(herald_adapters::rest::RestConfig {
        api_keys: ApiKeys::new(settings.api_key_hashes.clone()),
        auth_limit: settings.auth_limit.clone(),
        jwt_secret: jwt_secret(settings)?,
        max_token_ttl_secs: settings.max_token_ttl_secs,
        max_payload_bytes: settings.max_payload_bytes,
        admin,
        pusher_apps: settings.pusher_apps.clone(),
    })
}

pub(crate) async fn connect_bus(
    nats: Option<&str>,
    auth: &crate::nats_auth::NatsAuth,
    name: &str,
) -> anyhow::Result<(Arc<dyn Bus>, Option<async_nats::Client>)> {
    let Some(url) = nats else {
        tracing::info!("no --nats given: running on the embedded in-memory bus");
        return Ok((Arc::new(MemoryBus::new()), None));
    };
    // Each reconnect (and each message NATS dropped for a slow subscription) is a moment
    // this process may have missed messages: gateways catch up from history.
    let (gaps, gaps_seen) = tokio::sync::watch::channel(0u64);
    let options = async_nats::ConnectOptions::new()
        .name(name)
        // Each role reads replies under its own prefix, so NATS permissions can keep every
        // other role from reading them (ops/nats/herald-permissions.conf).
        .custom_inbox_prefix(format!("_INBOX.{name}"))
        .max_reconnects(None)
        .reconnect_delay_callback(NatsBus::reconnect_delay)
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let gaps = gaps.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!("NATS connected");
                        gaps.send_modify(|n| *n += 1);
                    }
                    async_nats::Event::SlowConsumer(sid) => {
                        tracing::warn!(
                            subscription = sid,
                            "NATS dropped messages of a slow subscription"
                        );
                        gaps.send_modify(|n| *n += 1);
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!("NATS connection lost; reconnecting")
                    }
                    // Mostly permission violations: this role's NATS user may not do something
                    // Herald needs, which otherwise shows only as timeouts.
                    async_nats::Event::ServerError(e) => tracing::error!(
                        error = %e,
                        "NATS refused an operation; check this role's NATS permissions \
                         (ops/nats/herald-permissions.conf)"
                    ),
                    other => tracing::info!(event = %other, "NATS"),
                }
            }
        });
    // A cluster is given as a comma-separated list; the client also learns the other
    // servers from the one it reaches, but a list lets it start while some are down.
    let client = crate::nats_auth::connect(url, auth, options).await?;
    tracing::info!(url = %crate::nats_auth::redact(url), "connected to NATS");
    let bus = NatsBus::new(client.clone()).with_gaps(gaps_seen);
    Ok((Arc::new(bus), Some(client)))
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
        .method_not_allowed_fallback(herald_adapters::rest::method_not_allowed)
        // Every listener serves these routes, so their fallback answers any unknown path in
        // JSON (a router may have only one fallback).
        .fallback(herald_adapters::rest::not_found)
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
