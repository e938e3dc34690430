//! Push adapters: how backends feed events into Herald.
//!
//! # Layout
//! - [`rest`]: REST API v1 (`/v1/...`) and the TURTED-compatible `POST /push`.
//! - [`publish`]: hands a notify to a dispatcher and reports whether it was accepted; shared by
//!   every adapter so each answers its backend only after the event was taken.

pub mod publish;
pub mod rest;
