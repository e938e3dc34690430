//! Herald on a secured NATS: TLS with a private CA and a user per role, configured by the
//! files `ops/nats/` ships (`herald-users.conf` with its placeholders filled in, which includes
//! `herald-permissions.conf`). The roles work end to end with nothing refused, a wrong
//! password stops a role at startup with a message that names the user but not the password,
//! and each role's credentials cannot do another role's part.

mod support;

use serde_json::json;
use std::path::PathBuf;
use std::process::Command;
use support::*;

/// Passwords of the per-role users.
const GATEWAY_PASSWORD: &str = "gateway-pass-9f2c";
const ADAPTER_PASSWORD: &str = "adapter-pass-77d0";

/// A nats-server requiring TLS and a user per role, with its CA and log.
struct SecuredNats {
    nats: Nats,
    dir: tempfile::TempDir,
}

impl SecuredNats {
    fn start() -> SecuredNats {
        let dir = tempfile::tempdir().expect("tempdir");
        make_certificates(dir.path());
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/ops/nats/");
        std::fs::copy(
            format!("{shipped}herald-permissions.conf"),
            dir.path().join("herald-permissions.conf"),
        )
        .expect("copy the shipped permissions");
        let path = |name: &str| dir.path().join(name).display().to_string();
        // The dispatcher logs in with an NKey, as shipped: the server holds only its public
        // key. The gateway and the adapter log in with a password instead.
        let nkey = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["nkey", &path("dispatcher.nk")])
            .output()
            .expect("run herald nkey");
        assert!(nkey.status.success(), "herald nkey failed");
        let dispatcher_nkey = String::from_utf8_lossy(&nkey.stdout).trim().to_string();
        let users = std::fs::read_to_string(format!("{shipped}herald-users.conf"))
            .expect("read the shipped users")
            .replace(
                "nkey: REPLACE_WITH_GATEWAY_PUBLIC_NKEY",
                &format!("user: gateway, password: \"{GATEWAY_PASSWORD}\""),
            )
            .replace(
                "nkey: REPLACE_WITH_ADAPTER_PUBLIC_NKEY",
                &format!("user: adapter, password: \"{ADAPTER_PASSWORD}\""),
            )
            .replace("REPLACE_WITH_DISPATCHER_PUBLIC_NKEY", &dispatcher_nkey);
        assert!(
            !users.contains("REPLACE"),
            "a placeholder the test does not know: {users}"
        );
        std::fs::write(dir.path().join("herald-users.conf"), users).expect("write users");
        let port = free_port();
        let config = format!(
            r#"
listen: "127.0.0.1:{port}"
log_file: "{log}"
jetstream {{ store_dir: "{store}" }}
tls {{ cert_file: "{cert}", key_file: "{key}", timeout: 5 }}
include ./herald-users.conf
"#,
            log = path("nats.log"),
            store = path("jetstream"),
            cert = path("server.pem"),
            key = path("server.key"),
        );
        let config_path = dir.path().join("nats.conf");
        std::fs::write(&config_path, config).expect("write nats.conf");
        SecuredNats {
            nats: Nats::with_config(&config_path, port),
            dir,
        }
    }

    fn ca(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    /// The dispatcher's NKey seed file.
    fn dispatcher_seed(&self) -> String {
        self.dir.path().join("dispatcher.nk").display().to_string()
    }

    /// The server's URL with `user:password@` in it.
    fn url_as(&self, user: &str, password: &str) -> String {
        format!("tls://{user}:{password}@127.0.0.1:{}", self.nats.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }

    /// A plain client logged in with `login`, trusting the test CA; every server error it
    /// gets (permission violations) comes out of the returned channel.
    async fn client(&self, login: async_nats::ConnectOptions) -> (async_nats::Client, Errors) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let client = login
            .add_root_certificates(PathBuf::from(self.ca()))
            .require_tls(true)
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        let _ = tx.send(e.to_string());
                    }
                }
            })
            .connect(format!("127.0.0.1:{}", self.nats.port))
            .await
            .expect("test client connects");
        (client, rx)
    }
}

/// Server errors a test client received.
type Errors = tokio::sync::mpsc::UnboundedReceiver<String>;

