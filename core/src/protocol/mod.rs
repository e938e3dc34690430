//! Client protocol v1 and REST bodies: one module per frame family, each with decode and encode.

pub mod client_frames;
pub mod error;
pub mod notify;
pub mod page;
pub mod server_frames;

use error::HeraldError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `id` a client puts on a request and the reply echoes: a number or a string.
///
/// Bounded ([`MAX_REQUEST_ID_BYTES`], [`MAX_SAFE_INTEGER`]) because every reply echoes it: an
/// unbounded id would let a client that never reads make the server queue its long ids again
/// and again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A JSON number, kept as written.
    Number(serde_json::Number),
    /// A JSON string.
    Text(String),
}

/// Longest string request id, in bytes of UTF-8.
pub const MAX_REQUEST_ID_BYTES: usize = 64;
/// Largest magnitude of a numeric request id: 2^53 - 1, the largest integer every JSON parser
/// (JavaScript's included) reads exactly.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

impl RequestId {
    /// Reads an `id` field: a string of at most [`MAX_REQUEST_ID_BYTES`] bytes or an integer
    /// within ±[`MAX_SAFE_INTEGER`]; the error says which rule it broke without quoting it.
    pub fn from_json(value: serde_json::Value) -> Result<RequestId, HeraldError> {
        match value {
            serde_json::Value::String(text) if text.len() <= MAX_REQUEST_ID_BYTES => {
                Ok(RequestId::Text(text))
            }
            serde_json::Value::String(text) => Err(HeraldError::bad_request(format!(
                "field `id` is {} bytes long; a string id may have at most {MAX_REQUEST_ID_BYTES}",
                text.len()
            ))),
            serde_json::Value::Number(n) => {
                let magnitude = n.as_u64().or_else(|| n.as_i64().map(i64::unsigned_abs));
                match magnitude {
                    Some(m) if m <= MAX_SAFE_INTEGER => Ok(RequestId::Number(n)),
                    _ => Err(HeraldError::bad_request(format!(
                        "field `id` must be an integer between -{MAX_SAFE_INTEGER} and \
                         {MAX_SAFE_INTEGER}, or a string"
                    ))),
                }
            }
            _ => Err(HeraldError::bad_request(
                "field `id` must be a number or a string",
            )),
        }
    }
}

/// Longest excerpt of client input an error message quotes, in bytes.
pub const MAX_EXCERPT_BYTES: usize = 40;

/// The start of `text`, at most [`MAX_EXCERPT_BYTES`] bytes cut on a character boundary: what an
/// error message may quote of client input, so no error echoes an unbounded string.
pub fn excerpt(text: &str) -> &str {
    let mut end = text.len().min(MAX_EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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

/// Where an event sits in the streams of the targets that reached a connection and keep
/// history: `"pos"` of an `event` frame (opaque tokens, by target name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Positions {
    /// By channel.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, String>,
    /// By user.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, String>,
}

impl Positions {
    /// Whether no target keeps history.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.users.is_empty()
    }

    /// The positions of the targets in `via` only.
    pub fn for_via(&self, via: &Via) -> Positions {
        let pick = |kept: &BTreeMap<String, String>, names: &[String]| {
            names
                .iter()
                .filter_map(|n| kept.get(n).map(|t| (n.clone(), t.clone())))
                .collect()
        };
        Positions {
            channels: pick(&self.channels, &via.channels),
            users: pick(&self.users, &via.users),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_ids_are_bounded() {
        assert!(RequestId::from_json(json!("a".repeat(MAX_REQUEST_ID_BYTES))).is_ok());
        let long = RequestId::from_json(json!("a".repeat(MAX_REQUEST_ID_BYTES + 1))).unwrap_err();
        assert!(long.message.contains("at most 64"), "{long}");
        assert!(RequestId::from_json(json!(MAX_SAFE_INTEGER)).is_ok());
        assert!(RequestId::from_json(json!(-(MAX_SAFE_INTEGER as i64))).is_ok());
        for bad in [
            json!(MAX_SAFE_INTEGER + 1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
        ] {
            let error = RequestId::from_json(bad.clone()).unwrap_err();
            assert!(error.message.contains("integer"), "{bad}: {error}");
        }
        assert!(RequestId::from_json(json!([1])).is_err());
    }

    #[test]
    fn excerpts_cut_on_a_character_boundary() {
        assert_eq!(excerpt("short"), "short");
        let wide = "é".repeat(30);
        let cut = excerpt(&wide);
        assert!(cut.len() <= MAX_EXCERPT_BYTES && cut.len() >= MAX_EXCERPT_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(excerpt(&"x".repeat(1000)).len(), MAX_EXCERPT_BYTES);
    }
}
