//! Client protocol v1 and REST bodies: one module per frame family, each with decode and encode.

pub mod client_frames;
pub mod error;
pub mod notify;
pub mod server_frames;

use serde::{Deserialize, Serialize};

/// The `id` a client puts on a request and the reply echoes: a number or a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A JSON number, kept as written.
    Number(serde_json::Number),
    /// A JSON string.
    Text(String),
}

/// Which users and channels reached a connection: part of every `event` frame.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Via {
    /// Users among the targets that this connection is identified as.
    pub users: Vec<String>,
    /// Channels among the targets that this connection has joined.
    pub channels: Vec<String>,
    /// Set when the event was a broadcast to every identified connection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub broadcast: bool,
}