/// Command-line arguments from one line of words.
/// A webhook receiver on loopback that keeps every event it is sent.
async fn webhook_receiver() -> (
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    String,
) {
    let events: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
    let kept = events.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let batch: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let mut kept = kept.lock().unwrap();
                kept.extend(batch["events"].as_array().cloned().unwrap_or_default());
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (events, url)
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// The strings of `args`, as the harness takes them.
fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn every_role_works_on_nats_with_tls_and_a_user_each() {
    let nats = SecuredNats::start();
    let (ca, port, seed) = (nats.ca(), nats.nats.port, nats.dispatcher_seed());
    let log = tempfile::NamedTempFile::new().expect("log file");
    let stderr = || log.reopen().expect("log");
    let info = [("HERALD_LOG", "info")];
    // A webhook, so the dispatcher uses the lifecycle stream and its consumer too.
    let (hooks, hook_url) = webhook_receiver().await;
    let config = nats.dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!("[[webhook]]\nurl = \"{hook_url}\"\nsecret = \"webhook-secret-0123456789\"\nbatch_ms = 50\n"),
    )
    .expect("write config");
    let config = config.to_string_lossy().into_owned();
    // Credentials three ways: an NKey seed file, a user and password in the environment, and
    // in the URL.
    let dispatcher = words(&format!(
        "dispatcher --nats nats://127.0.0.1:{port} --nats-nkey {seed} --nats-tls-ca {ca} \
         --jwt-secret {SECRET} --config {config}"
    ));
    let (_dispatcher, _) = herald_with(&refs(&dispatcher), &info, stderr());
    let gateway = words(&format!(
        "gateway --nats nats://127.0.0.1:{port} --listen 127.0.0.1:0 --jwt-secret {SECRET} \
         --client-publish room"
    ));
    let gateway_env = [
        ("HERALD_NATS_USER", "gateway"),
        ("HERALD_NATS_PASSWORD", GATEWAY_PASSWORD),
        ("HERALD_NATS_TLS_CA", &ca),
        ("HERALD_LOG", "info"),
    ];
    let (_gateway, first) = herald_with(&refs(&gateway), &gateway_env, stderr());
    let (_other_gateway, other) = herald_with(&refs(&gateway), &gateway_env, stderr());
    let mut rest = words(&format!("adapter rest --nats-tls-ca {ca}"));
    rest.extend(common_args(Some(&nats.url_as("adapter", ADAPTER_PASSWORD))));
    let (_rest, rest) = herald_with(&refs(&rest), &info, stderr());
    let rest = Rest::new(&rest.expect("rest address"));
    let (first, other) = (first.expect("address"), other.expect("address"));

    let mut alice = Ws::user(&ws_url(&first), "alice", &["room"]).await;
    let id = rest
        .notify("MSG", json!({"channels": ["room"]}), json!({"n": 1}))
        .await;
    assert_eq!(alice.event().await["id"], id.as_str());
    let (status, body) = rest.get("/v1/channels/room").await;
    assert_eq!((status, &body["connections"]), (200, &json!(1)), "{body}");
    // A one-time token uses the second KV bucket.
    let (status, body) = rest
        .post("/v1/tokens", json!({"user": "bob", "once": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut bob = Ws::connect(&ws_url(&first)).await;
    let once = body["token"].as_str().expect("token");
    assert_eq!(bob.ident(once).await["type"], "ok");
    // An SSE POST to another gateway is forwarded over herald.gw.<id>.sse.
    let sse = Sse::open(&first).await;
    let pong = sse.post(&other, json!({"type": "ping", "id": 1})).await;
    assert_eq!(pong["type"], "pong", "{pong}");
    // Two-way: a client publish (herald.publish), an RPC nobody serves (herald.rpc.>), a
    // batch (herald.notify.batch), and lifecycle events through JetStream to the webhook.
    let mut carol = Ws::user(&ws_url(&other), "carol", &["room"]).await;
    let published = carol
        .request(json!({"type": "publish", "channel": "room", "event": "HI", "payload": 1}))
        .await;
    assert_eq!(published["type"], "ok", "{published}");
    assert_eq!(alice.event().await["event"], "HI");
    let unserved = carol
        .request(json!({"type": "rpc", "method": "calc.double", "data": 1}))
        .await;
    assert_eq!(unserved["code"], "not_found", "{unserved}");
    let (status, body) = rest
        .post(
            "/v1/notify/batch",
            json!({"notifications": [{"event": "B", "targets": {"users": ["alice"]}}]}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(alice.event().await["event"], "B");
    // History: a gateway replays what alice missed (herald.history, HERALD_HISTORY by direct
    // get); REST reads it too.
    let since = alice.join("missed").await["pos"]
        .as_str()
        .expect("pos")
        .to_string();
    drop(alice);
    rest.notify("LATE", json!({"channels": ["missed"]}), json!(2))
        .await;
    let mut alice = Ws::user(&ws_url(&other), "alice", &[]).await;
    let joined = alice
        .request(json!({"type": "join", "channel": "missed", "since": since}))
        .await;
    assert_eq!(joined["recovered"], true, "{joined}");
    assert_eq!(alice.event().await["event"], "LATE");
    let (status, body) = rest.get("/v1/channels/missed/history").await;
    assert_eq!(
        (status, body["events"][0]["event"].as_str()),
        (200, Some("LATE")),
        "{body}"
    );
    eventually("the webhook got carol's connect", || async {
        hooks
            .lock()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "connect" && e["user"] == "carol")
    })
    .await;

    let server_log = nats.log();
    assert!(server_log.contains("Server is ready"), "{server_log}");
    assert!(
        !server_log.to_lowercase().contains("permissions violation"),
        "the shipped permissions refused something Herald needs:\n{server_log}"
    );
    let herald_log = std::fs::read_to_string(log.path()).expect("herald log");
    assert!(herald_log.contains("connected to NATS"), "{herald_log}");
    let seed = std::fs::read_to_string(&seed).expect("seed");
    for secret in [GATEWAY_PASSWORD, ADAPTER_PASSWORD, seed.trim()] {
        assert!(
            !herald_log.contains(secret),
            "a secret was logged:\n{herald_log}"
        );
    }
    assert!(herald_log.contains("tls://adapter:***@"), "{herald_log}");
}

#[tokio::test]
async fn a_wrong_password_stops_a_role_at_startup_without_showing_it() {
    let nats = SecuredNats::start();
    let ca = nats.ca();
    let wrong = "not-the-password-5e1";
    let gateway = |url: &str, tls: &str| {
        words(&format!(
            "gateway --nats {url} {tls} --jwt-secret {SECRET} --listen 127.0.0.1:0"
        ))
    };
    let log = herald_refuses(&refs(&gateway(
        &nats.url_as("gateway", wrong),
        &format!("--nats-tls-ca {ca}"),
    )));
    assert!(
        log.contains("refused to log in with user \"gateway\"")
            && log.to_lowercase().contains("authorization violation"),
        "{log}"
    );
    assert!(!log.contains(wrong), "the password was shown: {log}");
    assert!(log.contains("tls://gateway:***@127.0.0.1"), "{log}");

    // Without the CA, the server's certificate is refused, and said so.
    let log = herald_refuses(&refs(&gateway(
        &nats.url_as("gateway", GATEWAY_PASSWORD),
        "",
    )));
    assert!(
        log.contains("TLS") && !log.contains(GATEWAY_PASSWORD),
        "{log}"
    );

    let log = herald_refuses(&refs(&gateway(
        &nats.nats.url,
        "--nats-nkey /nonexistent/seed",
    )));
    assert!(
        log.contains("cannot read --nats-nkey /nonexistent/seed"),
        "{log}"
    );
}

/// Waits for the server to refuse something on `errors`; returns what it said.
async fn refusal(errors: &mut Errors) -> String {
    tokio::time::timeout(DEADLINE, errors.recv())
        .await
        .expect("the server refuses within the deadline")
        .expect("error channel open")
        .to_lowercase()
}

#[tokio::test]
async fn each_role_can_do_only_its_own_part() {
    let nats = SecuredNats::start();
    let login = |user: &str, password: &str| {
        async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
    };
    let (gateway, mut gateway_errors) = nats.client(login("gateway", GATEWAY_PASSWORD)).await;
    let (adapter, mut adapter_errors) = nats.client(login("adapter", ADAPTER_PASSWORD)).await;
    let seed = std::fs::read_to_string(nats.dispatcher_seed()).expect("seed");
    let (dispatcher, _) = nats
        .client(async_nats::ConnectOptions::with_nkey(
            seed.trim().to_string(),
        ))
        .await;
    let mut notifies = dispatcher
        .subscribe("herald.notify")
        .await
        .expect("a dispatcher may read notify");
    dispatcher.flush().await.expect("flush");

    // A gateway forging an event, a notify, history, or asking presence questions is refused.
    for subject in [
        "herald.to.u.victim",
        "herald.to.all",
        "herald.notify",
        "herald.hist.c.chat",
        "herald.query",
    ] {
        gateway
            .publish(subject, "forged".into())
            .await
            .expect("publish");
        gateway.flush().await.expect("flush");
        let error = refusal(&mut gateway_errors).await;
        assert!(
            error.contains("permissions violation for publish") && error.contains(subject),
            "{error}"
        );
    }
    // Nor may it read other roles' replies or the presence store.
    for subject in ["_INBOX.>", "_INBOX.herald-dispatcher.>", "$KV.herald.>"] {
        let _ = gateway.subscribe(subject).await.expect("subscribe");
        gateway.flush().await.expect("flush");
        let error = refusal(&mut gateway_errors).await;
        assert!(
            error.contains("permissions violation for subscription"),
            "{subject}: {error}"
        );
    }
    // An adapter cannot read the event stream, forge deliveries or open the KV.
    let _ = adapter.subscribe("herald.to.>").await.expect("subscribe");
    adapter.flush().await.expect("flush");
    let error = refusal(&mut adapter_errors).await;
    assert!(
        error.contains("permissions violation for subscription") && error.contains("herald.to.>"),
        "{error}"
    );
    for subject in [
        "herald.to.c.chat",
        "herald.hist.c.chat",
        "herald.control",
        "$JS.API.STREAM.INFO.KV_herald",
    ] {
        adapter.publish(subject, "x".into()).await.expect("publish");
        adapter.flush().await.expect("flush");
        let error = refusal(&mut adapter_errors).await;
        assert!(
            error.contains("permissions violation for publish"),
            "{subject}: {error}"
        );
    }
    // What it may do goes through: the only notify the dispatcher saw is the adapter's.
    adapter
        .publish("herald.notify", "real".into())
        .await
        .expect("publish");
    adapter.flush().await.expect("flush");
    let message = tokio::time::timeout(DEADLINE, futures::StreamExt::next(&mut notifies))
        .await
        .expect("the adapter's notify arrives")
        .expect("subscription open");
    assert_eq!(
        message.payload.as_ref(),
        b"real",
        "the gateway's forged notify got through"
    );
}

#[tokio::test]
async fn a_token_logs_in_and_a_wrong_one_is_refused_without_being_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = dir.path().join("nats.conf");
    let store = dir.path().join("jetstream");
    std::fs::write(
        &config,
        format!(
            "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {store:?} }}\n\
             authorization {{ token: \"right-token-3c9\" }}\n"
        ),
    )
    .expect("write nats.conf");
    let nats = Nats::with_config(&config, port);
    let dispatcher = |extra: &str| {
        words(&format!(
            "dispatcher --nats {} {extra} --jwt-secret {SECRET}",
            nats.url
        ))
    };
    let (_dispatcher, _) = herald(&refs(&dispatcher("--nats-token right-token-3c9")));
    // The token may also be the user part of the URL.
    let (_other, _) = herald(&refs(&words(&format!(
        "dispatcher --nats nats://right-token-3c9@127.0.0.1:{port} --jwt-secret {SECRET}"
    ))));

    let log = herald_refuses(&refs(&dispatcher("--nats-token wrong-token-81f")));
    assert!(
        log.contains("refused to log in with the token of --nats-token")
            && !log.contains("wrong-token-81f"),
        "{log}"
    );
    let log = herald_refuses(&refs(&dispatcher("")));
    assert!(
        log.contains("refused to log in with no credentials"),
        "{log}"
    );
}
