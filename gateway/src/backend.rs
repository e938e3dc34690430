//! A signed JSON call to a backend (an RPC route or the publish hook): POST, sign, bound the
//! time and the answer's size, and say in a client's terms what went wrong.

use herald_core::{signature, ErrorCode, HeraldError};
use serde::Deserialize;
use std::time::Duration;

/// Where a backend listens and how Herald signs its calls.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendEndpoint {
    /// `http://` or `https://` URL Herald POSTs to.
    pub url: String,
    /// Key of the `X-Herald-Signature` HMAC; at least 16 bytes.
    pub secret: String,
    /// How long one call may take; the configured `rpc_timeout_ms` when absent.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

impl BackendEndpoint {
    /// Checks the URL and the secret; the message names what to fix.
    pub fn check(&self) -> Result<(), String> {
        signature::check_endpoint(&self.url, &self.secret)
    }

    /// The time one call may take, `default` when the endpoint does not say.
    pub fn timeout(&self, default: Duration) -> Duration {
        self.timeout_ms.map_or(default, Duration::from_millis)
    }
}

/// POSTs `body` to `endpoint`, signed, and returns the answer's JSON. Fails `unavailable` when
/// the backend cannot be reached, times out or answers 5xx, and `internal` when it answers
/// something that is not JSON of at most `max_answer_bytes`.
pub(crate) async fn call(
    client: &reqwest::Client,
    endpoint: &BackendEndpoint,
    timeout: Duration,
    body: Vec<u8>,
    max_answer_bytes: usize,
) -> Result<serde_json::Value, HeraldError> {
    let unreachable = |e: reqwest::Error| {
        let what = if e.is_timeout() {
            format!(
                "the backend did not answer within {} ms",
                timeout.as_millis()
            )
        } else {
            // Without the URL: it may carry credentials, and the client needs none of it.
            format!("the backend cannot be reached: {}", e.without_url())
        };
        HeraldError::unavailable(what)
    };
    let call = async {
        let mut response = client
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                signature::HEADER,
                signature::sign(endpoint.secret.as_bytes(), &body),
            )
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status.is_server_error() {
            return Err(HeraldError::unavailable(format!(
                "the backend answered HTTP {status}; retry later"
            )));
        }
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if answer.len() + chunk.len() > max_answer_bytes {
                return Err(HeraldError::new(
                    ErrorCode::Internal,
                    format!("the backend's answer exceeds {max_answer_bytes} bytes"),
                ));
            }
            answer.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&answer).map_err(|e| {
            tracing::warn!(url = %redacted(&endpoint.url), %status, error = %e, "backend answered non-JSON");
            HeraldError::new(
                ErrorCode::Internal,
                format!("the backend answered HTTP {status} without a JSON body"),
            )
        })
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(HeraldError::new(
            ErrorCode::Unavailable,
            format!(
                "the backend did not answer within {} ms",
                timeout.as_millis()
            ),
        )),
    }
}

/// The URL without user, password and query, for logs.
fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => "<invalid url>".into(),
    }
}

/// The HTTP client of a gateway's backend calls: redirects are not followed (a signed call
/// goes only where it was configured to).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "backend HTTP client with defaults");
            reqwest::Client::new()
        })
}
