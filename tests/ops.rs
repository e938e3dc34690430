//! The files in `ops/` checked by the tools that will run them: `systemd-analyze verify` for the
//! units, `nginx -t` for the proxy configuration, and a WebSocket and an SSE stream carried
//! through that nginx configuration on loopback, over TLS, to a real `herald serve`.

mod support;

use futures::SinkExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use support::*;
use tokio_tungstenite::tungstenite::Message;

fn ops_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ops")
        .join(relative)
}

/// A tool the test command installs; its absence fails the test rather than skipping it.
fn tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain([
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]) {
        let candidate = Path::new(dir).join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{name} not found: scripts/test.sh installs it");
}

/// `text` with each `(from, to)` replaced, every `from` required: when the example changes
/// shape the test says so instead of testing something else.
fn substitute(text: &str, replacements: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (from, to) in replacements {
        assert!(out.contains(from), "ops file no longer contains {from:?}");
        out = out.replace(from, to);
    }
    out
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut units = Vec::new();
    for entry in std::fs::read_dir(ops_file("systemd")).expect("ops/systemd") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("unit");
        // The units start the installed binary; verify checks that it exists, so point them at
        // the one just built.
        let text = substitute(
            &text,
            &[(
                "/usr/local/bin/herald",
                env!("CARGO_BIN_EXE_herald").to_string(),
            )],
        );
        let copy = dir.path().join(path.file_name().expect("name"));
        std::fs::write(&copy, text).expect("write unit");
        units.push(copy);
    }
    assert!(units.len() >= 3, "{units:?}");
    let output = Command::new(tool("systemd-analyze"))
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Warnings (an unknown key, a typo in a section) leave the exit status 0: any output fails.
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
}

/// nginx running ops/nginx/herald.conf in front of `herald serve`, on loopback.
struct Nginx {
    _process: Process,
    port: u16,
    /// The DER of the certificate nginx serves, for clients to trust.
    certificate: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Checks the configuration with `nginx -t`, then starts nginx with it.
    fn start(herald: &str) -> Nginx {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |name: &str| dir.path().join(name).display().to_string();
        let (pem, key, certificate) = certificate();
        std::fs::write(path("cert.pem"), pem).expect("write certificate");
        std::fs::write(path("key.pem"), key).expect("write key");
        let port = free_port();
        let example = std::fs::read_to_string(ops_file("nginx/herald.conf")).expect("example");
        let site = substitute(
            &example,
            &[
                ("server 127.0.0.1:8080;", format!("server {herald};")),
                ("server 127.0.0.1:8082;", format!("server {herald};")),
                ("server 127.0.0.1:8081;", format!("server {herald};")),
                ("listen 443 ssl", format!("listen 127.0.0.1:{port} ssl")),
                ("/etc/ssl/certs/events.example.com.pem", path("cert.pem")),
                ("/etc/ssl/private/events.example.com.key", path("key.pem")),
            ],
        );
        std::fs::write(path("herald.conf"), site).expect("write site");
        // The example is a server block for the http context; the main file is the test's.
        let temp = |name: &str| format!("{name} {};", path(name));
        let main = format!(
            "daemon off;\nmaster_process off;\npid {pid};\nerror_log {log} warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  {} {} {} {} {}\n  include {site};\n}}\n",
            temp("client_body_temp_path"),
            temp("proxy_temp_path"),
            temp("fastcgi_temp_path"),
            temp("uwsgi_temp_path"),
            temp("scgi_temp_path"),
            pid = path("nginx.pid"),
            log = path("error.log"),
            site = path("herald.conf"),
        );
        std::fs::write(path("nginx.conf"), main).expect("write nginx.conf");
        let prefix = dir.path().display().to_string();
        let conf = path("nginx.conf");
        let check = Command::new(tool("nginx"))
            .args(["-t", "-p", &prefix, "-c", &conf])
            .output()
            .expect("run nginx -t");
        let said = String::from_utf8_lossy(&check.stderr).to_string();
        assert!(check.status.success(), "nginx -t: {said}");
        assert!(!said.contains("[warn]"), "nginx -t warns: {said}");
        let child = Command::new(tool("nginx"))
            .args(["-p", &prefix, "-c", &conf])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let process = Process {
            child,
            name: "nginx".into(),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < DEADLINE, "nginx did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Nginx {
            _process: process,
            port,
            certificate,
            _dir: dir,
        }
    }

