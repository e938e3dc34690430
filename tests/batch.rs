//! `POST /v1/notify/batch`, end to end: ids in order, every event delivered once and in order,
//! a bad item refuses the whole batch naming it, limits, and 503 without a dispatcher.

mod support;

use serde_json::{json, Value};
use support::*;

fn chat(n: usize) -> Value {
    json!({"event": "BATCH", "targets": {"channels": ["room"]}, "payload": {"n": n}})
}

async fn in_order_once(herald: &Herald) {
    let mut ws = Ws::user(&herald.ws_url, "ann", &["room"]).await;
    let notifications: Vec<Value> = (0..100).map(chat).collect();
    let (status, body) = herald
        .rest
        .post(
            "/v1/notify/batch",
            json!({ "notifications": notifications }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let ids = body["ids"].as_array().expect("ids").clone();
    assert_eq!(ids.len(), 100);
    for (n, id) in ids.iter().enumerate() {
        let event = ws.event().await;
        assert_eq!((&event["id"], &event["payload"]["n"]), (id, &json!(n)));
    }
    ws.assert_quiet().await;
}

#[tokio::test]
async fn a_batch_is_delivered_once_in_order_embedded() {
    in_order_once(&Herald::serve(None, &[])).await;
}

#[tokio::test]
async fn a_batch_is_delivered_once_in_order_on_nats() {
    let nats = Nats::start();
    in_order_once(&Herald::serve(Some(&nats.url), &[])).await;
}

#[tokio::test]
async fn a_bad_item_refuses_the_batch_and_names_it() {
    let herald = Herald::serve(None, &["--max-payload-bytes", "1000"]);
    let mut ws = Ws::user(&herald.ws_url, "ann", &["room"]).await;
    let big =
        json!({"event": "BIG", "targets": {"channels": ["room"]}, "payload": "x".repeat(2000)});
    let bad_name = json!({"event": "no spaces", "targets": {"channels": ["room"]}});
    let unknown_field = json!({"event": "E", "targets": {"users": ["u"]}, "colour": "red"});
    let (status, body) = herald
        .rest
        .post(
            "/v1/notify/batch",
            json!({"notifications": [chat(0), big, chat(2), bad_name, unknown_field]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let items = body["error"]["items"].as_array().expect("items");
    let named: Vec<(u64, &str)> = items
        .iter()
        .map(|i| {
            (
                i["index"].as_u64().unwrap(),
                i["error"]["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [(1, "too_large"), (3, "bad_request"), (4, "bad_request")],
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was sent"),
        "{body}"
    );
    // Nothing of it was delivered, not even the good items.
    ws.assert_quiet().await;

    for (notifications, what) in [
        (json!([]), "0 items"),
        (json!((0..101).map(chat).collect::<Vec<_>>()), "101 items"),
    ] {
        let (status, body) = herald
            .rest
            .post(
                "/v1/notify/batch",
                json!({ "notifications": notifications }),
            )
            .await;
        assert_eq!(status, 400, "{what}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1 to 100"),
            "{body}"
        );
    }
    let (status, body) = herald
        .rest
        .post("/v1/notify/batch", json!({"events": [chat(0)]}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = herald
        .rest
        .post_raw(
            "/v1/notify/batch",
            json!({"notifications": [chat(0)]}).to_string(),
            Some("wrong"),
        )
        .await;
    assert_eq!(status, 401);
    ws.assert_quiet().await;
}

#[tokio::test]
async fn without_a_dispatcher_a_batch_is_503() {
    let nats = Nats::start();
    let (rest, address) = herald(
        &{
            let mut args = vec!["adapter".to_string(), "rest".to_string()];
            args.extend(common_args(Some(&nats.url)));
            args
        }
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    let rest_client = Rest::new(&address.expect("rest address"));
    let (status, body) = rest_client
        .post("/v1/notify/batch", json!({"notifications": [chat(0)]}))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    drop(rest);
}
