//! What every [`HistoryStore`] does under [`History`], run against each (unit tests for
//! memory, `tests/history.rs` for JetStream).

use super::*;

/// The retention [`run_all`] expects its store to keep: 3 events per subject, 3 s.
pub const RETENTION: Retention = Retention {
    size: 3,
    ttl: Duration::from_secs(3),
};

fn body(n: u32) -> Bytes {
    Bytes::from(format!("{{\"n\":{n}}}"))
}

fn bodies(page: &Page) -> Vec<Bytes> {
    page.events.iter().map(|(_, b)| b.clone()).collect()
}

/// Runs every check on `store`, which keeps [`RETENTION`] and holds nothing yet.
pub async fn run_all(store: Arc<dyn HistoryStore>) {
    let history = History::new(
        store.clone(),
        HistoryPolicy {
            default: RETENTION,
            channels: Vec::new(),
        },
    );
    let chat = Target::Channel("chat".into());
    let alice = Target::User("alice".into());

    // An empty stream has a top to recover from; what comes after it is replayed, in order.
    let empty = history.top(&chat).await.unwrap().unwrap();
    assert_eq!(empty.seq, 0);
    let first = history.append(&chat, "e1", body(1)).await.unwrap().unwrap();
    history
        .append(&alice, "e1", body(1))
        .await
        .unwrap()
        .unwrap();
    let second = history.append(&chat, "e2", body(2)).await.unwrap().unwrap();
    assert!(second.seq > first.seq);
    assert_eq!(history.top(&chat).await.unwrap().unwrap().seq, second.seq);
    let page = history.read(&chat, Some(empty), 10).await.unwrap();
    assert_eq!(page.recovered, Some(true));
    assert_eq!(bodies(&page), [body(1), body(2)]);
    assert_eq!(page.events[1].0.seq, second.seq);
    let page = history.read(&chat, Some(first), 10).await.unwrap();
    assert_eq!((page.recovered, bodies(&page)), (Some(true), vec![body(2)]));
    let page = history.read(&chat, Some(second), 10).await.unwrap();
    assert_eq!((page.recovered, page.events.len()), (Some(true), 0));

    // Pages: the first `limit`, and `more`.
    let page = history.read(&chat, Some(empty), 1).await.unwrap();
    assert_eq!((bodies(&page), page.more), (vec![body(1)], true));

    // A notify sent again under its id is stored once, at its first position.
    let again = history.append(&chat, "e2", body(2)).await.unwrap().unwrap();
    assert_eq!(again.seq, second.seq);
    assert_eq!(store.after(&chat.subject(), 0, 10).await.unwrap().len(), 2);

    // Without `since`: the newest events, up to `limit`.
    let page = history.read(&chat, None, 1).await.unwrap();
    assert_eq!((page.recovered, bodies(&page)), (None, vec![body(2)]));

    // More missed than a stream keeps: nothing replayed.
    for n in 3..=5 {
        history
            .append(&chat, &format!("e{n}"), body(n))
            .await
            .unwrap();
    }
    let page = history.read(&chat, Some(first), 10).await.unwrap();
    assert_eq!((page.recovered, page.events.len()), (Some(false), 0));
    assert_eq!(store.after(&chat.subject(), 0, 10).await.unwrap().len(), 3);

    // Another epoch, or a mangled position: nothing replayed.
    let foreign = Position {
        epoch: second.epoch ^ 1,
        ..second
    };
    let page = history.read(&chat, Some(foreign), 10).await.unwrap();
    assert_eq!(page.recovered, Some(false));

    // Targets are apart: alice's stream holds her one event.
    let page = history.read(&alice, None, 10).await.unwrap();
    assert_eq!(bodies(&page), [body(1)]);

    // Once the events after a position may have aged out, it recovers nothing.
    let carol = Target::User("carol".into());
    let start = history
        .append(&carol, "c1", body(1))
        .await
        .unwrap()
        .unwrap();
    history.append(&carol, "c2", body(2)).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let page = history.read(&carol, Some(start), 10).await.unwrap();
        match page.recovered {
            Some(true) => assert_eq!(bodies(&page), [body(2)]),
            _ => {
                assert!(page.events.is_empty());
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "carol's events never aged out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