    fn base(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// An HTTPS client that trusts nginx's certificate.
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_der(&self.certificate).expect("certificate"),
            )
            .resolve("localhost", ([127, 0, 0, 1], self.port).into())
            .build()
            .expect("client")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nginx_example_passes_nginx_t_and_carries_websocket_and_sse() {
    let herald = Herald::serve(None, &[]);
    let nginx = Nginx::start(host_port(&herald.base));
    let rest = Rest::new(&herald.base);

    // WebSocket through nginx (TLS, upgrade headers).
    let address = format!("127.0.0.1:{}", nginx.port);
    let (tls, _) = tls_connect(&address, &[&nginx.certificate]).await;
    let url = format!("wss://localhost:{}/ws", nginx.port);
    let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tls)
        .await
        .expect("WebSocket handshake through nginx");
    assert_eq!(next_text(&mut ws).await["type"], "welcome");
    for frame in [
        json!({"type": "ident", "id": 1, "auth": {"token": token("ann", &[])}}),
        json!({"type": "join", "id": 2, "channel": "news"}),
    ] {
        ws.send(Message::text(frame.to_string()))
            .await
            .expect("send");
        let reply = next_text(&mut ws).await;
        assert_eq!(reply["type"], "ok", "{reply}");
    }

    // SSE through nginx (unbuffered): the stream, and frames POSTed through nginx too.
    let client = nginx.client();
    let sse = Sse::open_with(client.clone(), &nginx.base()).await;
    let mut sse = sse;
    for frame in [
        json!({"type": "ident", "id": 1, "auth": {"token": token("bob", &[])}}),
        json!({"type": "join", "id": 2, "channel": "news"}),
    ] {
        let reply = sse.post(&nginx.base(), frame).await;
        assert_eq!(reply["type"], "ok", "{reply}");
    }

    // An event reaches both, at once: nginx buffers neither.
    rest.notify("NEWS", json!({"channels": ["news"]}), json!({"n": 1}))
        .await;
    let event = next_text(&mut ws).await;
    assert_eq!(
        (event["event"].clone(), event["payload"]["n"].clone()),
        (json!("NEWS"), json!(1))
    );
    let event = sse.next_frame().await;
    assert_eq!(
        (event["event"].clone(), event["payload"]["n"].clone()),
        (json!("NEWS"), json!(1))
    );

    // The REST API stays off the public side: nginx refuses it outside 10.0.0.0/8.
    let refused = client
        .get(format!("{}/v1/channels", nginx.base()))
        .send()
        .await
        .expect("GET /v1/channels through nginx");
    assert_eq!(refused.status().as_u16(), 403);
}

/// The strings of `args`, as the harness takes them.
fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// `host:port` of a base URL.
fn host_port(base: &str) -> &str {
    base.split_once("://")
        .map(|(_, rest)| rest)
        .expect("base URL")
}

/// The three nodes of `ops/nats/node{1,2,3}.conf` with the shipped users and permissions, on
/// loopback: only ports, paths and the route host names are changed, and an NKey made by
/// `herald nkey` fills each role's placeholder.
struct OpsCluster {
    nodes: Vec<Nats>,
    /// Each node's monitoring port.
    monitors: Vec<u16>,
    dir: tempfile::TempDir,
}

