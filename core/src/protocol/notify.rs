//! The notify body shared by `POST /v1/notify`, the Redis and file-tail adapters and the bus.

use super::error::{ErrorCode, HeraldError};
use crate::names::check_name;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Most users plus channels one notify may name; more is almost surely a bug in the caller.
pub const MAX_TARGETS: usize = 10_000;

/// Who an event is for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Every connection identified as one of these users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Every connection that joined one of these channels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// Every identified connection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub broadcast: bool,
}

/// An event to deliver: `{"event":..., "targets":{...}, "payload":...}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// The event name, e.g. `MESSAGE:NEW`.
    pub event: String,
    /// Who receives it.
    pub targets: Targets,
    /// Any JSON, passed to clients verbatim; `null` when absent.
    #[serde(default = "null_payload")]
    pub payload: Box<RawValue>,
}

fn null_payload() -> Box<RawValue> {
    RawValue::from_string("null".into()).unwrap_or_else(|_| unreachable!("null is valid JSON"))
}

impl Notify {
    /// Decodes and validates a notify body.
    pub fn decode(body: &[u8]) -> Result<Notify, HeraldError> {
        let notify: Notify = serde_json::from_slice(body).map_err(|e| {
            HeraldError::refused_input(ErrorCode::BadRequest, "invalid notify body", e)
        })?;
        notify.validate()?;
        Ok(notify)
    }

    /// Checks names and targets.
    pub fn validate(&self) -> Result<(), HeraldError> {
        check_name("event", &self.event)?;
        self.targets.validate()
    }

    /// Encodes the body (payload verbatim).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl Targets {
    /// Checks that there is someone to deliver to and that every name is valid.
    pub fn validate(&self) -> Result<(), HeraldError> {
        if !self.broadcast && self.users.is_empty() && self.channels.is_empty() {
            return Err(HeraldError::bad_request(
                "`targets` names nobody: give `users`, `channels` or `\"broadcast\": true`",
            ));
        }
        if self.users.len() + self.channels.len() > MAX_TARGETS {
            return Err(HeraldError::bad_request(format!(
                "`targets` names more than {MAX_TARGETS} users and channels; use a channel"
            )));
        }
        for user in &self.users {
            check_name("user", user)?;
        }
        for channel in &self.channels {
            check_name("channel", channel)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_validates() {
        let n = Notify::decode(
            br#"{"event":"MESSAGE:NEW","targets":{"users":["u"],"channels":["c"]},"payload":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(n.targets.users, vec!["u"]);
        assert_eq!(n.payload.get(), r#"{"x":1}"#);
        let n = Notify::decode(br#"{"event":"E","targets":{"broadcast":true}}"#).unwrap();
        assert_eq!(n.payload.get(), "null");
    }

    #[test]
    fn rejects_bad_bodies_with_reasons() {
        let cases: [(&[u8], &str); 6] = [
            (b"{", "invalid notify body"),
            (br#"{"event":"E","targets":{}}"#, "names nobody"),
            (
                br#"{"event":"E","targets":{"users":["a b"]}}"#,
                "invalid user name",
            ),
            (
                br#"{"event":"","targets":{"users":["a"]}}"#,
                "invalid event name",
            ),
            (
                br#"{"event":"E","targets":{"users":["a"]},"x":1}"#,
                "unknown field `x`",
            ),
            (br#"{"event":"E","targets":{"users":"a"}}"#, "invalid type"),
        ];
        for (body, expected) in cases {
            let e = Notify::decode(body).unwrap_err();
            assert!(e.message.contains(expected), "{}: {}", expected, e.message);
        }
    }

    #[test]
    fn errors_do_not_echo_long_input() {
        // Found by the rest_body fuzz target: serde quotes a wrong-typed string whole.
        let long = "é".repeat(5000);
        let body = format!(r#"{{"event":"E","targets":{{"users":"{long}"}}}}"#);
        let e = Notify::decode(body.as_bytes()).unwrap_err();
        assert!(
            e.message.len() < 300,
            "{} bytes: {}",
            e.message.len(),
            e.message
        );
        assert!(e
            .message
            .starts_with("invalid notify body: invalid type: string"));
        assert!(e
            .message
            .ends_with("expected a sequence at line 1 column 10034"));
    }
}
