//! The gateway: holds WebSocket and SSE connections and nothing else durable.
//!
//! # Layout
//! - [`registry`]: the connections this gateway holds, indexed by user and channel; resolves an
//!   event's targets to connections grouped by `via`.
//! - `session`: the per-connection state machine (anonymous, then identified) turning client
//!   frames into dispatcher commands and reply frames; shared by both transports.
//! - `outbox`: each connection's bounded send queue and its slow-consumer policy.
//! - `ws` and `sse`: the two transports.
//! - `http_error`: every HTTP error as a JSON `error` frame, axum's refusals included.
//! - `delivery`: events and control messages from the bus, fanned out to connections.
//! - `recent`: ids of recently delivered events, so a copy sent again is dropped.
//! - `interest`: a subscription per channel and user this gateway holds, so it receives only
//!   their events.
//! - `gaps`: catching up from history on what the gateway missed while off NATS.
//! - `recovery`: replays of what a reconnecting client missed, live events waiting behind them.
//! - `heartbeat`: tells the dispatchers this gateway is alive, and that it left.
//! - `close_reports`: closed connections the dispatchers did not acknowledge, sent again.
//! - `admission`: caps on open connections per gateway and per client address, and the ident
//!   timeout.
//! - `origin`: the `Origin` check on every gateway route.
//! - [`pusher`]: the Pusher protocol at `/app/{key}`, on the same connections and commands.
//! - [`publish`] and [`rpc`]: what a client sends on: events to a channel, calls to backends,
//!   both over [`backend`]'s signed HTTP calls where a backend is configured.
//!
//! A gateway's local membership is the authority for its own connections: it changes only
//! after a dispatcher committed the change to KV and before the client hears `ok`, so an event
//! published after the client saw `ok` always finds the connection.

mod admission;
pub mod backend;
mod close_reports;
mod delivery;
pub mod demo;
mod gaps;
mod heartbeat;
mod http_error;
mod interest;
mod origin;
mod outbox;
pub mod publish;
pub mod pusher;
mod recent;
mod recovery;
pub mod registry;
pub mod rpc;
mod session;
mod sse;
mod ws;

use herald_core::auth_limit::AuthLimiter;
use herald_core::bus::Bus;
use herald_core::defaults;
use herald_core::metrics::{
    Histogram, HistogramFamily, Metric, Metrics, DEPTH_BUCKETS, LATENCY_BUCKETS,
};
use herald_core::requests::Requester;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a gateway needs to know.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Interval of server pings (WebSocket) and keep-alive comments (SSE).
    pub heartbeat: Duration,
    /// Largest client frame accepted; larger ones get `too_large`.
    pub max_frame_bytes: usize,
    /// Frames one connection may have queued before it counts as a slow consumer and is
    /// closed.
    pub outbox_capacity: usize,
    /// Bytes one connection may have queued before it counts as a slow consumer and is
    /// closed (a single larger frame still goes into an empty queue).
    pub outbox_max_bytes: usize,
    /// Channels one connection may have joined at once; a join beyond gets `forbidden`.
    pub max_channels_per_connection: usize,
    /// How long to wait for a dispatcher's answer.
    pub command_timeout: Duration,
    /// Failed idents after which a connection is closed.
    pub max_failed_idents: u32,
    /// Failed idents counted per client address, across connections.
    pub auth_limit: AuthLimiter,
    /// How often the gateway tells dispatchers it is alive.
    pub liveness_interval: Duration,
    /// Connections that have not identified within this long are closed (4003).
    pub ident_timeout: Duration,
    /// Open `/ws` and `/sse` connections this gateway accepts at most; more get 503.
    pub max_connections: usize,
    /// Open connections one client address may hold at most (more get 429); 0: no cap.
    pub max_connections_per_address: usize,
    /// Origins allowed to connect: empty means the request's own host, `*` any.
    pub allowed_origins: Vec<String>,
    /// Client publish: who may, how often, and the publish hook.
    pub publish: publish::PublishConfig,
    /// HTTP routes of `rpc` calls; methods no route takes go over the bus.
    pub rpc_routes: Vec<rpc::RpcRoute>,
    /// How long an RPC may take when its route does not say.
    pub rpc_timeout: Duration,
    /// The URL clients reach this gateway at, shown in the cluster view.
    pub public_url: Option<String>,
    /// One subscription per user held (a user's events reach only the gateways holding that
    /// user), or one for all users' events.
    pub users_by_interest: bool,
    /// Pusher apps clients may connect to at `/app/{key}`.
    pub pusher_apps: herald_core::pusher::PusherApps,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            heartbeat: Duration::from_millis(defaults::HEARTBEAT_MS),
            max_frame_bytes: defaults::MAX_PAYLOAD_BYTES,
            outbox_capacity: defaults::OUTBOX_FRAMES,
            outbox_max_bytes: defaults::OUTBOX_BYTES,
            max_channels_per_connection: defaults::CHANNELS_PER_CONNECTION,
            command_timeout: Duration::from_secs(5),
            max_failed_idents: 5,
            auth_limit: AuthLimiter::default(),
            liveness_interval: Duration::from_millis(defaults::LIVENESS_INTERVAL_MS),
            ident_timeout: Duration::from_millis(defaults::IDENT_TIMEOUT_MS),
            max_connections: 10_000,
            max_connections_per_address: defaults::CONNECTIONS_PER_ADDRESS,
            allowed_origins: Vec::new(),
            publish: publish::PublishConfig::default(),
            rpc_routes: Vec::new(),
            rpc_timeout: Duration::from_millis(defaults::RPC_TIMEOUT_MS),
            public_url: None,
            users_by_interest: true,
            pusher_apps: Default::default(),
        }
    }
}