impl OpsCluster {
    fn start() -> OpsCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        make_certificates(dir.path());
        let path = |name: &str| dir.path().join(name).display().to_string();
        let mut users = std::fs::read_to_string(ops_file("nats/herald-users.conf")).expect("users");
        for role in ["gateway", "dispatcher", "adapter"] {
            let made = Command::new(env!("CARGO_BIN_EXE_herald"))
                .args(["nkey", &path(&format!("{role}.nk"))])
                .output()
                .expect("run herald nkey");
            assert!(made.status.success(), "herald nkey failed");
            let public = String::from_utf8_lossy(&made.stdout).trim().to_string();
            let placeholder = format!("REPLACE_WITH_{}_PUBLIC_NKEY", role.to_uppercase());
            users = substitute(&users, &[(placeholder.as_str(), public)]);
        }
        assert!(
            !users.contains("REPLACE"),
            "a placeholder the test does not know"
        );
        std::fs::write(path("herald-users.conf"), users).expect("write users");
        std::fs::copy(
            ops_file("nats/herald-permissions.conf"),
            path("herald-permissions.conf"),
        )
        .expect("copy permissions");
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut nodes = Vec::new();
        for (i, &(client, monitor, route)) in ports.iter().enumerate() {
            let n = i + 1;
            let shipped =
                std::fs::read_to_string(ops_file(&format!("nats/node{n}.conf"))).expect("node");
            let mut replacements = vec![
                (
                    "listen: 0.0.0.0:4222",
                    format!("listen: 127.0.0.1:{client}"),
                ),
                ("http: 127.0.0.1:8222", format!("http: 127.0.0.1:{monitor}")),
                ("listen: 0.0.0.0:6222", format!("listen: 127.0.0.1:{route}")),
                ("/etc/nats/tls/server.pem", path("server.pem")),
                ("/etc/nats/tls/server.key", path("server.key")),
                ("/etc/nats/tls/ca.pem", path("ca.pem")),
            ];
            let store = format!("/var/lib/nats/herald-{n}");
            replacements.push((store.as_str(), path(&format!("store-{n}"))));
            let hosts: Vec<String> = (1..=3).map(|m| format!("nats-{m}:6222")).collect();
            for (m, host) in hosts.iter().enumerate() {
                replacements.push((host.as_str(), format!("127.0.0.1:{}", ports[m].2)));
            }
            let config = dir.path().join(format!("node{n}.conf"));
            std::fs::write(&config, substitute(&shipped, &replacements)).expect("write node");
            nodes.push(Nats::with_config(&config, client));
        }
        let monitors = ports.iter().map(|&(_, monitor, _)| monitor).collect();
        OpsCluster {
            nodes,
            monitors,
            dir,
        }
    }

    /// Waits until every node says JetStream is healthy (routes up, a meta leader elected).
    async fn ready(&self) {
        for monitor in &self.monitors {
            let url = format!("http://127.0.0.1:{monitor}/healthz");
            eventually("a node's JetStream is healthy", || async {
                matches!(reqwest::get(&url).await, Ok(r) if r.status().is_success())
            })
            .await;
        }
    }

    /// Arguments logging `role` in on node `n` (0-based) with its NKey, trusting the test CA.
    fn login(&self, role: &str, n: usize) -> Vec<String> {
        let path = |name: &str| self.dir.path().join(name).display().to_string();
        [
            "--nats".to_string(),
            format!("tls://127.0.0.1:{}", self.nodes[n].port),
            "--nats-nkey".to_string(),
            path(&format!("{role}.nk")),
            "--nats-tls-ca".to_string(),
            path("ca.pem"),
            "--kv-replicas".to_string(),
            "3".to_string(),
        ]
        .to_vec()
    }
}

/// How long the two nodes left may take to elect new leaders for every stream Herald uses (KV,
/// history, lifecycle): on a busy 2-core CI machine this took over 10 s.
const FAILOVER: std::time::Duration = std::time::Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_runs_on_the_ops_nats_cluster_and_survives_a_node() {
    let mut cluster = OpsCluster::start();
    cluster.ready().await;
    let role = |name: &[&str], n: usize, login: &str| {
        let mut args: Vec<String> = name.iter().map(|s| s.to_string()).collect();
        args.extend(common_args(None));
        args.extend(cluster.login(login, n));
        args
    };
    let dispatcher = role(&["dispatcher"], 0, "dispatcher");
    let (_dispatcher, _) = herald(&refs(&dispatcher));
    let (_gateway, gateway) = herald(&refs(&role(&["gateway"], 1, "gateway")));
    let (_rest, rest) = herald(&refs(&role(&["adapter", "rest"], 2, "adapter")));
    let rest = Rest::new(&rest.expect("rest address"));
    let url = ws_url(&gateway.expect("gateway address"));
    let mut ws = Ws::user(&url, "ann", &["news"]).await;
    let id = rest
        .notify("NEWS", json!({"channels": ["news"]}), json!({"n": 1}))
        .await;
    assert_eq!(ws.event().await["id"], id.as_str());

    // Node 1 (the dispatcher's) goes away: the dispatcher moves to another node, and the
    // replicated KV keeps presence.
    cluster.nodes[0].stop();
    eventually_within(
        FAILOVER,
        "an event is delivered with node 1 down",
        || async {
            let (status, _) = rest
            .post(
                "/v1/notify",
                json!({"event": "NEWS", "targets": {"channels": ["news"]}, "payload": {"n": 2}}),
            )
            .await;
            status == 202
        },
    )
    .await;
    let event = ws.event().await;
    assert_eq!(event["payload"]["n"], 2, "{event}");
    // Presence reads wait for the KV stream to elect a leader among the two nodes left.
    eventually_within(FAILOVER, "presence answers with node 1 down", || async {
        let (status, body) = rest.get("/v1/channels/news").await;
        status == 200 && body["connections"] == 1
    })
    .await;
}

