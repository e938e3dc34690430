//! The dispatcher on the memory bus and KV: what it answers gateways and adapters, what it
//! writes to KV, and how it clears a gateway that went silent.

use bytes::Bytes;
use herald_core::bus::{Bus, MemoryBus};
use herald_core::event_log::{EventLog, MemoryEventLog};
use herald_core::kv::{Kv, MemoryKv};
use herald_core::lifecycle::{Kind, LifecycleEvent};
use herald_core::messages::{CommandReply, EventAccepted, GatewayCommand};
use herald_core::protocol::client_frames::IdentAuth;
use herald_core::requests::Reply;
use herald_core::token::{mint, now_secs, Claims};
use herald_core::{subjects, ErrorCode, HeraldError};
use herald_dispatcher::lifecycle::Lifecycle;
use herald_dispatcher::DispatcherConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SECRET: &[u8] = b"secret";

struct Fixture {
    bus: Arc<MemoryBus>,
    kv: Arc<MemoryKv>,
    /// Every lifecycle event the dispatcher made.
    events: Arc<MemoryEventLog>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start() -> Fixture {
    let bus = Arc::new(MemoryBus::new());
    let kv = Arc::new(MemoryKv::new());
    let events = Arc::new(MemoryEventLog::new());
    let shutdown = CancellationToken::new();
    let config = DispatcherConfig {
        tokens: herald_core::token::TokenKeys::new(
            Some(SECRET),
            herald_core::token::DEFAULT_MAX_TTL_SECS,
        ),
        users: Default::default(),
        gateway_timeout: Duration::from_millis(300),
        liveness_interval: Duration::from_millis(50),
        lifecycle: Lifecycle::new(events.clone(), Vec::new(), true),
        history: herald_core::history::History::new(
            Arc::new(herald_core::history::MemoryHistory::new(
                herald_core::history::HistoryPolicy::default().default,
            )),
            herald_core::history::HistoryPolicy::default(),
        ),
    };
    let task = tokio::spawn(herald_dispatcher::run(
        bus.clone(),
        kv.clone(),
        Arc::new(MemoryKv::new()),
        config,
        Default::default(),
        shutdown.clone(),
    ));
    // Ready once it answers a heartbeat.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let fixture = Fixture {
        bus,
        kv,
        events,
        shutdown,
        task,
    };
    while fixture.command(&heartbeat("warmup", 1)).await.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "dispatcher did not start"
        );
        tokio::task::yield_now().await;
    }
    fixture
}

fn heartbeat(gateway: &str, beat: u64) -> GatewayCommand {
    GatewayCommand::Heartbeat {
        gateway: gateway.into(),
        beat,
        connections: 0,
        url: None,
    }
}

fn token(user: &str, channels: &[&str], once: bool) -> String {
    let claims = Claims {
        sub: user.into(),
        exp: now_secs() + 60,
        iat: None,
        channels: channels.iter().map(|s| s.to_string()).collect(),
        publish: Vec::new(),
        jti: once.then(|| "abc123".to_string()),
        once,
    };
    mint(SECRET, &claims).expect("mint")
}

impl Fixture {
    async fn command(&self, command: &GatewayCommand) -> Option<Answer> {
        let body = Bytes::from(serde_json::to_vec(command).expect("encode"));
        let reply = self
            .bus
            .request(subjects::CMD, body, Duration::from_secs(5))
            .await
            .ok()?;
        let reply: Reply<CommandReply> = serde_json::from_slice(&reply).expect("reply");
        Some(reply.into())
    }

    async fn ident(&self, conn: &str, token: String) -> Answer {
        self.command(&GatewayCommand::Ident {
            conn: conn.into(),
            auth: IdentAuth::Token { token },
        })
        .await
        .expect("reply")
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("join").expect("clean exit");
    }
}

/// What a dispatcher answered a command.
type Answer = Result<CommandReply, HeraldError>;

