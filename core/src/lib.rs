//! The wire contract and the seams every Herald role is built on.
//!
//! # Layout
//! - [`protocol`]: client frames (decode), server frames (encode), the notify body, error codes.
//! - [`names`]: what a channel, event or user name may be, and how names become KV key tokens.
//! - [`subjects`]: every bus subject and KV key Herald uses, built in one place.
//! - [`messages`]: what roles say to each other over the bus.
//! - [`requests`]: the typed request layer: each request with its answer, a [`requests::Requester`]
//!   that sends them and one serve loop that answers them.
//! - [`bus`]: the [`bus::Bus`] seam (publish, request, subscribe) with a memory and a NATS
//!   implementation side by side.
//! - [`kv`]: the [`kv::Kv`] seam (get, put, create, delete, filtered listing) with a memory and a
//!   JetStream KV implementation side by side.
//! - [`lifecycle`]: the lifecycle events backends receive (connect, join, online, …).
//! - [`event_log`]: the [`event_log::EventLog`] seam that keeps lifecycle events until webhooks
//!   delivered them, in memory or on a JetStream stream.
//! - [`history`]: the last events of each channel and user, and recovery from a position,
//!   in memory or on a JetStream stream.
//! - [`defaults`]: defaults the binary and the libraries share.
//! - [`credentials`]: argon2id verification with a verdict cache, for API keys and passwords.
//! - [`auth_limit`]: failed authentication counted per client address, with backoff.
//! - [`signature`]: the HMAC-SHA256 signature of Herald's calls to backends.
//! - [`token`]: JWT minting (HS256) and verification (HS256, RS256, ES256, EdDSA), grants.
//! - [`metrics`]: counters rendered in the Prometheus text format.

pub mod auth_limit;
pub mod bus;
pub mod credentials;
pub mod defaults;
pub mod event_log;
pub mod history;
pub mod kv;
pub mod lifecycle;
pub mod messages;
pub mod metrics;
pub mod names;
pub mod protocol;
pub mod pusher;
pub mod requests;
pub mod signature;
pub mod subjects;
pub mod token;

pub use protocol::error::{ErrorCode, HeraldError};
