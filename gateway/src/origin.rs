//! The `Origin` check on `/ws`, `/sse` and `POST /sse/{conn}`: a page on another site must not
//! open a connection with the visitor's cookies or network position (cross-site WebSocket
//! hijacking). Requests without `Origin` (non-browser clients) pass: only browsers send it,
//! and they always do on these requests.

use crate::admission::refusal;
use crate::Shared;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use herald_core::{ErrorCode, HeraldError};
use std::sync::Arc;

/// Which origins may connect, from the configured list: empty means the request's own host
/// (an `Origin` whose host and port equal the `Host` header), `*` any origin, otherwise the
/// listed origins exactly (scheme, host and port, e.g. `https://app.example.com`).
pub(crate) fn allowed(allowed_origins: &[String], headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed_origins.is_empty() {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        return matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h));
    }
    allowed_origins
        .iter()
        .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
}

/// Middleware: refuses requests from an origin not allowed with 403 `forbidden`.
pub(crate) async fn check(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if allowed(&shared.config.allowed_origins, request.headers()) {
        return next.run(request).await;
    }
    refusal(HeraldError::new(
        ErrorCode::Forbidden,
        "this page's origin may not connect to Herald; add it to allowed_origins",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        headers
    }

    #[test]
    fn same_host_by_default() {
        let none: &[String] = &[];
        assert!(allowed(none, &headers(None, "h:8080")));
        assert!(allowed(none, &headers(Some("https://h:8080"), "h:8080")));
        assert!(allowed(
            none,
            &headers(Some("https://H.example"), "h.example")
        ));
        assert!(!allowed(
            none,
            &headers(Some("https://evil:8080"), "h:8080")
        ));
        assert!(!allowed(none, &headers(Some("https://h:8081"), "h:8080")));
        assert!(!allowed(none, &headers(Some("null"), "h:8080")));
    }

    #[test]
    fn listed_origins_exactly_or_any() {
        let list = ["https://app.example.com".to_string()];
        let app = Some("https://app.example.com");
        assert!(allowed(&list, &headers(app, "herald.example.com")));
        assert!(!allowed(
            &list,
            &headers(Some("http://app.example.com"), "x")
        ));
        assert!(!allowed(
            &list,
            &headers(Some("https://herald.example.com"), "herald.example.com")
        ));
        assert!(allowed(&["*".to_string()], &headers(Some("null"), "x")));
    }
}
