//! The dispatcher: authorizes, keeps presence in KV, and routes notify events to gateways.
//!
//! # Layout
//! - [`presence`]: the KV layout of connections, users and channels, and every read and write
//!   of it.
//! - `commands`: ident, join, leave and closed requests from gateways.
//! - `notify`: notify requests from adapters, kept in history and published to the gateways
//!   holding their targets.
//! - `turns`: the order events are stored and handed over in, while their waits overlap.
//! - `queries`: presence questions and disconnects from the REST adapter.
//! - `history`: history reads, for backends and for gateways replaying what a client missed.
//! - `liveness`: notices gateways that stopped heartbeating and clears what they held.
//! - [`lifecycle`]: the lifecycle events each presence change makes, appended to the event log.
//! - [`webhooks`]: delivers the event log to each `[[webhook]]`, signed, retried, at least once.
//!
//! Any number of dispatchers may run: they share a queue group, keep no state of their own
//! beyond caches, and agree through KV.

mod commands;
mod history;
pub mod lifecycle;
mod liveness;
mod notify;
pub mod presence;
mod pusher_members;
mod queries;
mod turns;
pub mod webhooks;

use herald_core::bus::Bus;
use herald_core::credentials::Users;
use herald_core::kv::Kv;
use herald_core::metrics::{Metric, Metrics};
use herald_core::requests::serve::{serve, Order};
use herald_core::subjects;
use herald_core::token::TokenKeys;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Commands and queries handled at once; more wait, so a burst cannot exhaust memory.
const MAX_CONCURRENT_REQUESTS: usize = 1024;

/// What a dispatcher needs to know.
#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// The keys that check `ident` tokens (HS256 secret and/or public keys).
    pub tokens: TokenKeys,
    /// Users who may ident with a password.
    pub users: Users,
    /// A gateway whose heartbeat has not changed for this long is considered dead.
    pub gateway_timeout: Duration,
    /// How often to look for dead gateways.
    pub liveness_interval: Duration,
    /// Lifecycle events and webhooks.
    pub lifecycle: lifecycle::Lifecycle,
    /// The history of every channel and user.
    pub history: herald_core::history::History,
}

/// Everything a request handler needs, shared by all of them.
pub(crate) struct Context {
    /// This dispatcher's id, random per process (in the cluster view).
    pub id: String,
    pub bus: Arc<dyn Bus>,
    pub presence: presence::Presence,
    pub spent_tokens: Arc<dyn Kv>,
    pub config: DispatcherConfig,
    pub events_accepted: Arc<Metric>,
    pub events_refused: Arc<Metric>,
    pub idents_failed: Arc<Metric>,
    pub lifecycle_events: Arc<Metric>,
    pub lifecycle_failed: Arc<Metric>,
    /// Events take turns to be stored in history, and to be handed to the gateways.
    pub store_turns: turns::Turns,
    pub hand_over_turns: turns::Turns,
}

/// Runs a dispatcher until `shutdown` fires: [`start`], then [`Dispatcher::stopped`].
pub async fn run(
    bus: Arc<dyn Bus>,
    kv: Arc<dyn Kv>,
    spent_tokens: Arc<dyn Kv>,
    config: DispatcherConfig,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    start(bus, kv, spent_tokens, config, metrics, shutdown)
        .await?
        .stopped()
        .await;
    Ok(())
}

/// A dispatcher whose subscriptions are in place: from now on it answers requests.
pub struct Dispatcher {
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Dispatcher {
    /// Waits for `shutdown`, then lets requests already taken finish (their requesters are
    /// waiting for the answer), up to a deadline.
    pub async fn stopped(self) {
        self.shutdown.cancelled().await;
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(5), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("dispatcher stopped with requests still in flight");
        }
        tracing::info!("dispatcher stopped");
    }
}

