//! History and recovery, end to end, embedded and on a real nats-server: a client that comes
//! back with `since` gets exactly what it missed, in order, once, or `recovered: false` and
//! nothing; `GET …/history` for backends; the JetStream store's conformance; routing by
//! interest across four gateway processes.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

/// `ident` with a token and an optional `since`.
async fn ident_since(ws: &mut Ws, user: &str, since: Option<&str>) -> Value {
    let mut frame = json!({"type": "ident", "auth": {"token": token(user, &[])}});
    if let Some(since) = since {
        frame["since"] = json!(since);
    }
    ws.request(frame).await
}

async fn join_since(ws: &mut Ws, channel: &str, since: Option<&str>) -> Value {
    let mut frame = json!({"type": "join", "channel": channel});
    if let Some(since) = since {
        frame["since"] = json!(since);
    }
    ws.request(frame).await
}

fn pos(frame: &Value) -> String {
    frame["pos"]
        .as_str()
        .unwrap_or_else(|| panic!("no pos: {frame}"))
        .to_string()
}

/// The payloads of the next `n` events, with their `via`.
async fn payloads(ws: &mut Ws, n: usize) -> Vec<(Value, Value)> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let event = ws.event().await;
        seen.push((event["payload"].clone(), event["via"].clone()));
    }
    seen
}

/// Disconnect, miss events to the channel, the user and both, come back with `since`: each
/// missed event exactly once, in order, after the `ok` that says `recovered: true`.
async fn recovers_what_was_missed(herald: &Herald) {
    let mut ws = Ws::connect(&herald.ws_url).await;
    let identified = ident_since(&mut ws, "rita", None).await;
    let user_pos = pos(&identified);
    let joined = join_since(&mut ws, "room", None).await;
    assert!(joined.get("recovered").is_none(), "{joined}");
    herald
        .rest
        .notify("SEEN", json!({"channels": ["room"]}), json!("seen"))
        .await;
    let seen = ws.event().await;
    let room_pos = seen["pos"]["channels"]["room"]
        .as_str()
        .expect("event pos")
        .to_string();
    drop(ws);

    for n in 0..5 {
        herald
            .rest
            .notify(
                "ROOM",
                json!({"channels": ["room"]}),
                json!(format!("room-{n}")),
            )
            .await;
        if n % 2 == 0 {
            herald
                .rest
                .notify("DM", json!({"users": ["rita"]}), json!(format!("dm-{n}")))
                .await;
        }
    }
    herald
        .rest
        .notify(
            "BOTH",
            json!({"users": ["rita"], "channels": ["room"]}),
            json!("both"),
        )
        .await;

    let mut ws = Ws::connect(&herald.ws_url).await;
    let identified = ident_since(&mut ws, "rita", Some(&user_pos)).await;
    assert_eq!(identified["recovered"], true, "{identified}");
    let dms = payloads(&mut ws, 4).await;
    assert_eq!(
        dms,
        ["dm-0", "dm-2", "dm-4", "both"]
            .map(|p| (json!(p), json!({"users": ["rita"], "channels": []})))
    );
    let joined = join_since(&mut ws, "room", Some(&room_pos)).await;
    assert_eq!(joined["recovered"], true, "{joined}");
    let room = payloads(&mut ws, 5).await;
    let expected: Vec<Value> = (0..5).map(|n| json!(format!("room-{n}"))).collect();
    assert_eq!(
        room.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        expected
    );
    // "both" came through the user's replay: the channel's replay does not repeat it.
    ws.assert_quiet().await;

    // Live again: once, with positions for both targets.
    herald
        .rest
        .notify(
            "LIVE",
            json!({"users": ["rita"], "channels": ["room"]}),
            json!("live"),
        )
        .await;
    let live = ws.event().await;
    assert_eq!(live["payload"], "live");
    assert!(
        live["pos"]["users"]["rita"].is_string() && live["pos"]["channels"]["room"].is_string(),
        "{live}"
    );
    ws.assert_quiet().await;

    // A join with the newest position misses nothing and replays nothing.
    let latest = live["pos"]["channels"]["room"]
        .as_str()
        .unwrap()
        .to_string();
    let mut again = Ws::connect(&herald.ws_url).await;
    ident_since(&mut again, "rita-2", None).await;
    let joined = join_since(&mut again, "room", Some(&latest)).await;
    assert_eq!(joined["recovered"], true, "{joined}");
    again.assert_quiet().await;
}

