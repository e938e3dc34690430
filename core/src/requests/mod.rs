//! The typed request layer: every request one role sends another over the bus, the answer it
//! expects, and the one mapping of bus failures to errors a user can act on.
//!
//! A request type says which subject its responders listen on and whether asking again after a
//! lost answer is harmless; [`Requester`] sends it and decodes the [`Reply`], and
//! [`serve::serve`] runs the responder side. A new kind of request is one type and one handler.

pub mod serve;

use crate::bus::{failover, Bus, BusError};
use crate::messages::{
    CommandReply, EventAccepted, GatewayCommand, NotifyBatchRequest, NotifyRequest, Query,
};
use crate::metrics::{HistogramFamily, Metrics, LATENCY_BUCKETS};
use crate::protocol::notify::Notify;
use crate::HeraldError;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// A request one role sends another, and the answer it expects.
pub trait Request: Serialize + Send + Sync {
    /// What a successful answer carries.
    type Answer: Serialize + DeserializeOwned + Send;

    /// The subject its responders listen on.
    fn subject(&self) -> &'static str;

    /// Whether sending it again, after an answer was lost, does no harm. Such requests move on
    /// to another responder when the first goes silent ([`failover`]).
    fn may_repeat(&self) -> bool {
        true
    }
}

/// A responder's answer on the wire: the answer, or why there is none.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<A> {
    /// The request succeeded.
    Ok(A),
    /// The request was refused or failed.
    Failed(HeraldError),
}

impl<A> From<Result<A, HeraldError>> for Reply<A> {
    fn from(result: Result<A, HeraldError>) -> Self {
        match result {
            Ok(answer) => Reply::Ok(answer),
            Err(error) => Reply::Failed(error),
        }
    }
}

impl<A> From<Reply<A>> for Result<A, HeraldError> {
    fn from(reply: Reply<A>) -> Self {
        match reply {
            Reply::Ok(answer) => Ok(answer),
            Reply::Failed(error) => Err(error),
        }
    }
}

/// Sends typed requests to dispatchers and waits for their answers, each within one budget.
#[derive(Clone)]
pub struct Requester {
    bus: Arc<dyn Bus>,
    budget: Duration,
    /// Request durations by subject and outcome, when observed.
    durations: Option<Arc<HistogramFamily>>,
}

impl Requester {
    /// A requester on `bus` that waits at most `budget` for an answer (over all attempts).
    pub fn new(bus: Arc<dyn Bus>, budget: Duration) -> Self {
        Requester {
            bus,
            budget,
            durations: None,
        }
    }

    /// Records each request's duration in `metrics`
    /// (`herald_bus_request_duration_seconds{subject, outcome}`).
    pub fn observed(mut self, metrics: &Metrics) -> Self {
        self.durations = Some(metrics.histogram_family(
            "herald_bus_request_duration_seconds",
            "Requests to other roles over the bus (NATS or embedded), from sending to the \
             answer, by subject and outcome (ok, refused, unavailable).",
            LATENCY_BUCKETS,
        ));
        self
    }

    /// The bus it sends on.
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// Sends `request` and waits for its answer. A refusal comes back as the responder's
    /// error; a request nobody answered as `unavailable` (it may or may not have taken effect).
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Answer, HeraldError> {
        self.send_within(request, self.budget).await
    }