/// Starts a dispatcher: subscribes (failing fast when it cannot) and returns once requests
/// reach it.
///
/// `kv` holds presence; `spent_tokens` remembers one-time tokens already used (its entries may
/// expire after the longest one-time token lifetime).
pub async fn start(
    bus: Arc<dyn Bus>,
    kv: Arc<dyn Kv>,
    spent_tokens: Arc<dyn Kv>,
    config: DispatcherConfig,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<Dispatcher> {
    let context = Arc::new(Context {
        id: format!("{:08x}", rand::random::<u32>()),
        bus: bus.clone(),
        presence: presence::Presence::new(kv),
        spent_tokens,
        events_accepted: metrics.counter(
            "herald_dispatcher_events_accepted_total",
            "Notify events published to the gateways.",
        ),
        events_refused: metrics.counter(
            "herald_dispatcher_events_refused_total",
            "Notify requests refused (invalid, or the bus failed).",
        ),
        idents_failed: metrics.counter(
            "herald_dispatcher_idents_failed_total",
            "Ident requests refused.",
        ),
        lifecycle_events: metrics.counter(
            "herald_dispatcher_lifecycle_events_total",
            "Lifecycle events stored for webhooks and herald.events.* subscribers.",
        ),
        lifecycle_failed: metrics.counter(
            "herald_dispatcher_lifecycle_failures_total",
            "Lifecycle events the event log refused (webhooks miss them; see the log).",
        ),
        config,
        store_turns: Default::default(),
        hand_over_turns: Default::default(),
    });
    webhooks::open_readers(
        context.config.lifecycle.log.as_ref(),
        &context.config.lifecycle.webhooks,
    )
    .await?;
    let queue = Some(subjects::DISPATCHER_QUEUE);
    let commands = bus.subscribe(subjects::CMD, queue).await?;
    let heartbeats = bus.subscribe(subjects::HEARTBEAT, queue).await?;
    let notifies = bus.subscribe(subjects::NOTIFY, queue).await?;
    let publishes = bus.subscribe(subjects::PUBLISH, queue).await?;
    let batches = bus.subscribe(subjects::NOTIFY_BATCH, queue).await?;
    let queries = bus.subscribe(subjects::QUERY, queue).await?;
    let history_reads = bus.subscribe(subjects::HISTORY, queue).await?;
    bus.flush().await?;
    tracing::info!("dispatcher ready");

    let tracker = TaskTracker::new();
    let webhook_metrics = webhooks::WebhookMetrics {
        delivered: metrics.counter(
            "herald_webhook_events_delivered_total",
            "Lifecycle events webhooks accepted (2xx).",
        ),
        failures: metrics.counter(
            "herald_webhook_failures_total",
            "Webhook POSTs that failed (no answer or not 2xx); each is retried.",
        ),
    };
    for hook in &context.config.lifecycle.webhooks {
        tracker.spawn(webhooks::run(
            context.config.lifecycle.log.clone(),
            hook.clone(),
            webhook_metrics.clone(),
            shutdown.clone(),
        ));
    }
    let limit = Order::Concurrent(Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS)));
    tracker.spawn(liveness::run(context.clone(), shutdown.clone()));
    let c = context.clone();
    tracker.spawn(serve(
        commands,
        bus.clone(),
        limit.clone(),
        tracker.clone(),
        shutdown.clone(),
        move |command| commands::execute(c.clone(), command),
    ));
    // Heartbeats one by one, outside the request limit that commands share, so they are never
    // queued behind a storm of commands.
    let c = context.clone();
    tracker.spawn(serve(
        heartbeats,
        bus.clone(),
        Order::InOrder,
        tracker.clone(),
        shutdown.clone(),
        move |command| commands::execute(c.clone(), command),
    ));
    let c = context.clone();
    tracker.spawn(serve(
        queries,
        bus.clone(),
        limit.clone(),
        tracker.clone(),
        shutdown.clone(),
        move |query| queries::answer(c.clone(), query),
    ));
    let c = context.clone();
    tracker.spawn(serve(
        history_reads,
        bus.clone(),
        limit.clone(),
        tracker.clone(),
        shutdown.clone(),
        move |query| queries::answer_history(c.clone(), query),
    ));
    // Client publishes each after a KV read, concurrently; one connection's come one by one
    // (its gateway waits for each answer), so their order is kept.
    let c = context.clone();
    tracker.spawn(serve(
        publishes,
        bus.clone(),
        limit,
        tracker.clone(),
        shutdown.clone(),
        move |request| notify::client_published(c.clone(), request),
    ));
    // Batches one after another too, each event of a batch in order.
    let c = context.clone();
    tracker.spawn(serve(
        batches,
        bus.clone(),
        Order::InOrder,
        tracker.clone(),
        shutdown.clone(),
        move |batch| notify::publish_batch(c.clone(), batch),
    ));
    // Notifies take their turns as they arrive, so events reach history and the gateways in
    // the order this dispatcher accepted them, while the waits for history overlap.
    let pipelined = Order::Pipelined(Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS)));
    tracker.spawn(serve(
        notifies,
        bus,
        pipelined,
        tracker.clone(),
        shutdown.clone(),
        move |request| {
            let turns = notify::Turns::take(&context);
            notify::publish(context.clone(), request, turns)
        },
    ));
    Ok(Dispatcher { tracker, shutdown })
}
