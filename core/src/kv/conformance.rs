//! The behaviour every [`Kv`] implementation must show, as one suite run against each.

use super::Kv;
use bytes::Bytes;

/// Runs every check under keys starting with `prefix` (one token); panics on the first failure.
pub async fn run_all(kv: &dyn Kv, prefix: &str) {
    let key = format!("{prefix}.a.one");
    assert_eq!(
        kv.get(&key).await.expect("get"),
        None,
        "missing key reads None"
    );
    kv.put(&key, Bytes::from_static(b"1")).await.expect("put");
    assert_eq!(kv.get(&key).await.expect("get").as_deref(), Some(&b"1"[..]));
    kv.put(&key, Bytes::from_static(b"2")).await.expect("put");
    assert_eq!(kv.get(&key).await.expect("get").as_deref(), Some(&b"2"[..]));

    let once = format!("{prefix}.once.x");
    assert!(
        kv.create(&once, Bytes::new()).await.expect("create"),
        "first create wins"
    );
    assert!(
        !kv.create(&once, Bytes::new()).await.expect("create"),
        "second create loses"
    );

    kv.put(&format!("{prefix}.a.two"), Bytes::from_static(b"t"))
        .await
        .expect("put");
    kv.put(&format!("{prefix}.b.three"), Bytes::from_static(b"x"))
        .await
        .expect("put");
    let mut listed = kv.entries(&format!("{prefix}.a.*")).await.expect("entries");
    listed.sort();
    assert_eq!(
        listed,
        vec![
            (format!("{prefix}.a.one"), Bytes::from_static(b"2")),
            (format!("{prefix}.a.two"), Bytes::from_static(b"t")),
        ],
        "filter selects one token and returns latest values"
    );
    assert_eq!(
        kv.entries(&format!("{prefix}.*.three"))
            .await
            .expect("entries")
            .len(),
        1
    );

    kv.delete(&key).await.expect("delete");
    kv.delete(&key)
        .await
        .expect("deleting a missing key is fine");
    assert_eq!(
        kv.get(&key).await.expect("get"),
        None,
        "deleted key reads None"
    );
    let listed = kv.entries(&format!("{prefix}.a.*")).await.expect("entries");
    assert_eq!(listed.len(), 1, "deleted keys are not listed: {listed:?}");
    assert!(kv
        .entries(&format!("{prefix}.none.*"))
        .await
        .expect("entries")
        .is_empty());
    assert!(
        kv.create(&key, Bytes::new()).await.expect("create"),
        "create after delete"
    );
    assert!(kv.is_ready().await);
}
