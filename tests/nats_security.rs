//! Herald on a secured NATS: TLS with a private CA, a user per role with the permissions that
//! `ops/nats/herald-permissions.conf` ships. The roles work end to end with nothing refused, a
//! wrong password stops a role at startup with a message that names the user but not the
//! password, and each role's credentials cannot do another role's part.

mod support;

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

/// Passwords of the per-role users.
const GATEWAY_PASSWORD: &str = "gateway-pass-9f2c";
const DISPATCHER_PASSWORD: &str = "dispatcher-pass-41ab";
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
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/ops/nats/herald-permissions.conf"
            ),
            dir.path().join("herald-permissions.conf"),
        )
        .expect("copy the shipped permissions");
        let port = free_port();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let config = format!(
            r#"
listen: "127.0.0.1:{port}"
log_file: "{log}"
jetstream {{ store_dir: "{store}" }}
tls {{ cert_file: "{cert}", key_file: "{key}", timeout: 5 }}
include ./herald-permissions.conf
authorization {{
  users = [
    {{ user: gateway, password: "{GATEWAY_PASSWORD}", permissions: $HERALD_GATEWAY }}
    {{ user: dispatcher, password: "{DISPATCHER_PASSWORD}", permissions: $HERALD_DISPATCHER }}
    {{ user: adapter, password: "{ADAPTER_PASSWORD}", permissions: $HERALD_ADAPTER }}
  ]
}}
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

    /// The server's URL with `user:password@` in it.
    fn url_as(&self, user: &str, password: &str) -> String {
        format!("tls://{user}:{password}@127.0.0.1:{}", self.nats.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }

    /// A plain client logged in as `user`, trusting the test CA; every server error it gets
    /// (permission violations) comes out of the returned channel.
    async fn client(
        &self,
        user: &str,
        password: &str,
    ) -> (
        async_nats::Client,
        tokio::sync::mpsc::UnboundedReceiver<String>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .user_and_password(user.into(), password.into())
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

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (the tests make their certificates with it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A throwaway CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=herald-test-ca"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write san.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
}

#[tokio::test]
async fn every_role_works_on_nats_with_tls_and_a_user_each() {
    let nats = SecuredNats::start();
    let ca = nats.ca();
    let plain_url = format!("nats://127.0.0.1:{}", nats.nats.port);
    let log = tempfile::NamedTempFile::new().expect("log file");
    let stderr = || log.reopen().expect("log");
    // Credentials three ways: flags, environment, and in the URL.
    let (_dispatcher, _) = herald_with(
        &[
            "dispatcher",
            "--nats",
            &plain_url,
            "--nats-user",
            "dispatcher",
            "--nats-password",
            DISPATCHER_PASSWORD,
            "--nats-tls-ca",
            &ca,
            "--jwt-secret",
            SECRET,
        ],
        &[("HERALD_LOG", "info")],
        stderr(),
    );
    let start_gateway = || {
        herald_with(
            &[
                "gateway",
                "--nats",
                &plain_url,
                "--listen",
                "127.0.0.1:0",
                "--jwt-secret",
                SECRET,
            ],
            &[
                ("HERALD_NATS_USER", "gateway"),
                ("HERALD_NATS_PASSWORD", GATEWAY_PASSWORD),
                ("HERALD_NATS_TLS_CA", &ca),
                ("HERALD_LOG", "info"),
            ],
            stderr(),
        )
    };
    let (_gateway, gateway) = start_gateway();
    let (_other_gateway, other_gateway) = start_gateway();
    let mut args = vec!["adapter".to_string(), "rest".to_string()];
    args.extend(common_args(Some(&nats.url_as("adapter", ADAPTER_PASSWORD))));
    args.extend(["--nats-tls-ca".to_string(), ca.clone()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_rest, rest) = herald_with(&refs, &[("HERALD_LOG", "info")], stderr());
    let rest = Rest::new(&rest.expect("rest address"));
    let gateway = gateway.expect("gateway address");

    let mut alice = Ws::user(&ws_url(&gateway), "alice", &["room"]).await;
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
    let mut bob = Ws::connect(&ws_url(&gateway)).await;
    assert_eq!(
        bob.ident(body["token"].as_str().expect("token")).await["type"],
        "ok"
    );
    // An SSE POST to another gateway is forwarded over herald.gw.<id>.sse.
    let sse = Sse::open(&gateway).await;
    let other_gateway = other_gateway.expect("other gateway address");
    let pong = sse
        .post(&other_gateway, json!({"type": "ping", "id": 1}))
        .await;
    assert_eq!(pong["type"], "pong", "{pong}");

    let server_log = nats.log();
    assert!(server_log.contains("Server is ready"), "{server_log}");
    assert!(
        !server_log.to_lowercase().contains("permissions violation"),
        "the shipped permissions refused something Herald needs:\n{server_log}"
    );
    let herald_log = std::fs::read_to_string(log.path()).expect("herald log");
    assert!(herald_log.contains("connected to NATS"), "{herald_log}");
    for password in [GATEWAY_PASSWORD, DISPATCHER_PASSWORD, ADAPTER_PASSWORD] {
        assert!(
            !herald_log.contains(password),
            "a password was logged:\n{herald_log}"
        );
    }
    assert!(herald_log.contains("tls://adapter:***@"), "{herald_log}");
}

#[tokio::test]
async fn a_wrong_password_stops_a_role_at_startup_without_showing_it() {
    let nats = SecuredNats::start();
    let ca = nats.ca();
    let wrong = "not-the-password-5e1";
    let log = herald_refuses(&[
        "dispatcher",
        "--nats",
        &nats.url_as("dispatcher", wrong),
        "--nats-tls-ca",
        &ca,
        "--jwt-secret",
        SECRET,
    ]);
    assert!(
        log.contains("refused to log in with user \"dispatcher\"")
            && log.to_lowercase().contains("authorization violation"),
        "{log}"
    );
    assert!(!log.contains(wrong), "the password was shown: {log}");
    assert!(log.contains("tls://dispatcher:***@127.0.0.1"), "{log}");

    let log = herald_refuses(&[
        "dispatcher",
        "--nats",
        &nats.url_as("dispatcher", DISPATCHER_PASSWORD),
        "--jwt-secret",
        SECRET,
    ]);
    assert!(
        log.contains("TLS") && !log.contains(DISPATCHER_PASSWORD),
        "{log}"
    );

    let log = herald_refuses(&[
        "dispatcher",
        "--nats",
        &nats.nats.url,
        "--nats-nkey",
        "/nonexistent/seed",
        "--jwt-secret",
        SECRET,
    ]);
    assert!(
        log.contains("cannot read --nats-nkey /nonexistent/seed"),
        "{log}"
    );
}

/// Waits for the server to refuse something on `errors`; returns what it said.
async fn refusal(errors: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(DEADLINE, errors.recv())
        .await
        .expect("the server refuses within the deadline")
        .expect("error channel open")
        .to_lowercase()
}

#[tokio::test]
async fn each_role_can_do_only_its_own_part() {
    let nats = SecuredNats::start();
    let (gateway, mut gateway_errors) = nats.client("gateway", GATEWAY_PASSWORD).await;
    let (adapter, mut adapter_errors) = nats.client("adapter", ADAPTER_PASSWORD).await;
    let (dispatcher, _) = nats.client("dispatcher", DISPATCHER_PASSWORD).await;
    let mut deliveries = dispatcher
        .subscribe("herald.notify")
        .await
        .expect("a dispatcher may read notify");
    dispatcher.flush().await.expect("flush");

    // A gateway forging an event, or a notify, is refused.
    for subject in ["herald.deliver", "herald.notify"] {
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
    let _ = adapter
        .subscribe("herald.deliver")
        .await
        .expect("subscribe");
    adapter.flush().await.expect("flush");
    let error = refusal(&mut adapter_errors).await;
    assert!(
        error.contains("permissions violation for subscription")
            && error.contains("herald.deliver"),
        "{error}"
    );
    for subject in [
        "herald.deliver",
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
    // What it may do goes through: the only message the dispatcher saw is the adapter's.
    adapter
        .publish("herald.notify", "real".into())
        .await
        .expect("publish");
    adapter.flush().await.expect("flush");
    let message = tokio::time::timeout(DEADLINE, futures::StreamExt::next(&mut deliveries))
        .await
        .expect("the adapter's notify arrives")
        .expect("subscription open");
    assert_eq!(
        message.payload.as_ref(),
        b"real",
        "the gateway's forged notify got through"
    );
}
