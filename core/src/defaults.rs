//! Defaults shared by the binary's options and the libraries' own `Default` configurations,
//! so each is written once.

/// Largest event payload and client frame, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 65_536;
