//! Admission of new connections: a cap per gateway and per client address on open `/ws` and
//! `/sse` connections, and the ident timeout that closes connections that never identify.
//!
//! Both bound what a stranger without credentials can hold: without them, a few clients
//! opening sockets (or never identifying on them) would use every descriptor of the process.

use crate::outbox::CloseReason;
use crate::registry::Connection;
use crate::Shared;
use axum::extract::ws::Utf8Bytes;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_core::protocol::server_frames::ServerFrame;
use herald_core::{ErrorCode, HeraldError};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// The client's IP address, from the `ConnectInfo` the HTTP server provides; `None` when the
/// router is served without it (crate tests), which counts only against the gateway's cap.
pub(crate) struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let info = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(ClientIp(info.map(|ConnectInfo(address)| address.ip())))
    }
}

/// Counts open connections against the configured caps.
pub(crate) struct Admission {
    /// Open connections this gateway accepts at most.
    max_connections: usize,
    /// Open connections one client address may hold at most; 0 turns the cap off.
    max_per_address: usize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// A connection's place under the caps; released when dropped.
pub(crate) struct Admitted {
    admission: Arc<Admission>,
    ip: Option<IpAddr>,
}

impl Admission {
    /// Caps of `max_connections` per gateway and `max_per_address` per client (0: no cap).
    pub(crate) fn new(max_connections: usize, max_per_address: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_connections,
            max_per_address,
            counts: Mutex::default(),
        })
    }

    /// Takes a place for one more connection from `ip`, or refuses: `unavailable` when the
    /// gateway is full, `rate_limited` when this address holds its share.
    pub(crate) fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Admitted, HeraldError> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= self.max_connections {
            return Err(HeraldError::new(
                ErrorCode::Unavailable,
                "this gateway holds as many connections as it is configured for; retry later or on another gateway",
            ));
        }
        if let Some(ip) = ip.filter(|_| self.max_per_address > 0) {
            let held = counts.per_address.entry(ip).or_default();
            if *held >= self.max_per_address {
                return Err(HeraldError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "too many open connections from your address (limit {}); close some first",
                        self.max_per_address
                    ),
                ));
            }
            *held += 1;
        }
        counts.total += 1;
        Ok(Admitted {
            admission: self.clone(),
            ip: ip.filter(|_| self.max_per_address > 0),
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self
            .admission
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(ip) = self.ip {
            if let Some(held) = counts.per_address.get_mut(&ip) {
                *held -= 1;
                if *held == 0 {
                    counts.per_address.remove(&ip);
                }
            }
        }
    }
}

/// The HTTP answer to a refused connection: `{"error":{"code","message"}}` with the code's
/// status, and `Retry-After` when waiting helps.
pub(crate) fn refusal(error: HeraldError) -> Response {
    let status =
        StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body =
        serde_json::json!({"error": {"code": error.code.as_str(), "message": error.message}});
    let mut response = (status, axum::Json(body)).into_response();
    if matches!(error.code, ErrorCode::Unavailable | ErrorCode::RateLimited) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

/// Closes `connection` with [`CloseReason::IDENT_TIMEOUT`] unless it identified within the
/// configured ident timeout. An ident still running at the deadline is allowed to finish.
pub(crate) fn watch_ident(shared: &Shared, connection: &Arc<Connection>) {
    let timeout = shared.config.ident_timeout;
    let connection = connection.clone();
    let closing = connection.outbox.closer();
    shared.tracker.spawn(async move {
        tokio::select! {
            _ = closing.cancelled() => {}
            _ = tokio::time::sleep(timeout) => {
                if !connection.session.lock().await.is_identified() {
                    tracing::debug!(conn = %connection.id_text, "closing: no ident in time");
                    // Queued before the close, so SSE clients (no close frame) learn why too.
                    let error = HeraldError::new(
                        ErrorCode::Unauthorized,
                        format!(
                            "no ident within {} ms: connection closed; send ident right after welcome",
                            timeout.as_millis()
                        ),
                    );
                    let frame = ServerFrame::error(None, &error).encode();
                    let _ = connection.outbox.offer(Utf8Bytes::from(frame));
                    connection.outbox.close(CloseReason::IDENT_TIMEOUT);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_gateway_and_per_address_and_places_come_back() {
        let admission = Admission::new(3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = admission.admit(Some(a)).unwrap();
        let _second = admission.admit(Some(a)).unwrap();
        let third = admission.admit(Some(a)).err().unwrap();
        assert_eq!(third.code, ErrorCode::RateLimited);
        let _other = admission.admit(Some(b)).unwrap();
        assert_eq!(
            admission.admit(None).err().unwrap().code,
            ErrorCode::Unavailable
        );
        drop(first);
        let _again = admission.admit(Some(a)).unwrap();
        assert_eq!(
            admission.admit(Some(b)).err().unwrap().code,
            ErrorCode::Unavailable
        );
    }

    #[test]
    fn zero_turns_the_per_address_cap_off() {
        let admission = Admission::new(10, 0);
        let a: IpAddr = [10, 0, 0, 1].into();
        let held: Vec<_> = (0..10).map(|_| admission.admit(Some(a)).unwrap()).collect();
        assert_eq!(held.len(), 10);
        assert!(admission.counts.lock().unwrap().per_address.is_empty());
    }
}
