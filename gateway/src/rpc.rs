//! `rpc` frames: a method call routed to the backend that serves it — over HTTP by method
//! prefix, else over the bus on `herald.rpc.<method>` — and its answer or coded error.

use crate::backend::{self, BackendEndpoint};
use herald_core::bus::{Bus, BusError};
use herald_core::metrics::HistogramFamily;
use herald_core::protocol::server_frames::ServerFrame;
use herald_core::protocol::RequestId;
use herald_core::{ErrorCode, HeraldError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// One `[[rpc]]` table: methods starting with `prefix` are POSTed to `url`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcRoute {
    /// Methods starting with this are served here; the first matching route wins.
    pub prefix: String,
    /// `http://` or `https://` URL Herald POSTs each call to.
    pub url: String,
    /// Key of the `X-Herald-Signature` HMAC; at least 16 bytes.
    pub secret: String,
    /// How long one call may take; the configured `rpc_timeout_ms` when absent.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Calls in flight to this route at most, per gateway; more wait up to the timeout for a
    /// turn (then fail `unavailable`), and then have the timeout for their own call.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
}

fn default_max_concurrency() -> usize {
    64
}

impl RpcRoute {
    fn endpoint(&self) -> BackendEndpoint {
        BackendEndpoint {
            url: self.url.clone(),
            secret: self.secret.clone(),
            timeout_ms: self.timeout_ms,
        }
    }

    /// Checks the table; the message names what to fix.
    pub fn check(&self) -> Result<(), String> {
        if self.prefix.is_empty() {
            return Err("`prefix` must not be empty (it would take every method)".into());
        }
        if self.max_concurrency == 0 {
            return Err("`max_concurrency` must be at least 1".into());
        }
        self.endpoint().check()
    }
}

/// The body of every call, over HTTP and over the bus.
#[derive(Serialize)]
struct Call<'a> {
    method: &'a str,
    data: &'a Value,
    user: &'a str,
    conn: &'a str,
}

/// A backend's error: `{"code","message"}`.
#[derive(Deserialize)]
struct AnswerError {
    code: String,
    #[serde(default)]
    message: String,
}

/// The RPC routes of a gateway, each with its bound on calls in flight.
pub(crate) struct Rpc {
    routes: Vec<(RpcRoute, BackendEndpoint, Arc<Semaphore>)>,
    default_timeout: Duration,
    max_answer_bytes: usize,
}

impl Rpc {
    pub(crate) fn new(
        routes: &[RpcRoute],
        default_timeout: Duration,
        max_answer_bytes: usize,
    ) -> Rpc {
        Rpc {
            routes: routes
                .iter()
                .map(|r| {
                    let slots = Arc::new(Semaphore::new(r.max_concurrency));
                    (r.clone(), r.endpoint(), slots)
                })
                .collect(),
            default_timeout,
            max_answer_bytes,
        }
    }

    /// Calls `method` for `user` on connection `conn`; answers the `result` or `error` frame,
    /// and records how long it took in `durations`.
    pub(crate) async fn call(
        &self,
        via: (&reqwest::Client, &dyn Bus, &HistogramFamily),
        id: Option<RequestId>,
        method: &str,
        data: &Value,
        (user, conn): (&str, &str),
    ) -> ServerFrame {
        let (client, bus, durations) = via;
        let started = std::time::Instant::now();
        let body = Call {
            method,
            data,
            user,
            conn,
        };
        let answered = match serde_json::to_vec(&body) {
            Ok(body) => self.route(client, bus, method, body).await,
            Err(e) => Err(HeraldError::internal(e)),
        };
        let (frame, outcome) = match answered.and_then(decode_answer) {
            Ok(Ok(data)) => (ServerFrame::Result { id, data }, "result"),
            Ok(Err((code, message))) => {
                let outcome = if code.starts_with("app_") {
                    "app"
                } else {
                    "error"
                };
                (ServerFrame::Error { id, code, message }, outcome)
            }
            Err(error) => (ServerFrame::error(id, &error), error.code.as_str()),
        };
        let route = self
            .routes
            .iter()
            .find(|(r, _, _)| method.starts_with(&r.prefix))
            .map_or("nats", |(r, _, _)| r.prefix.as_str());
        let labels = vec![
            ("route".to_string(), route.to_string()),
            ("outcome".to_string(), outcome.to_string()),
        ];
        durations
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        frame
    }

    async fn route(
        &self,
        client: &reqwest::Client,
        bus: &dyn Bus,
        method: &str,
        body: Vec<u8>,
    ) -> Result<Value, HeraldError> {
        let Some((route, endpoint, slots)) = self
            .routes
            .iter()
            .find(|(r, _, _)| method.starts_with(&r.prefix))
        else {
            return over_bus(bus, method, body, self.default_timeout).await;
        };
        let timeout = endpoint.timeout(self.default_timeout);
        let Ok(Ok(_slot)) = tokio::time::timeout(timeout, slots.acquire()).await else {
            return Err(HeraldError::unavailable(format!(
                "the backend of `{}` has {} calls in flight, its limit; retry later",
                route.prefix, route.max_concurrency
            )));
        };
        backend::call(client, endpoint, timeout, body, self.max_answer_bytes).await
    }
}