/// `user` joins `channel` and goes away while `missed` events (payloads 0, 1, …) are sent to
/// it; answers the position it had.
async fn away_while_sent(herald: &Herald, user: &str, channel: &str, missed: u32) -> String {
    let mut ws = Ws::user(&herald.ws_url, user, &[]).await;
    let since = pos(&join_since(&mut ws, channel, None).await);
    drop(ws);
    for n in 0..missed {
        herald
            .rest
            .notify("N", json!({"channels": [channel]}), json!(n))
            .await;
    }
    since
}

/// `user` comes back to `channel` with `since` and is told `recovered: false`, with nothing
/// replayed; answers the connection and the join's reply.
async fn comes_back_to_nothing(
    herald: &Herald,
    user: &str,
    channel: &str,
    since: &str,
) -> (Ws, Value) {
    let mut ws = Ws::user(&herald.ws_url, user, &[]).await;
    let joined = join_since(&mut ws, channel, Some(since)).await;
    assert_eq!(joined["recovered"], false, "{joined}");
    ws.assert_quiet().await;
    (ws, joined)
}

/// Events posted while a client's replay runs reach it once each, in order after the replay.
async fn events_during_a_replay_arrive_once(herald: &Herald) {
    let since = away_while_sent(herald, "pat", "busy", 20).await;
    let rest = Rest::new(&herald.base);
    let poster = tokio::spawn(async move {
        for n in 20..120 {
            rest.notify("N", json!({"channels": ["busy"]}), json!(n))
                .await;
        }
    });
    let mut ws = Ws::user(&herald.ws_url, "pat", &[]).await;
    let joined = join_since(&mut ws, "busy", Some(&since)).await;
    assert_eq!(joined["recovered"], true, "{joined}");
    poster.await.expect("poster");
    let got: Vec<Value> = payloads(&mut ws, 120)
        .await
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(got, (0..120).map(|n| json!(n)).collect::<Vec<_>>());
    ws.assert_quiet().await;
}

/// More missed than the channel keeps: `recovered: false`, nothing replayed, a fresh `pos`.
async fn too_much_missed_recovers_nothing(herald: &Herald) {
    let since = away_while_sent(herald, "max", "flood", 5).await;
    let (mut ws, joined) = comes_back_to_nothing(herald, "max", "flood", &since).await;
    assert_ne!(pos(&joined), since);
    // A channel whose pattern keeps no history: no position, nothing to recover.
    let joined = join_since(&mut ws, "logs-a", Some(&since)).await;
    assert_eq!(
        (joined.get("pos"), &joined["recovered"]),
        (None, &json!(false)),
        "{joined}"
    );
    // A made-up position is refused as such.
    let refused = join_since(&mut ws, "flood-2", Some("not-a-position")).await;
    assert_eq!(refused["code"], "bad_request", "{refused}");
}

/// `GET /v1/channels/{c}/history` and `GET /v1/users/{u}/history`.
async fn history_over_rest(herald: &Herald) {
    for n in 0..3 {
        herald
            .rest
            .notify(
                "H",
                json!({"channels": ["hist"], "users": ["hank"]}),
                json!(n),
            )
            .await;
    }
    let (status, all) = herald.rest.get("/v1/channels/hist/history").await;
    assert_eq!(status, 200, "{all}");
    let events = all["events"].as_array().expect("events");
    assert_eq!(
        events
            .iter()
            .map(|e| e["payload"].clone())
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(events[0]["type"], "event");
    assert_eq!(events[0]["via"], json!({"users": [], "channels": ["hist"]}));
    let first = events[0]["pos"]["channels"]["hist"].as_str().expect("pos");
    let top = all["pos"].as_str().expect("top");
    let (_, nothing_new) = herald
        .rest
        .get(&format!("/v1/channels/hist/history?since={top}"))
        .await;
    assert_eq!(
        (&nothing_new["recovered"], &nothing_new["events"]),
        (&json!(true), &json!([]))
    );
    let (_, after) = herald
        .rest
        .get(&format!("/v1/channels/hist/history?since={first}&limit=1"))
        .await;
    assert_eq!(after["recovered"], true, "{after}");
    assert_eq!(after["more"], true, "{after}");
    assert_eq!(after["events"][0]["payload"], 1);
    let (_, newest) = herald.rest.get("/v1/users/hank/history?limit=2").await;
    let newest: Vec<Value> = newest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"].clone())
        .collect();
    assert_eq!(newest, [1, 2]);
    let (_, top) = herald.rest.get("/v1/users/nobody/history?limit=0").await;
    assert!(
        top["pos"].is_string() && top["events"] == json!([]),
        "{top}"
    );
    for bad in [
        "/v1/channels/hist/history?since=zzz",
        "/v1/channels/hist/history?limit=5000",
        "/v1/channels/hist/history?lmit=5",
        "/v1/channels/bad%20name/history",
    ] {
        let (status, body) = herald.rest.get(bad).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}: {body}"
        );
    }
}

