//! Checks shared by Herald's fuzz targets: what every error a user can see must look like.

use herald_core::HeraldError;

/// The error codes docs/protocol.md documents, written out here rather than taken from
/// `ErrorCode` so a code added to the enum without being documented fails the fuzz run.
pub const DOCUMENTED_CODES: [&str; 8] = [
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "too_large",
    "rate_limited",
    "unavailable",
    "internal",
];

/// Most bytes of an error message: enough to name the problem and quote 40 characters of the
/// offending input, so a reply never echoes an attacker's input back at length.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// Panics unless `error` has a documented code and a bounded, non-empty message.
pub fn check_error(error: &HeraldError) {
    let code = error.code.as_str();
    assert!(DOCUMENTED_CODES.contains(&code), "undocumented code {code}");
    assert!(!error.message.is_empty(), "empty message for {code}");
    assert!(
        error.message.len() <= MAX_MESSAGE_BYTES,
        "message of {} bytes echoes too much input: {:.200}",
        error.message.len(),
        error.message
    );
}
