//! The authentication of Pusher HTTP API calls: `auth_key`, `auth_timestamp` within 600 s,
//! `auth_version` 1.0, `body_md5` of a body, and `auth_signature`, the HMAC-SHA256 under the
//! app's secret of `METHOD\npath\n<every other parameter, keys lowercased, sorted, k=v&…>`.

use herald_core::pusher::{self, PusherApp};

/// How far `auth_timestamp` may be from the server's clock.
pub const MAX_CLOCK_SKEW_SECS: u64 = 600;

/// Why a call is refused: Pusher answers these with 401 and a plain-text message.
#[derive(Debug, PartialEq, Eq)]
pub struct Unauthorized(pub String);

/// Checks a call's signature; `query` is the raw query string, `body` the raw body.
pub fn verify(
    app: &PusherApp,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
    now_secs: u64,
) -> Result<(), Unauthorized> {
    let mut params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.to_lowercase(), v.into_owned()))
        .collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let missing = |name: &str| Unauthorized(format!("Missing parameter {name}"));
    let key = get("auth_key").ok_or_else(|| missing("auth_key"))?;
    if key != app.key {
        return Err(Unauthorized("Unknown auth_key".into()));
    }
    let timestamp = get("auth_timestamp").ok_or_else(|| missing("auth_timestamp"))?;
    let given: u64 = timestamp
        .parse()
        .map_err(|_| Unauthorized("auth_timestamp must be seconds since the epoch".into()))?;
    if given.abs_diff(now_secs) > MAX_CLOCK_SKEW_SECS {
        return Err(Unauthorized(format!(
            "Timestamp expired: Given timestamp ({given}) not within {MAX_CLOCK_SKEW_SECS}s of \
             server time ({now_secs})"
        )));
    }
    match get("auth_version").as_deref() {
        Some("1.0") => {}
        _ => {
            return Err(Unauthorized(
                "auth_version must be 1.0 (Pusher's signing scheme)".into(),
            ))
        }
    }
    if !body.is_empty() {
        let expected = md5_hex(body);
        match get("body_md5") {
            Some(given) if given == expected => {}
            Some(_) => {
                return Err(Unauthorized(
                    "body_md5 does not match the MD5 of the body that arrived".into(),
                ))
            }
            None => return Err(missing("body_md5")),
        }
    }
    let signature = get("auth_signature").ok_or_else(|| missing("auth_signature"))?;
    params.retain(|(k, _)| k != "auth_signature");
    params.sort();
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let signed = format!("{method}\n{path}\n{}", query.join("&"));
    if !pusher::verify(&app.secret, &signed, &signature) {
        // Like Pusher, say what was signed (never the expected signature: that would be an
        // oracle for forging calls).
        return Err(Unauthorized(format!(
            "Invalid signature: you should have sent HmacSHA256Hex({signed:?}, your_secret)"
        )));
    }
    Ok(())
}

/// MD5 of `body` in lowercase hex.
pub fn md5_hex(body: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> PusherApp {
        PusherApp {
            id: "3".into(),
            key: "3ee8d9d5e6a3b5d4d3a1".into(),
            secret: "7ad3773142a6692b25b8".into(),
            max_event_bytes: 10240,
            client_events_per_sec: 10,
            webhook_url: None,
        }
    }

    /// A call signed the way the SDKs sign it.
    fn signed(method: &str, path: &str, params: &[(&str, &str)], body: &[u8]) -> String {
        let mut all: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.push(("auth_key".into(), app().key));
        all.push(("auth_timestamp".into(), "1000".into()));
        all.push(("auth_version".into(), "1.0".into()));
        if !body.is_empty() {
            all.push(("body_md5".into(), md5_hex(body)));
        }
        all.sort();
        let text: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let signature = pusher::sign(
            &app().secret,
            &format!("{method}\n{path}\n{}", text.join("&")),
        );
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &all {
            query.append_pair(k, v);
        }
        query.append_pair("auth_signature", &signature);
        query.finish()
    }

    #[test]
    fn accepts_a_signed_call_and_names_each_fault() {
        let body = br#"{"name":"e","channels":["c"],"data":"{}"}"#;
        let query = signed("POST", "/apps/3/events", &[], body);
        assert_eq!(
            verify(&app(), "POST", "/apps/3/events", &query, body, 1100),
            Ok(())
        );
        let fault = |query: &str, body: &[u8], now: u64| {
            verify(&app(), "POST", "/apps/3/events", query, body, now)
                .unwrap_err()
                .0
        };
        assert!(fault(&query, body, 1000 + 601).starts_with("Timestamp expired"));
        assert!(fault(&query, br#"{"name":"x"}"#, 1000).contains("body_md5"));
        assert!(
            fault(&query.replace("auth_key=3ee", "auth_key=4ee"), body, 1000)
                .contains("Unknown auth_key")
        );
        let tampered = signed("POST", "/apps/3/events", &[("x", "1")], body).replace("x=1", "x=2");
        assert!(fault(&tampered, body, 1000).starts_with("Invalid signature"));
        assert!(fault("", body, 1000).contains("Missing parameter auth_key"));
    }

    #[test]
    fn query_parameters_are_signed_decoded_and_sorted() {
        let query = signed(
            "GET",
            "/apps/3/channels",
            &[("info", "user_count"), ("filter_by_prefix", "presence-")],
            b"",
        );
        assert_eq!(
            verify(&app(), "GET", "/apps/3/channels", &query, b"", 1000),
            Ok(())
        );
        assert!(verify(&app(), "GET", "/apps/3/channels/x", &query, b"", 1000).is_err());
    }
}
