//! The dispatcher: authorizes, keeps presence in KV, and routes notify events to gateways.
//!
//! # Layout
//! - [`presence`]: the KV layout of connections, users and channels, and every read and write
//!   of it.
//! - `commands`: ident, join, leave and closed requests from gateways.
//! - `notify`: notify requests from adapters, published once to every gateway.
//! - `queries`: presence questions and disconnects from the REST adapter.
//! - `liveness`: notices gateways that stopped heartbeating and clears what they held.
//!
//! Any number of dispatchers may run: they share a queue group, keep no state of their own
//! beyond caches, and agree through KV.

mod commands;
mod liveness;
mod notify;
pub mod presence;
mod queries;

use herald_core::bus::{Bus, BusMessage, Subscription};
use herald_core::credentials::Users;
use herald_core::kv::Kv;
use herald_core::metrics::{Metric, Metrics};
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
}

/// Everything a request handler needs, shared by all of them.
pub(crate) struct Context {
    pub bus: Arc<dyn Bus>,
    pub presence: presence::Presence,
    pub spent_tokens: Arc<dyn Kv>,
    pub config: DispatcherConfig,
    pub events_accepted: Arc<Metric>,
    pub events_refused: Arc<Metric>,
    pub idents_failed: Arc<Metric>,
}

impl Context {
    /// Sends `reply` to the requester, if the message asked for one.
    pub async fn reply(&self, message: &BusMessage, reply: Vec<u8>) {
        if let Some(to) = &message.reply {
            if let Err(e) = self.bus.publish(to, reply.into()).await {
                tracing::warn!(error = %e, "could not send a reply");
            }
        }
    }
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
        config,
    });
    let queue = Some(subjects::DISPATCHER_QUEUE);
    let commands = bus.subscribe(subjects::CMD, queue).await?;
    let heartbeats = bus.subscribe(subjects::HEARTBEAT, queue).await?;
    let notifies = bus.subscribe(subjects::NOTIFY, queue).await?;
    let queries = bus.subscribe(subjects::QUERY, queue).await?;
    bus.flush().await?;
    tracing::info!("dispatcher ready");

    let tracker = TaskTracker::new();
    let limit = Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS));
    tracker.spawn(liveness::run(context.clone(), shutdown.clone()));
    tracker.spawn(serve_concurrently(
        commands,
        context.clone(),
        limit.clone(),
        tracker.clone(),
        shutdown.clone(),
        |c, m| Box::pin(async move { commands::handle(&c, &m).await }),
    ));
    tracker.spawn(serve_heartbeats(
        heartbeats,
        context.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(serve_concurrently(
        queries,
        context.clone(),
        limit,
        tracker.clone(),
        shutdown.clone(),
        |c, m| Box::pin(async move { queries::handle(&c, &m).await }),
    ));
    tracker.spawn(notify::serve_in_order(notifies, context, shutdown.clone()));
    Ok(Dispatcher { tracker, shutdown })
}

/// Records gateway heartbeats one by one, outside the request limit that commands share, so
/// they are never queued behind a storm of commands.
async fn serve_heartbeats(
    mut subscription: Subscription,
    context: Arc<Context>,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = subscription.next() => match m { Some(m) => m, None => break },
        };
        commands::handle(&context, &message).await;
    }
}

type Handler =
    fn(Arc<Context>, BusMessage) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Handles each request of `subscription` in its own task, at most
/// [`MAX_CONCURRENT_REQUESTS`] at a time. Requests of one connection arrive one by one (the
/// gateway waits for each reply), so running different connections' requests concurrently
/// keeps their order.
async fn serve_concurrently(
    mut subscription: Subscription,
    context: Arc<Context>,
    limit: Arc<Semaphore>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    handler: Handler,
) {
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = subscription.next() => match m { Some(m) => m, None => break },
        };
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let context = context.clone();
        tracker.spawn(async move {
            handler(context, message).await;
            drop(permit);
        });
    }
}