    /// [`Requester::send`] with a budget of its own.
    pub async fn send_within<R: Request>(
        &self,
        request: &R,
        budget: Duration,
    ) -> Result<R::Answer, HeraldError> {
        let body = Bytes::from(serde_json::to_vec(request).map_err(HeraldError::internal)?);
        let subject = request.subject();
        let started = std::time::Instant::now();
        let reply = if request.may_repeat() {
            failover::request(self.bus.as_ref(), subject, body, budget).await
        } else {
            self.bus.request(subject, body, budget).await
        };
        let result = match reply {
            Err(e) => Err(unanswered(e)),
            Ok(reply) => match serde_json::from_slice::<Reply<R::Answer>>(&reply) {
                Ok(reply) => reply.into(),
                Err(e) => Err(HeraldError::internal(format!("bad dispatcher reply: {e}"))),
            },
        };
        if let Some(durations) = &self.durations {
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) if e.code == crate::ErrorCode::Unavailable => "unavailable",
                Err(_) => "refused",
            };
            let labels = vec![
                ("subject".to_string(), subject.to_string()),
                ("outcome".to_string(), outcome.to_string()),
            ];
            durations
                .get_or_create(&labels)
                .observe(started.elapsed().as_secs_f64());
        }
        result
    }

    /// A gateway command (ident, join, leave, closed, heartbeat, ...).
    pub async fn command(&self, command: &GatewayCommand) -> Result<CommandReply, HeraldError> {
        self.send(command).await
    }

    /// Hands `notify` to a dispatcher as event `id`; returns the id once it was published to
    /// the gateways. Sending the same id again is harmless (gateways deliver it once).
    pub async fn notify(&self, id: &str, notify: &Notify) -> Result<String, HeraldError> {
        self.notify_request(&NotifyRequest {
            id: id.to_string(),
            notify,
            from: None,
            except: None,
        })
        .await
    }

    /// [`Requester::notify`] with everything a request may say: the publishing client, the
    /// connection not to deliver to.
    pub async fn notify_request(
        &self,
        request: &NotifyRequest<&Notify>,
    ) -> Result<String, HeraldError> {
        Ok(self.send(request).await?.id)
    }

    /// Hands `items` to one dispatcher, which publishes them in order; answers each item's id
    /// or why it was not published. Sending the same batch again is harmless (gateways deliver
    /// each id once).
    pub async fn notify_batch(
        &self,
        items: Vec<NotifyRequest<&Notify>>,
    ) -> Result<Vec<Result<String, HeraldError>>, HeraldError> {
        let replies = self.send(&NotifyBatchRequest { items }).await?;
        Ok(replies
            .into_iter()
            .map(|reply| Result::from(reply).map(|accepted: EventAccepted| accepted.id))
            .collect())
    }

    /// A presence query or disconnect; answers the REST body.
    pub async fn query(&self, query: &Query) -> Result<serde_json::Value, HeraldError> {
        self.send(query).await
    }
}

/// Turns a request nobody answered into the error a client (or backend) can act on.
pub fn unanswered(e: BusError) -> HeraldError {
    match e {
        BusError::NoResponders(_) => {
            HeraldError::unavailable("no dispatcher is running; retry shortly")
        }
        BusError::Timeout(_) => HeraldError::unavailable(
            "no dispatcher answered in time; the request may or may not have taken effect, retry",
        ),
        BusError::Unavailable(detail) => {
            HeraldError::unavailable(format!("message bus unavailable, retry: {detail}"))
        }
    }
}

impl Request for GatewayCommand {
    type Answer = CommandReply;

    fn subject(&self) -> &'static str {
        match self {
            // Served apart, so a storm of commands cannot delay them into a false "gateway lost".
            GatewayCommand::Heartbeat { .. } => crate::subjects::HEARTBEAT,
            _ => crate::subjects::CMD,
        }
    }

    fn may_repeat(&self) -> bool {
        GatewayCommand::may_repeat(self)
    }
}

impl<N: Serialize + Send + Sync> Request for NotifyRequest<N> {
    type Answer = EventAccepted;

    fn subject(&self) -> &'static str {
        // Apart from the adapters' subject, so NATS permissions keep a gateway from sending
        // anything but its clients' publishes, which a dispatcher checks against KV.
        match self.from {
            Some(_) => crate::subjects::PUBLISH,
            None => crate::subjects::NOTIFY,
        }
    }
}

impl<N: Serialize + Send + Sync> Request for NotifyBatchRequest<N> {
    type Answer = Vec<Reply<EventAccepted>>;

    fn subject(&self) -> &'static str {
        crate::subjects::NOTIFY_BATCH
    }
}

impl Request for Query {
    type Answer = serde_json::Value;

    fn subject(&self) -> &'static str {
        match self {
            Query::History { .. } => crate::subjects::HISTORY,
            _ => crate::subjects::QUERY,
        }
    }
}