async fn over_bus(
    bus: &dyn Bus,
    method: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Value, HeraldError> {
    let subject = format!("{}{method}", herald_core::subjects::RPC_PREFIX);
    match bus.request(&subject, body.into(), timeout).await {
        Ok(answer) => serde_json::from_slice(&answer).map_err(|e| {
            HeraldError::new(
                ErrorCode::Internal,
                format!("the backend of {method:?} answered non-JSON: {e}"),
            )
        }),
        Err(BusError::NoResponders(_)) => Err(HeraldError::new(
            ErrorCode::NotFound,
            format!("no backend serves method {method:?}"),
        )),
        Err(BusError::Timeout(_)) => Err(HeraldError::unavailable(format!(
            "the backend of {method:?} did not answer within {} ms",
            timeout.as_millis()
        ))),
        Err(BusError::Unavailable(detail)) => Err(HeraldError::unavailable(format!(
            "message bus unavailable, retry: {detail}"
        ))),
    }
}

/// A backend's answer: its result, or its error with a code a client may see.
type Decoded = Result<Box<RawValue>, (Cow<'static, str>, String)>;

fn decode_answer(answer: Value) -> Result<Decoded, HeraldError> {
    let not_understood = |what: String| HeraldError::new(ErrorCode::Internal, what);
    let shape = "{\"result\":…} or {\"error\":{\"code\",\"message\"}}";
    let Value::Object(mut answer) = answer else {
        return Err(not_understood(format!(
            "the backend's answer is not {shape}"
        )));
    };
    if let Some(error) = answer.remove("error") {
        let error: AnswerError = serde_json::from_value(error).map_err(|e| {
            not_understood(format!(
                "the backend's `error` is not {{\"code\",\"message\"}}: {e}"
            ))
        })?;
        return match client_code(&error.code) {
            Some(code) => Ok(Err((code, error.message))),
            None => Err(not_understood(format!(
                "the backend answered an unknown error code {:?}; use one of Herald's codes or \
                 app_1000 to app_1999",
                herald_core::protocol::excerpt(&error.code)
            ))),
        };
    }
    match answer.remove("result") {
        Some(result) => serde_json::value::to_raw_value(&result)
            .map(Ok)
            .map_err(HeraldError::internal),
        None => Err(not_understood(format!(
            "the backend's answer has neither `result` nor `error`: answer {shape}"
        ))),
    }
}

/// A backend's error code as the client sees it: one of Herald's codes, or an application code
/// `app_1000` to `app_1999`; anything else is refused.
fn client_code(code: &str) -> Option<Cow<'static, str>> {
    if let Some(herald) = ErrorCode::parse(code) {
        return Some(Cow::Borrowed(herald.as_str()));
    }
    let digits = code.strip_prefix("app_")?;
    let number: u16 = digits.parse().ok()?;
    // Exactly four digits as written: `app_01000` or `app_+1000` are not the code `app_1000`.
    ((1000..=1999).contains(&number) && digits.len() == 4).then(|| Cow::Owned(code.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_codes_pass_through_only_when_documented() {
        assert_eq!(client_code("forbidden").as_deref(), Some("forbidden"));
        assert_eq!(client_code("app_1001").as_deref(), Some("app_1001"));
        assert_eq!(client_code("app_1999").as_deref(), Some("app_1999"));
        for refused in ["app_999", "app_2000", "app_01000", "app_x", "teapot", ""] {
            assert_eq!(client_code(refused), None, "{refused}");
        }
    }

    #[test]
    fn answers_decode_to_result_or_coded_error() {
        use serde_json::json;
        let ok = decode_answer(json!({"result": {"n": 20}}))
            .unwrap()
            .unwrap();
        assert_eq!(ok.get(), r#"{"n":20}"#);
        let null = decode_answer(json!({ "result": null })).unwrap().unwrap();
        assert_eq!(null.get(), "null");
        let (code, message) =
            decode_answer(json!({"error": {"code": "app_1001", "message": "always fails"}}))
                .unwrap()
                .unwrap_err();
        assert_eq!(
            (code.as_ref(), message.as_str()),
            ("app_1001", "always fails")
        );
        let unknown = decode_answer(json!({"error": {"code": "boom"}})).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::Internal);
        assert!(unknown.message.contains("unknown error code"), "{unknown}");
        let neither = decode_answer(json!({})).unwrap_err();
        assert!(neither.message.contains("neither"), "{neither}");
    }
}