/// A gateway's events per its metric.
async fn events_received(base: &str) -> f64 {
    metric(base, "herald_gateway_events_total").await
}

const CHANNEL_TABLES: &str = "[[channels]]\npattern = \"logs-*\"\nhistory_size = 0\n\n[[channels]]\npattern = \"flood*\"\nhistory_size = 3\n";

fn config_file() -> tempfile::TempPath {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), CHANNEL_TABLES).expect("write config");
    file.into_temp_path()
}

async fn all_scenarios(herald: &Herald) {
    recovers_what_was_missed(herald).await;
    events_during_a_replay_arrive_once(herald).await;
    too_much_missed_recovers_nothing(herald).await;
    history_over_rest(herald).await;
}

mod embedded {
    use super::*;

    #[tokio::test]
    async fn recovery_and_history() {
        let config = config_file();
        let herald = Herald::serve(None, &["--config", config.to_str().unwrap()]);
        all_scenarios(&herald).await;
    }

    /// Memory history does not survive a restart: a position from before recovers nothing.
    #[tokio::test]
    async fn a_restart_starts_a_new_epoch() {
        let mut herald = Herald::serve(None, &[]);
        let mut ws = Ws::user(&herald.ws_url, "eve", &[]).await;
        let since = pos(&join_since(&mut ws, "era", None).await);
        drop(ws);
        herald.process.kill();
        let herald = Herald::serve(None, &[]);
        herald
            .rest
            .notify("E", json!({"channels": ["era"]}), json!(1))
            .await;
        comes_back_to_nothing(&herald, "eve", "era", &since).await;
    }

    /// A connection that joins and leaves in a loop with `since` gets its replays for a burst
    /// (a reconnect re-joins up to 100 channels at once), then joins without them.
    #[tokio::test]
    async fn replays_are_budgeted_per_connection() {
        let herald = Herald::serve(None, &[]);
        let mut ws = Ws::user(&herald.ws_url, "loop", &[]).await;
        let since = pos(&join_since(&mut ws, "spin", None).await);
        assert_eq!(ws.leave("spin").await["type"], "ok");
        // The budget refills at 2/s while the loop runs, so a slow machine gets a few more
        // than 128 before the first refusal; a refusal must come all the same.
        let mut answers = Vec::new();
        for _ in 0..400 {
            let recovered = join_since(&mut ws, "spin", Some(&since)).await["recovered"].clone();
            assert_eq!(ws.leave("spin").await["type"], "ok");
            answers.push(recovered);
            if answers.last() == Some(&json!(false)) {
                break;
            }
        }
        assert!(answers[..128].iter().all(|r| *r == true), "{answers:?}");
        assert_eq!(
            answers.last(),
            Some(&json!(false)),
            "never refused: {answers:?}"
        );
    }

    /// Past `history_ttl_secs`, a position recovers nothing.
    #[tokio::test]
    async fn an_expired_position_recovers_nothing() {
        let herald = Herald::serve(None, &["--history-ttl-secs", "3"]);
        let mut ws = Ws::user(&herald.ws_url, "old", &[]).await;
        let since = pos(&join_since(&mut ws, "short", None).await);
        drop(ws);
        herald
            .rest
            .notify("S", json!({"channels": ["short"]}), json!(1))
            .await;
        let path = format!("/v1/channels/short/history?since={since}");
        eventually_within(Duration::from_secs(10), "the position expires", || async {
            herald.rest.get(&path).await.1["recovered"] == false
        })
        .await;
        comes_back_to_nothing(&herald, "old", "short", &since).await;
    }
}

