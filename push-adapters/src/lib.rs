//! Push adapters: how backends feed events into Herald.
//!
//! # Layout
//! - [`rest`]: REST API v1 (`/v1/...`) and the TURTED-compatible `POST /push`.
//! - [`pusher`]: the Pusher Channels HTTP API (`/apps/{id}/...`), signed the Pusher way.
//! - [`file_tail`]: follows log files (across rotations) and publishes each line as an event.
//! - [`redis`]: subscribes to a Redis pub/sub channel carrying notify bodies.
//! - [`publish`]: hands a notify to a dispatcher and reports whether it was accepted; shared by
//!   every adapter so each answers its backend only after the event was taken.
//! - [`retry`]: publishing until accepted, with capped exponential backoff, for the adapters
//!   that read from a feed and must not move past an event before it was taken.

pub mod file_tail;
pub mod publish;
pub mod pusher;
pub mod redis;
pub mod rest;
pub mod retry;