#[test]
fn json_logs_are_one_object_per_line() {
    let log = tempfile::NamedTempFile::new().expect("log file");
    let args = common_args(None);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.insert(0, "serve");
    let env = [("HERALD_LOG", "info"), ("HERALD_LOG_FORMAT", "json")];
    let (mut serve, _) = herald_with(&args, &env, log.reopen().expect("log"));
    serve.terminate();
    let text = std::fs::read_to_string(log.path()).expect("log");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert!(lines.len() >= 3, "{text}");
    for line in &lines {
        assert!(
            line["level"].is_string() && line["message"].is_string(),
            "{line}"
        );
    }
    // Structured fields stay fields, not text in the message.
    assert!(
        lines.iter().any(|l| l["max_concurrent_hashes"].is_number()),
        "{text}"
    );
}

#[test]
fn the_example_configuration_passes_check_config() {
    let example = std::fs::read_to_string(ops_file("herald.example.toml")).expect("example");
    // The one placeholder an operator fills in: a real hash in its place.
    let filled = substitute(
        &example,
        &[(
            "$argon2id$v=19$m=19456,t=2,p=1$REPLACE$REPLACE",
            api_key_hash().to_string(),
        )],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("herald.toml");
    std::fs::write(&path, filled).expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run check-config");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(said.trim().ends_with(": OK"), "{said}");

    // A typo and a wrong type are both reported, each on its line, and the exit status says so.
    std::fs::write(&path, "heartbeat_ms = \"soon\"\nmax_payload_byte = 10\n").expect("write");
    let (ok, said) = check_config(&path);
    assert!(!ok, "{said}");
    assert!(said.contains("`heartbeat_ms`: invalid type"), "{said}");
    assert!(said.contains("did you mean `max_payload_bytes`?"), "{said}");
}

/// The metric names a Grafana expression reads (a histogram's `_bucket`, `_count` and `_sum`
/// series are its one name).
fn queried_metrics(expression: &str) -> Vec<String> {
    expression
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("herald_"))
        .map(|word| {
            ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| word.strip_suffix(suffix))
                .unwrap_or(word)
                .to_string()
        })
        .collect()
}

/// The histograms of a `/metrics` text without a single observation in any series.
fn unobserved_histograms(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" histogram"))
        .filter(|name| metric_sum(text, &format!("{name}_count")).unwrap_or(0.0) == 0.0)
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_dashboard_reads_metrics_herald_exports_and_every_histogram_fills() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(ops_file("grafana/herald.json")).expect("read the dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut queried = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queried.extend(queried_metrics(target["expr"].as_str().unwrap_or("")));
        }
    }
    assert!(queried.len() >= 8, "the dashboard queries {queried:?}");

    let h = Herald::serve(None, &[]);
    let mut ws = Ws::user(&h.ws_url, "grafana", &["ops"]).await;
    h.rest
        .notify("OPS", json!({"channels": ["ops"]}), json!({"n": 1}))
        .await;
    assert_eq!(ws.event().await["event"], "OPS");
    // A refused notify, so the refusal series exist too.
    let (status, _) = h.rest.post("/v1/notify", json!({"event": "X"})).await;
    assert_eq!(status, 400);
    // The outbox depth is sampled at a gateway heartbeat: wait for one.
    eventually("every histogram has observations", || async {
        unobserved_histograms(&scrape_metrics(&h.base).await).is_empty()
    })
    .await;

    let text = scrape_metrics(&h.base).await;
    let missing: Vec<&String> = queried
        .iter()
        .filter(|name| !text.contains(&format!("# TYPE {name} ")))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics /metrics does not have: {missing:?}\n{text}"
    );
    for label in ["role=\"gateway\"", "role=\"dispatcher\"", "role=\"rest\""] {
        assert!(text.contains(label), "no {label} in {text}");
    }
    let reference = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operating.md"),
    )
    .expect("read docs/operating.md");
    let undocumented: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next())
        .filter(|name| !documents(&reference, name))
        .collect();
    assert!(
        undocumented.is_empty(),
        "metrics missing from docs/operating.md: {undocumented:?}"
    );
}

/// Whether the metrics reference names `metric`, in full or as a `_suffix` of the family
/// listed before it on the same line (`herald_redis_received_total`, `_invalid_total`).
fn documents(reference: &str, metric: &str) -> bool {
    let counter = format!("{metric}_total");
    reference.lines().any(|line| {
        let named = |name: &str| {
            line.contains(&format!("`{name}`"))
                || line.split('`').any(|word| {
                    word.starts_with('_')
                        && name.ends_with(word)
                        && line.contains(&format!("`{}", &name[..name.len() - word.len()]))
                })
        };
        named(metric) || named(&counter)
    })
}
