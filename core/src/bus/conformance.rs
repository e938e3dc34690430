//! The behaviour every [`Bus`] implementation must show, as one suite run against each.
//!
//! The memory bus runs it in unit tests; the root `tests/` run it against a real nats-server.

use super::{Bus, BusError};
use bytes::Bytes;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// Runs every check; panics with a description on the first failure.
pub async fn run_all(bus: &dyn Bus, prefix: &str) {
    fan_out_reaches_every_subscriber(bus, prefix).await;
    queue_group_delivers_once(bus, prefix).await;
    request_gets_reply(bus, prefix).await;
    request_without_responders_fails_fast(bus, prefix).await;
    wildcards_match(bus, prefix).await;
}

async fn next_payload(sub: &mut super::Subscription) -> Bytes {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("message within deadline")
        .expect("subscription open")
        .payload
}

async fn fan_out_reaches_every_subscriber(bus: &dyn Bus, prefix: &str) {
    let subject = format!("{prefix}.fanout");
    let mut a = bus.subscribe(&subject, None).await.expect("subscribe a");
    let mut b = bus.subscribe(&subject, None).await.expect("subscribe b");
    bus.flush().await.expect("flush");
    for i in 0..3u8 {
        bus.publish(&subject, Bytes::from(vec![i]))
            .await
            .expect("publish");
    }
    for sub in [&mut a, &mut b] {
        for i in 0..3u8 {
            assert_eq!(
                next_payload(sub).await,
                Bytes::from(vec![i]),
                "in order, to all"
            );
        }
    }
}

async fn queue_group_delivers_once(bus: &dyn Bus, prefix: &str) {
    let subject = format!("{prefix}.queue");
    let mut a = bus
        .subscribe(&subject, Some("q"))
        .await
        .expect("subscribe a");
    let mut b = bus
        .subscribe(&subject, Some("q"))
        .await
        .expect("subscribe b");
    bus.flush().await.expect("flush");
    for i in 0..10u8 {
        bus.publish(&subject, Bytes::from(vec![i]))
            .await
            .expect("publish");
    }
    let mut seen = Vec::new();
    while seen.len() < 10 {
        tokio::select! {
            Some(m) = a.next() => seen.push(m.payload[0]),
            Some(m) = b.next() => seen.push(m.payload[0]),
            _ = tokio::time::sleep(WAIT) => panic!("queue group lost messages: got {seen:?}"),
        }
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..10).collect::<Vec<u8>>(),
        "each message exactly once"
    );
}

async fn request_gets_reply(bus: &dyn Bus, prefix: &str) {
    let subject = format!("{prefix}.echo");
    let mut server = bus
        .subscribe(&subject, Some("echo"))
        .await
        .expect("subscribe");
    bus.flush().await.expect("flush");
    let (reply, _) = tokio::join!(
        bus.request(&subject, Bytes::from_static(b"ping"), WAIT),
        async {
            let m = tokio::time::timeout(WAIT, server.next())
                .await
                .expect("request arrives")
                .expect("open");
            let to = m.reply.expect("request has a reply subject");
            let mut answer = m.payload.to_vec();
            answer.extend_from_slice(b"-pong");
            bus.publish(&to, Bytes::from(answer)).await.expect("reply");
        }
    );
    assert_eq!(reply.expect("reply"), Bytes::from_static(b"ping-pong"));
}

async fn request_without_responders_fails_fast(bus: &dyn Bus, prefix: &str) {
    let started = std::time::Instant::now();
    let result = bus
        .request(
            &format!("{prefix}.nobody"),
            Bytes::new(),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        matches!(result, Err(BusError::NoResponders(_))),
        "expected no responders, got {result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "fails fast");
}

async fn wildcards_match(bus: &dyn Bus, prefix: &str) {
    let mut star = bus
        .subscribe(&format!("{prefix}.w.*"), None)
        .await
        .expect("sub");
    let mut tail = bus
        .subscribe(&format!("{prefix}.>"), None)
        .await
        .expect("sub");
    bus.flush().await.expect("flush");
    bus.publish(&format!("{prefix}.w.x.y"), Bytes::from_static(b"deep"))
        .await
        .expect("publish");
    bus.publish(&format!("{prefix}.w.x"), Bytes::from_static(b"one"))
        .await
        .expect("publish");
    assert_eq!(next_payload(&mut star).await, Bytes::from_static(b"one"));
    assert_eq!(next_payload(&mut tail).await, Bytes::from_static(b"deep"));
    assert_eq!(next_payload(&mut tail).await, Bytes::from_static(b"one"));
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_bus_conforms() {
        super::run_all(&super::super::MemoryBus::new(), "t").await;
    }
}
