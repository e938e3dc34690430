//! Every HTTP error the gateway answers, as an `error` frame in JSON with the code's status:
//! the SSE POST's own refusals, and what axum refuses before a handler runs (a bad path, an
//! unreadable or oversized body, `GET /ws` without upgrade headers, a wrong method). axum
//! answers those in plain text; the `From` impls below are the one place they are mapped.

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_core::protocol::server_frames::ServerFrame;
use herald_core::{ErrorCode, HeraldError};

/// An error answered over HTTP: its status and the `error` frame in the body.
#[derive(Debug)]
pub(crate) struct ErrorReply {
    status: StatusCode,
    error: HeraldError,
}

impl ErrorReply {
    /// `error` with the status of its code.
    pub(crate) fn new(error: HeraldError) -> Self {
        let status = StatusCode::from_u16(error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ErrorReply { status, error }
    }

    /// A request axum refused with `status`: the status stays, the code is the one that fits.
    fn rejected(status: StatusCode, detail: String) -> Self {
        let code = match status {
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::TooLarge,
            s if s.is_server_error() => return ErrorReply::new(HeraldError::internal(detail)),
            _ => ErrorCode::BadRequest,
        };
        ErrorReply {
            status,
            error: HeraldError::new(code, detail),
        }
    }
}

impl From<HeraldError> for ErrorReply {
    fn from(error: HeraldError) -> Self {
        ErrorReply::new(error)
    }
}

impl From<PathRejection> for ErrorReply {
    fn from(r: PathRejection) -> Self {
        ErrorReply::rejected(r.status(), format!("bad URL path: {}", r.body_text()))
    }
}

impl From<BytesRejection> for ErrorReply {
    fn from(r: BytesRejection) -> Self {
        ErrorReply::rejected(
            r.status(),
            format!("cannot read the body: {}", r.body_text()),
        )
    }
}

impl From<WebSocketUpgradeRejection> for ErrorReply {
    fn from(r: WebSocketUpgradeRejection) -> Self {
        ErrorReply::rejected(
            r.status(),
            format!("not a WebSocket upgrade: {}", r.body_text()),
        )
    }
}

impl IntoResponse for ErrorReply {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            ServerFrame::error(None, &self.error).encode(),
        )
            .into_response()
    }
}

/// The answer to a method a gateway route does not take (axum adds the `Allow` header).
pub(crate) async fn method_not_allowed(method: Method) -> ErrorReply {
    ErrorReply::rejected(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed here; see docs/protocol.md"),
    )
}
