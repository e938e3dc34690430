//! The admin console's server side: `GET /v1/cluster` on a two-gateway, two-dispatcher NATS
//! deployment (connection counts, a killed gateway and a killed dispatcher leaving the view),
//! and the console's page, served only with `--admin`, under a strict content security policy.
//! The page itself is clicked through in tests/browser/admin.test.js.

mod support;

use serde_json::Value;
use support::*;

fn role(nats: &str, role: &[&str], extra: &[&str]) -> (Process, Option<String>) {
    let mut args: Vec<String> = role.iter().map(|s| s.to_string()).collect();
    args.extend(common_args(Some(nats)));
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    herald(&refs)
}

const FAST: [&str; 4] = [
    "--liveness-interval-ms",
    "200",
    "--gateway-timeout-ms",
    "1500",
];

async fn cluster_view(rest: &Rest) -> Value {
    let (status, body) = rest.get("/v1/cluster").await;
    assert_eq!(status, 200, "{body}");
    body
}

fn connections_by_url(view: &Value) -> Vec<(String, u64)> {
    let mut gateways: Vec<(String, u64)> = view["gateways"]
        .as_array()
        .expect("gateways")
        .iter()
        .map(|g| {
            (
                g["url"].as_str().unwrap_or("").to_string(),
                g["connections"].as_u64().expect("connections"),
            )
        })
        .collect();
    gateways.sort();
    gateways
}

#[tokio::test]
async fn the_cluster_view_follows_gateways_and_dispatchers_as_they_come_and_go() {
    let nats = Nats::start();
    let mut dispatchers: Vec<Process> = (0..2)
        .map(|_| role(&nats.url, &["dispatcher"], &FAST).0)
        .collect();
    let mut gateways = Vec::new();
    for _ in 0..2 {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let url = format!("http://{listen}");
        // A known port, so the gateway can say its public URL.
        let mut args = vec!["gateway", "--nats", &nats.url, "--jwt-secret", SECRET];
        args.extend(["--listen", &listen, "--public-url", &url]);
        args.extend(FAST);
        let (process, _) = herald(&args);
        gateways.push((process, url));
    }
    let (_rest_process, address) = role(&nats.url, &["adapter", "rest"], &["--admin"]);
    let rest = Rest::new(&address.expect("rest address"));
    let _a1 = Ws::user(&ws_url(&gateways[0].1), "a1", &[]).await;
    let _a2 = Ws::user(&ws_url(&gateways[0].1), "a2", &[]).await;
    let _b1 = Ws::user(&ws_url(&gateways[1].1), "b1", &[]).await;
    let mut expected = vec![(gateways[0].1.clone(), 2), (gateways[1].1.clone(), 1)];
    expected.sort();
    eventually("both gateways with their connection counts", || async {
        connections_by_url(&cluster_view(&rest).await) == expected
    })
    .await;
    let view = cluster_view(&rest).await;
    assert_eq!(
        view["dispatchers"].as_array().expect("dispatchers").len(),
        2,
        "{view}"
    );
    assert_eq!(view["bus"]["connected"], true, "{view}");
    assert_eq!(view["store"]["ready"], true, "{view}");
    assert!(
        view["gateways"][0]["last_seen_ms"].as_u64().unwrap() < 5_000,
        "{view}"
    );

    gateways[1].0.kill();
    eventually("the killed gateway leaves the view", || async {
        connections_by_url(&cluster_view(&rest).await) == vec![(gateways[0].1.clone(), 2)]
    })
    .await;
    dispatchers[1].kill();
    eventually("the killed dispatcher leaves the view", || async {
        cluster_view(&rest).await["dispatchers"]
            .as_array()
            .is_some_and(|d| d.len() == 1)
    })
    .await;
    let refused = rest
        .client
        .get(format!("{}/v1/cluster", rest.base))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("GET");
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy_only_when_asked() {
    let nats = Nats::start();
    let (_dispatcher, _) = role(&nats.url, &["dispatcher"], &[]);
    let (_with, with) = role(&nats.url, &["adapter", "rest"], &["--admin"]);
    let (_without, without) = role(&nats.url, &["adapter", "rest"], &[]);
    let with = with.expect("address");
    for (path, kind) in [
        ("/admin", "text/html"),
        ("/admin/app.js", "text/javascript"),
        ("/admin/style.css", "text/css"),
    ] {
        let response = reqwest::get(format!("{with}{path}")).await.expect("GET");
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind));
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"),
            "{policy}"
        );
        assert_eq!(headers["x-frame-options"], "DENY");
    }
    let page = reqwest::get(format!("{with}/admin"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("<script>"),
        "no inline script: the policy forbids it"
    );
    let absent = reqwest::get(format!("{}/admin", without.expect("address")))
        .await
        .expect("GET");
    assert_eq!(absent.status(), 404);
    // `herald serve` has it by default.
    let serve = Herald::serve(None, &[]);
    let page = reqwest::get(format!("{}/admin", serve.base))
        .await
        .expect("GET");
    assert_eq!(page.status(), 200);
}