struct GatewayMetrics {
    connections: Arc<Metric>,
    deliveries: Arc<Metric>,
    events: Arc<Metric>,
    slow_consumers: Arc<Metric>,
    delivery_latency: Arc<Histogram>,
    outbox_depth: Arc<Histogram>,
    rpc_durations: Arc<HistogramFamily>,
    /// Per Pusher app id: its open connections and the client events they sent.
    pusher: std::collections::HashMap<String, pusher::AppMetrics>,
}

/// Everything the connections of one gateway share.
pub(crate) struct Shared {
    id: String,
    bus: Arc<dyn Bus>,
    requests: Requester,
    config: GatewayConfig,
    registry: registry::Registry,
    metrics: GatewayMetrics,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    close_reports: close_reports::CloseReports,
    admission: Arc<admission::Admission>,
    /// Calls to backends: RPC routes and the publish hook.
    backend_client: reqwest::Client,
    rpc: rpc::Rpc,
    interest: interest::Interest,
}

/// A running gateway; its [`Gateway::router`] serves `/ws`, `/app/{key}`, `/sse` and
/// `/sse/{conn}`.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl Gateway {
    /// Starts a gateway on `bus`: subscribes to deliveries and control messages and starts the
    /// heartbeat. Fails fast when the bus refuses the subscriptions.
    pub async fn start(
        bus: Arc<dyn Bus>,
        config: GatewayConfig,
        metrics: &Metrics,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Gateway> {
        let id: String = {
            use rand::Rng;
            let mut rng = rand::thread_rng();
            (0..10)
                .map(|_| {
                    let n = rng.gen_range(0..36u8);
                    (if n < 10 { b'0' + n } else { b'a' + n - 10 }) as char
                })
                .collect()
        };
        let metrics = &metrics.labelled(&[("gateway", &id)]);
        let (close_reports, unacknowledged) = close_reports::CloseReports::new(metrics);
        let admission =
            admission::Admission::new(config.max_connections, config.max_connections_per_address);
        let rpc = rpc::Rpc::new(
            &config.rpc_routes,
            config.rpc_timeout,
            config.max_frame_bytes,
        );
        let (interest, deliveries) =
            interest::Interest::new(bus.clone(), metrics, config.users_by_interest).await?;
        let pusher_metrics = pusher::AppMetrics::for_apps(&config.pusher_apps, metrics);
        let shared = Arc::new(Shared {
            id,
            interest,
            backend_client: backend::client(),
            rpc,
            requests: Requester::new(bus.clone(), config.command_timeout).observed(metrics),
            bus,
            config,
            registry: registry::Registry::default(),
            metrics: GatewayMetrics {
                connections: metrics.gauge(
                    "herald_gateway_connections",
                    "Connections open on this gateway.",
                ),
                deliveries: metrics.counter(
                    "herald_gateway_deliveries_total",
                    "Event frames queued to connections.",
                ),
                events: metrics.counter(
                    "herald_gateway_events_total",
                    "Events received from dispatchers.",
                ),
                slow_consumers: metrics.counter(
                    "herald_gateway_slow_consumers_total",
                    "Connections closed because their send queue was full (frames or bytes).",
                ),
                delivery_latency: metrics.histogram(
                    "herald_gateway_delivery_latency_seconds",
                    "From a dispatcher accepting an event to a connection's writer taking its \
                     frame (one event frame in 16 per connection).",
                    LATENCY_BUCKETS,
                ),
                outbox_depth: metrics.histogram(
                    "herald_gateway_outbox_depth",
                    "Frames waiting in each connection's send queue, sampled every heartbeat.",
                    DEPTH_BUCKETS,
                ),
                pusher: pusher_metrics,
                rpc_durations: metrics.histogram_family(
                    "herald_gateway_rpc_duration_seconds",
                    "Client RPCs from the frame to the backend's answer, by route (the [[rpc]] \
                     prefix, or nats) and outcome (result, the error code, or app for an \
                     application code).",
                    LATENCY_BUCKETS,
                ),
            },
            shutdown,
            tracker: TaskTracker::new(),
            close_reports,
            admission,
        });
        delivery::start(&shared, deliveries).await?;
        close_reports::start(&shared, unacknowledged);
        heartbeat::start(&shared).await;
        sse::start_forwarding(&shared).await?;
        tracing::info!(gateway = %shared.id, "gateway ready");
        Ok(Gateway { shared })
    }

    /// This gateway's id (the prefix of its connection ids).
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The routes of this gateway.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/ws", axum::routing::get(ws::upgrade))
            .route("/app/{key}", axum::routing::get(ws::upgrade_pusher))
            .route("/sse", axum::routing::get(sse::stream))
            .route(
                "/sse/{conn}",
                axum::routing::post(sse::post_frame).layer(axum::extract::DefaultBodyLimit::max(
                    session::hard_frame_limit(&self.shared),
                )),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                self.shared.clone(),
                origin::check,
            ))
            .method_not_allowed_fallback(http_error::method_not_allowed)
            .with_state(self.shared.clone())
    }

    /// After shutdown fired: waits (up to `deadline`) for connections to close, then tells the
    /// dispatchers this gateway left so its connections are removed from KV at once.
    pub async fn stopped(self, deadline: Duration) {
        self.shared.tracker.close();
        if tokio::time::timeout(deadline, self.shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("gateway stopped with connections still closing");
        }
        heartbeat::announce_departure(&self.shared).await;
    }
}