mod on_nats {
    use super::*;

    #[tokio::test]
    async fn recovery_and_history() {
        let nats = Nats::start();
        let config = config_file();
        let herald = Herald::serve(Some(&nats.url), &["--config", config.to_str().unwrap()]);
        all_scenarios(&herald).await;
    }

    /// The JetStream store behaves as the memory one.
    #[tokio::test]
    async fn jetstream_store_conforms() {
        use herald_core::history::{conformance, NatsHistory};
        let nats = Nats::start();
        let client = async_nats::connect(&nats.url).await.expect("connect");
        let store = NatsHistory::open(client, 1, conformance::RETENTION)
            .await
            .expect("stream");
        conformance::run_all(std::sync::Arc::new(store)).await;
    }

    /// History outlives Herald's processes; a stream made again is a new epoch.
    #[tokio::test]
    async fn history_survives_herald_and_a_new_stream_is_a_new_epoch() {
        let nats = Nats::start();
        let mut herald = Herald::serve(Some(&nats.url), &[]);
        let mut ws = Ws::user(&herald.ws_url, "sam", &[]).await;
        let since = pos(&join_since(&mut ws, "kept", None).await);
        drop(ws);
        herald
            .rest
            .notify("K", json!({"channels": ["kept"]}), json!("while away"))
            .await;
        herald.process.kill();
        let herald = Herald::serve(Some(&nats.url), &[]);
        let mut ws = Ws::user(&herald.ws_url, "sam", &[]).await;
        let joined = join_since(&mut ws, "kept", Some(&since)).await;
        assert_eq!(joined["recovered"], true, "{joined}");
        assert_eq!(ws.event().await["payload"], "while away");
        drop(ws);

        let client = async_nats::connect(&nats.url).await.expect("connect");
        async_nats::jetstream::new(client)
            .delete_stream("HERALD_HISTORY")
            .await
            .expect("delete the stream");
        herald
            .rest
            .notify("K", json!({"channels": ["kept"]}), json!("new era"))
            .await;
        comes_back_to_nothing(&herald, "sam", "kept", &since).await;
    }

    /// Four gateways: an event to one user reaches only the gateway holding that user; an
    /// event to a channel with members on all four reaches each member once.
    #[tokio::test]
    async fn events_go_only_to_the_gateways_holding_their_targets() {
        let nats = Nats::start();
        let (_dispatcher, _) = herald(&["dispatcher", "--nats", &nats.url, "--jwt-secret", SECRET]);
        let mut gateways = Vec::new();
        for _ in 0..4 {
            let (process, address) = herald(&[
                "gateway",
                "--nats",
                &nats.url,
                "--listen",
                "127.0.0.1:0",
                "--jwt-secret",
                SECRET,
            ]);
            gateways.push((process, address.expect("gateway address")));
        }
        let (_rest_process, rest) = herald(&[
            "adapter",
            "rest",
            "--nats",
            &nats.url,
            "--listen",
            "127.0.0.1:0",
            "--jwt-secret",
            SECRET,
            "--api-key-hash",
            api_key_hash(),
        ]);
        let rest = Rest::new(&rest.expect("rest address"));
        let mut members = Vec::new();
        for (n, (_, base)) in gateways.iter().enumerate() {
            members.push(Ws::user(&ws_url(base), &format!("member{n}"), &["everyone"]).await);
        }
        let before: Vec<f64> =
            futures::future::join_all(gateways.iter().map(|(_, b)| events_received(b))).await;
        for n in 0..10 {
            rest.notify("DM", json!({"users": ["member2"]}), json!(n))
                .await;
        }
        for n in 0..10 {
            assert_eq!(members[2].event().await["payload"], n);
        }
        let after: Vec<f64> =
            futures::future::join_all(gateways.iter().map(|(_, b)| events_received(b))).await;
        let received: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        assert_eq!(
            received,
            [0.0, 0.0, 10.0, 0.0],
            "events received per gateway"
        );

        let id = rest
            .notify(
                "ALL",
                json!({"channels": ["everyone"], "users": ["member1"]}),
                json!("hi"),
            )
            .await;
        for member in &mut members {
            let event = member.event().await;
            assert_eq!(event["id"], id.as_str());
            member.assert_quiet().await;
        }
    }
}
