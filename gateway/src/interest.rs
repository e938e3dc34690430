//! Routing by interest: the gateway subscribes to the delivery subject of each channel and
//! user it holds a connection for, and drops the subscription when the last one goes, so NATS
//! sends an event only to the gateways that hold one of its targets.
//!
//! Every subscription feeds one stream, read by the delivery loop. An event to several targets
//! may come once per target; the loop's recent-ids set keeps the first. Each target also keeps
//! the last position this gateway saw in its stream, where `gaps` catches up from after the
//! gateway was off NATS.

use futures::stream::{BoxStream, SelectAll, StreamExt};
use herald_core::bus::{Bus, BusMessage};
use herald_core::history::{Position, Target};
use herald_core::metrics::{Metric, Metrics};
use herald_core::protocol::Positions;
use herald_core::{subjects, HeraldError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, OnceCell};
use tokio_util::sync::CancellationToken;

/// The subscriptions of one gateway, counted by the connections that need them.
pub(crate) struct Interest {
    bus: Arc<dyn Bus>,
    held: Mutex<Targets>,
    added: mpsc::UnboundedSender<BoxStream<'static, BusMessage>>,
    subscriptions: Arc<Metric>,
    /// Whether each user held gets a subscription of its own (else one takes all users).
    users_by_interest: bool,
}

/// Held targets by kind, so an event's positions are looked up by name without allocating.
#[derive(Default)]
struct Targets {
    channels: HashMap<String, Held>,
    users: HashMap<String, Held>,
}

impl Targets {
    fn of(&mut self, target: &Target) -> &mut HashMap<String, Held> {
        match target {
            Target::Channel(_) => &mut self.channels,
            Target::User(_) => &mut self.users,
        }
    }
}

struct Held {
    /// Connections of this gateway that need the target's events.
    connections: usize,
    /// The newest position this gateway saw in the target's stream.
    last: Option<Position>,
    /// Set once the subscription reached NATS.
    subscribed: Arc<OnceCell<()>>,
    /// Ends the subscription.
    cancel: CancellationToken,
}

/// The receiving end: every subscription's messages, as one stream.
pub(crate) struct Deliveries {
    merged: SelectAll<BoxStream<'static, BusMessage>>,
    added: mpsc::UnboundedReceiver<BoxStream<'static, BusMessage>>,
}

impl Deliveries {
    /// The next event message from any subscription; `None` once the gateway stopped.
    pub(crate) async fn next(&mut self) -> Option<BusMessage> {
        loop {
            tokio::select! {
                added = self.added.recv() => self.merged.push(added?),
                Some(message) = self.merged.next(), if !self.merged.is_empty() => {
                    return Some(message)
                }
            }
        }
    }
}

impl Interest {
    /// No interest yet but broadcasts, which every gateway receives.
    pub(crate) async fn new(
        bus: Arc<dyn Bus>,
        metrics: &Metrics,
        users_by_interest: bool,
    ) -> Result<(Interest, Deliveries), HeraldError> {
        let (added, receiver) = mpsc::unbounded_channel();
        let mut always = vec![subjects::DELIVER_BROADCAST];
        if !users_by_interest {
            always.push(subjects::DELIVER_ALL_USERS);
        }
        let mut merged = SelectAll::new();
        for subject in always {
            let subscription = bus
                .subscribe(subject, None)
                .await
                .map_err(|e| HeraldError::unavailable(e.to_string()))?;
            merged.push(subscription.into_stream());
        }
        let interest = Interest {
            bus,
            held: Mutex::default(),
            added,
            users_by_interest,
            subscriptions: metrics.gauge(
                "herald_gateway_subscriptions",
                "Channels and users this gateway holds connections for, each with a \
                 subscription of its own to their events (users only with users_by_interest).",
            ),
        };
        let deliveries = Deliveries {
            merged,
            added: receiver,
        };
        Ok((interest, deliveries))
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Targets> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more connection needs `target`'s events: returns once the gateway's subscription
    /// reached NATS, so that anything published from then on arrives. Pair with
    /// [`Interest::release`] (also when this fails).
    pub(crate) async fn hold(&self, target: &Target) -> Result<(), HeraldError> {
        let (subscribed, cancel) = {
            let mut held = self.held();
            let entry = held
                .of(target)
                .entry(target.name().to_string())
                .or_insert_with(|| {
                    self.subscriptions.inc();
                    Held {
                        connections: 0,
                        last: None,
                        subscribed: Arc::default(),
                        cancel: CancellationToken::new(),
                    }
                });
            entry.connections += 1;
            (entry.subscribed.clone(), entry.cancel.clone())
        };
        let own_subscription = self.users_by_interest || matches!(target, Target::Channel(_));
        subscribed
            .get_or_try_init(|| async {
                if !own_subscription {
                    return Ok(());
                }
                let subject = subjects::deliver_to(target);
                let subscription = self.bus.subscribe(&subject, None).await?;
                self.bus.flush().await?;
                let stream = subscription
                    .into_stream()
                    .take_until(cancel.cancelled_owned())
                    .boxed();
                // The loop is gone only when the gateway stops; nothing to deliver then.
                let _ = self.added.send(stream);
                Ok(())
            })
            .await
            .map(|_| ())
            .map_err(|e: herald_core::bus::BusError| {
                HeraldError::unavailable(format!(
                    "could not subscribe to the events, try again: {e}"
                ))
            })
    }

    /// A connection no longer needs `target`'s events; the last one ends the subscription.
    pub(crate) fn release(&self, target: &Target) {
        let mut held = self.held();
        let held = held.of(target);
        if let Some(entry) = held.get_mut(target.name()) {
            entry.connections -= 1;
            if entry.connections == 0 {
                entry.cancel.cancel();
                held.remove(target.name());
                self.subscriptions.dec();
            }
        }
    }

    /// Notes the positions an event had in the streams of targets this gateway holds.
    pub(crate) fn seen(&self, positions: &Positions) {
        if positions.is_empty() {
            return;
        }
        let mut guard = self.held();
        let held = &mut *guard;
        let kinds = [
            (&mut held.channels, &positions.channels),
            (&mut held.users, &positions.users),
        ];
        for (held, positions) in kinds {
            for (name, token) in positions {
                if let (Some(entry), Some(position)) = (held.get_mut(name), Position::parse(token))
                {
                    advance(&mut entry.last, position);
                }
            }
        }
    }

    /// Notes where `target`'s stream stood when a connection joined it (its `ok` position),
    /// unless this gateway already follows it.
    pub(crate) fn starts_at(&self, target: &Target, token: &str) {
        let Some(position) = Position::parse(token) else {
            return;
        };
        let mut held = self.held();
        if let Some(entry) = held.of(target).get_mut(target.name()) {
            if entry.last.is_none() {
                entry.last = Some(position);
            }
        }
    }

    /// Every held target with the last position seen in its stream.
    pub(crate) fn positions(&self) -> Vec<(Target, Position)> {
        let held = self.held();
        let channels = held
            .channels
            .iter()
            .filter_map(|(name, entry)| Some((Target::Channel(name.clone()), entry.last?)));
        let users = held
            .users
            .iter()
            .filter_map(|(name, entry)| Some((Target::User(name.clone()), entry.last?)));
        channels.chain(users).collect()
    }
}

/// Moves `last` on to `position` when it is newer (events of one stream may arrive out of
/// order from different dispatchers; a new epoch replaces the old).
fn advance(last: &mut Option<Position>, position: Position) {
    match last {
        Some(known) if known.epoch == position.epoch && known.seq >= position.seq => {}
        _ => *last = Some(position),
    }
}
