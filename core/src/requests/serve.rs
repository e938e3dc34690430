//! The responder side of the request layer: one loop that takes requests of one type off a
//! subscription, answers each, and stops on shutdown.

use super::{Reply, Request};
use crate::bus::{Bus, BusMessage, Subscription};
use crate::HeraldError;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How the requests of one subscription are taken.
#[derive(Clone)]
pub enum Order {
    /// One after another, each answered before the next is read: what this responder accepts
    /// happens in arrival order.
    InOrder,
    /// Each in a task of its own, at most as many at once as the semaphore has permits (shared
    /// across subscriptions, so a burst cannot exhaust memory). Requests of one connection
    /// arrive one by one (the gateway waits for each reply), so their order is kept.
    Concurrent(Arc<Semaphore>),
    /// Like `Concurrent`, but each handler is called in arrival order before its task starts,
    /// so what the handler does before its first await (taking a turn, say) follows arrival
    /// order while the rest runs concurrently.
    Pipelined(Arc<Semaphore>),
}

/// Answers the requests on `subscription` with `handler` until `shutdown` fires or the
/// subscription ends. A request that does not decode is answered `bad_request`. Tasks it spawns
/// are tracked by `tracker`, so a stopping responder can let them finish.
pub async fn serve<R, H, F>(
    mut subscription: Subscription,
    bus: Arc<dyn Bus>,
    order: Order,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    handler: H,
) where
    R: Request + DeserializeOwned + 'static,
    H: Fn(R) -> F + Send + Sync + 'static,
    F: Future<Output = Result<R::Answer, HeraldError>> + Send + 'static,
{
    let handler = Arc::new(handler);
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = subscription.next() => match m { Some(m) => m, None => break },
        };
        match &order {
            Order::InOrder => answer(bus.as_ref(), handler.as_ref(), message).await,
            Order::Concurrent(limit) => {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let (bus, handler) = (bus.clone(), handler.clone());
                tracker.spawn(async move {
                    answer(bus.as_ref(), handler.as_ref(), message).await;
                    drop(permit);
                });
            }
            Order::Pipelined(limit) => {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let started = start(handler.as_ref(), &message);
                let bus = bus.clone();
                tracker.spawn(async move {
                    let result = match started {
                        Ok(running) => running.await,
                        Err(refused) => Err(refused),
                    };
                    reply(bus.as_ref(), &message, result).await;
                    drop(permit);
                });
            }
        }
    }
}

/// Decodes one request and calls the handler: its future, or why the request does not decode.
fn start<R, H, F>(handler: &H, message: &BusMessage) -> Result<F, HeraldError>
where
    R: Request + DeserializeOwned,
    H: Fn(R) -> F,
{
    serde_json::from_slice::<R>(&message.payload)
        .map(handler)
        .map_err(|e| HeraldError::bad_request(format!("malformed request: {e}")))
}

/// Decodes one request, runs the handler and sends the reply, if the message asked for one.
async fn answer<R, H, F>(bus: &dyn Bus, handler: &H, message: BusMessage)
where
    R: Request + DeserializeOwned,
    H: Fn(R) -> F,
    F: Future<Output = Result<R::Answer, HeraldError>>,
{
    let result = match start(handler, &message) {
        Ok(running) => running.await,
        Err(refused) => Err(refused),
    };
    reply(bus, &message, result).await;
}

/// Sends the reply to a request, if the message asked for one.
async fn reply<A: serde::Serialize>(
    bus: &dyn Bus,
    message: &BusMessage,
    result: Result<A, HeraldError>,
) {
    if let Err(error) = &result {
        tracing::debug!(subject = %message.subject, %error, "request refused");
    }
    let Some(to) = &message.reply else { return };
    let reply = match serde_json::to_vec(&Reply::from(result)) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "could not encode a reply");
            return;
        }
    };
    if let Err(e) = bus.publish(to, Bytes::from(reply)).await {
        tracing::warn!(error = %e, "could not send a reply");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::MemoryBus;
    use crate::messages::Query;
    use crate::requests::Requester;
    use crate::ErrorCode;
    use std::time::Duration;

    async fn responder(bus: &MemoryBus, order: Order) -> (CancellationToken, Requester) {
        let subscription = bus.subscribe(crate::subjects::QUERY, None).await.unwrap();
        let shutdown = CancellationToken::new();
        let bus: Arc<dyn Bus> = Arc::new(bus.clone());
        tokio::spawn(serve(
            subscription,
            bus.clone(),
            order,
            TaskTracker::new(),
            shutdown.clone(),
            |query: Query| async move {
                match query {
                    Query::User { user } if user == "bad" => {
                        Err(HeraldError::new(ErrorCode::Forbidden, "not this one"))
                    }
                    Query::User { user } => Ok(serde_json::json!({ "user": user })),
                    _ => Err(HeraldError::bad_request("unsupported")),
                }
            },
        ));
        (shutdown, Requester::new(bus, Duration::from_secs(2)))
    }

    #[tokio::test]
    async fn answers_and_refusals_cross_the_bus_typed() {
        for order in [
            Order::InOrder,
            Order::Concurrent(Arc::new(Semaphore::new(2))),
            Order::Pipelined(Arc::new(Semaphore::new(2))),
        ] {
            let bus = MemoryBus::new();
            let (shutdown, requester) = responder(&bus, order).await;
            let answer = requester.query(&Query::User { user: "ann".into() }).await;
            assert_eq!(answer.unwrap()["user"], "ann");
            let refused = requester.query(&Query::User { user: "bad".into() }).await;
            let error = refused.unwrap_err();
            assert_eq!(
                (error.code, error.message.as_str()),
                (ErrorCode::Forbidden, "not this one")
            );
            shutdown.cancel();
        }
    }

    #[tokio::test]
    async fn a_malformed_request_is_answered_bad_request() {
        let bus = MemoryBus::new();
        let (shutdown, _) = responder(&bus, Order::InOrder).await;
        let reply = bus
            .request(
                crate::subjects::QUERY,
                Bytes::from_static(b"{\"op\":\"nope\"}"),
                Duration::from_secs(2),
            )
            .await
            .unwrap();
        let reply: Reply<serde_json::Value> = serde_json::from_slice(&reply).unwrap();
        assert!(matches!(reply, Reply::Failed(e) if e.code == ErrorCode::BadRequest));
        shutdown.cancel();
    }

    #[tokio::test]
    async fn nobody_listening_is_unavailable() {
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let requester = Requester::new(bus, Duration::from_secs(1));
        let error = requester
            .query(&Query::User { user: "ann".into() })
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::Unavailable);
        assert!(error.message.contains("no dispatcher"), "{error}");
    }
}
