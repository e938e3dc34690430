//! Error codes of the protocol and the REST API, and the error value that carries one.

use serde::Serialize;
use std::fmt;

/// Every error Herald reports has one of these codes; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed: bad JSON, wrong types, unknown fields, invalid names.
    BadRequest,
    /// Credentials are missing, wrong or expired.
    Unauthorized,
    /// The credentials are fine but do not allow this.
    Forbidden,
    /// The thing asked for does not exist: a REST endpoint, or (for `POST /sse/{conn}`) an SSE
    /// connection whose secret the caller sent.
    NotFound,
    /// The body or frame exceeds the configured limit.
    TooLarge,
    /// Too many requests; slow down.
    RateLimited,
    /// Herald cannot do it right now (no dispatcher, NATS down); retry later.
    Unavailable,
    /// A bug or an unexpected failure; details are in the server log, not in the reply.
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status the REST API answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::TooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// Parses a wire code back (used when a reply crosses the bus).
    pub fn parse(code: &str) -> Option<ErrorCode> {
        Some(match code {
            "bad_request" => ErrorCode::BadRequest,
            "unauthorized" => ErrorCode::Unauthorized,
            "forbidden" => ErrorCode::Forbidden,
            "not_found" => ErrorCode::NotFound,
            "too_large" => ErrorCode::TooLarge,
            "rate_limited" => ErrorCode::RateLimited,
            "unavailable" => ErrorCode::Unavailable,
            "internal" => ErrorCode::Internal,
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a user can act on: a code and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct HeraldError {
    /// The machine-readable code.
    #[serde(with = "code_serde")]
    pub code: ErrorCode,
    /// What went wrong and what to do about it.
    pub message: String,
    /// With `rate_limited`: seconds to wait before trying again (REST sends `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl HeraldError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        HeraldError {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// The same error with a hint of how many seconds to wait before trying again.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// `bad_request` with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// `unavailable` with a message.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// `internal`: the detail goes to the log, the user sees a generic message.
    pub fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            ErrorCode::Internal,
            "internal error; the server log has the details",
        )
    }

    /// An error for input a parser refused: `what`, then the parser's explanation cut to its
    /// first and last bytes, because serde quotes an offending value whole and a reply must not
    /// echo a caller's input back at length (the end keeps "at line 1 column 640").
    pub fn refused_input(code: ErrorCode, what: &str, detail: impl fmt::Display) -> Self {
        const HEAD: usize = 160;
        const TAIL: usize = 60;
        let detail = detail.to_string();
        if detail.len() <= HEAD + TAIL {
            return Self::new(code, format!("{what}: {detail}"));
        }
        let head_end = (0..=HEAD).rev().find(|&i| detail.is_char_boundary(i));
        let tail_start = (detail.len() - TAIL..detail.len()).find(|&i| detail.is_char_boundary(i));
        let head = &detail[..head_end.unwrap_or(0)];
        let tail = &detail[tail_start.unwrap_or(detail.len())..];
        Self::new(code, format!("{what}: {head}…{tail}"))
    }
}

impl fmt::Display for HeraldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for HeraldError {}

mod code_serde {
    use super::ErrorCode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(code: &ErrorCode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(code.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ErrorCode, D::Error> {
        let text = String::deserialize(d)?;
        Ok(ErrorCode::parse(&text).unwrap_or(ErrorCode::Internal))
    }
}