fn failed_code(reply: Answer) -> ErrorCode {
    match reply {
        Err(error) => error.code,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn ident_and_join_are_authorized_and_recorded() {
    let f = start().await;
    match f
        .ident("gw1-1", token("alice", &["private-a*"], false))
        .await
    {
        Ok(CommandReply::Identified { user, grants, .. }) => {
            assert_eq!(user, "alice");
            assert_eq!(grants, vec!["private-a*"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        f.kv.get("conn.gw1.1").await.unwrap().as_deref(),
        Some(&b"alice"[..])
    );
    assert!(f.kv.get("user.alice.gw1.1").await.unwrap().is_some());

    let join = |channel: &str, grants: &[&str]| GatewayCommand::Join {
        conn: "gw1-1".into(),
        user: "alice".into(),
        grants: grants.iter().map(|s| s.to_string()).collect(),
        channel: channel.into(),
        member: None,
    };
    assert!(matches!(
        f.command(&join("chat", &[])).await,
        Some(Ok(CommandReply::Done))
    ));
    assert!(f.kv.get("chan.chat.gw1.1").await.unwrap().is_some());
    assert_eq!(
        failed_code(
            f.command(&join("private-b", &["private-a*"]))
                .await
                .unwrap()
        ),
        ErrorCode::Forbidden
    );
    assert!(matches!(
        f.command(&join("private-ab", &["private-a*"])).await,
        Some(Ok(CommandReply::Done))
    ));

    assert_eq!(
        failed_code(f.ident("gw1-2", "garbage".into()).await),
        ErrorCode::Unauthorized
    );
    assert_eq!(
        failed_code(f.ident("not an id", token("a", &[], false)).await),
        ErrorCode::BadRequest
    );
    f.stop().await;
}

#[tokio::test]
async fn closed_removes_what_the_connection_left_even_when_the_gateway_was_unsure() {
    let f = start().await;
    f.ident("gw1-1", token("carol", &[], false))
        .await
        .expect("identified");
    let join = GatewayCommand::Join {
        conn: "gw1-1".into(),
        user: "carol".into(),
        grants: vec![],
        channel: "chat".into(),
        member: None,
    };
    assert!(matches!(
        f.command(&join).await,
        Some(Ok(CommandReply::Done))
    ));
    // The gateway's ident and join timed out, so it knows neither the user nor the join for
    // sure; and it may send the same report twice.
    let closed = GatewayCommand::Closed {
        conn: "gw1-1".into(),
        user: None,
        channels: vec!["chat".into()],
        reason: "closed by client".into(),
    };
    for _ in 0..2 {
        assert!(matches!(
            f.command(&closed).await,
            Some(Ok(CommandReply::Done))
        ));
    }
    for key in ["conn.gw1.1", "user.carol.gw1.1", "chan.chat.gw1.1"] {
        assert!(f.kv.get(key).await.unwrap().is_none(), "{key} left behind");
    }
    // An ident that never reached KV leaves nothing to remove.
    let never = GatewayCommand::Closed {
        conn: "gw1-9".into(),
        user: None,
        channels: vec![],
        reason: "closed by client".into(),
    };
    assert!(matches!(
        f.command(&never).await,
        Some(Ok(CommandReply::Done))
    ));
    f.stop().await;
}

#[tokio::test]
async fn one_time_tokens_are_spent_on_first_use() {
    let f = start().await;
    let once = token("bob", &[], true);
    assert!(matches!(
        f.ident("g-1", once.clone()).await,
        Ok(CommandReply::Identified { .. })
    ));
    // The same connection's ident sent again (its answer was lost with a dispatcher) succeeds.
    assert!(matches!(
        f.ident("g-1", once.clone()).await,
        Ok(CommandReply::Identified { .. })
    ));
    assert_eq!(
        failed_code(f.ident("g-2", once).await),
        ErrorCode::Unauthorized
    );
    f.stop().await;
}

#[tokio::test]
async fn a_silent_gateway_is_cleared_and_announced() {
    let f = start().await;
    let mut events = f.events.reader("test").await.unwrap();
    assert!(matches!(
        f.command(&heartbeat("dead", 1)).await,
        Some(Ok(CommandReply::Done))
    ));
    f.ident("dead-7", token("carol", &[], false))
        .await
        .expect("identified");
    f.command(&GatewayCommand::Join {
        conn: "dead-7".into(),
        user: "carol".into(),
        grants: vec![],
        channel: "room".into(),
        member: None,
    })
    .await;
    // No more heartbeats: within the timeout plus a few checks, everything is gone, and
    // backends hear that the gateway was lost, with the connection's disconnect and what it
    // left empty.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen
        .iter()
        .any(|e: &LifecycleEvent| e.kind == Kind::Offline)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events so far: {seen:?}"
        );
        let batch = events
            .next_batch(100, Duration::from_millis(100))
            .await
            .unwrap();
        // The fixture's warm-up gateway went silent too.
        seen.extend(
            batch
                .into_iter()
                .filter(|e| e.gateway.as_deref() != Some("warmup")),
        );
        events.acknowledge().await.unwrap();
    }
    let kinds: Vec<Kind> = seen.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::Connect,
            Kind::Online,
            Kind::Join,
            Kind::Occupied,
            Kind::GatewayLost,
            Kind::Disconnect,
            Kind::Vacated,
            Kind::Offline
        ]
    );
    let lost = &seen[4];
    assert_eq!(
        (lost.gateway.as_deref(), lost.conns.clone()),
        (Some("dead"), Some(vec!["dead-7".to_string()]))
    );
    assert_eq!(seen[5].reason.as_deref(), Some("gateway_lost"));
    assert!(f.kv.entries("chan.*.dead.*").await.unwrap().is_empty());
    assert!(f.kv.entries("user.*.dead.*").await.unwrap().is_empty());
    assert!(f.kv.get("conn.dead.7").await.unwrap().is_none());
    assert!(f.kv.get("gw.dead").await.unwrap().is_none());
    f.stop().await;
}

#[tokio::test]
async fn notify_is_validated_and_published_once_with_an_id() {
    let f = start().await;
    let mut deliveries = f.bus.subscribe("herald.to.c.c", None).await.unwrap();
    let ask = |body: &'static str| {
        let bus = f.bus.clone();
        async move {
            let reply = bus
                .request(
                    subjects::NOTIFY,
                    Bytes::from_static(body.as_bytes()),
                    Duration::from_secs(5),
                )
                .await
                .expect("reply");
            serde_json::from_slice::<Reply<EventAccepted>>(&reply).expect("notify reply")
        }
    };
    let id = match ask(
        r#"{"id":"abc-1","notify":{"event":"E","targets":{"channels":["c"]},"payload":[1]}}"#,
    )
    .await
    {
        Reply::Ok(EventAccepted { id }) => id,
        other => panic!("{other:?}"),
    };
    assert_eq!(id, "abc-1");
    let delivery = deliveries.next().await.expect("delivery");
    let text = String::from_utf8_lossy(&delivery.payload).to_string();
    assert!(
        text.contains(&id) && text.contains(r#""payload":[1]"#),
        "{text}"
    );
    assert!(matches!(
        ask(r#"{"id":"abc-2","notify":{"event":"E","targets":{}}}"#).await,
        Reply::Failed(error) if error.code == ErrorCode::BadRequest
    ));
    assert!(matches!(
        ask(r#"{"id":"no spaces","notify":{"event":"E","targets":{"users":["u"]}}}"#).await,
        Reply::Failed(error) if error.code == ErrorCode::BadRequest
    ));
    f.stop().await;
}
