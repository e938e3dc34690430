//! Frames the server sends (`welcome`, `ok`, `result`, `error`, `pong`, `event`): encoding.

use super::error::HeraldError;
use super::{Positions, RequestId, Via};
use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A reply or notice to one connection.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame of every connection.
    Welcome {
        /// The connection id (used by SSE clients in `POST /sse/{conn}`).
        conn: String,
        /// How often the server pings; a client may use it to size its own timeouts.
        heartbeat_ms: u64,
        /// SSE only: the connection's secret, which every `POST /sse/{conn}` must send in the
        /// `X-Herald-Secret` header to prove it owns the stream.
        #[serde(skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// A request succeeded.
    Ok {
        /// The request id, echoed.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// The identified user (on `ident` replies).
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        /// The channel joined or left (on `join` / `leave` replies).
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// The id of the event a `publish` was accepted as.
        #[serde(skip_serializing_if = "Option::is_none")]
        event_id: Option<String>,
        /// On `ident` and `join`: the newest position of the user's or channel's stream, when
        /// it keeps history.
        #[serde(skip_serializing_if = "Option::is_none")]
        pos: Option<String>,
        /// When `since` was given: whether every event after it follows (else none does).
        #[serde(skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
    },
    /// A backend's answer to an `rpc`.
    Result {
        /// The request id, echoed.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// What the backend answered, verbatim.
        data: Box<RawValue>,
    },
    /// A request failed.
    Error {
        /// The request id, echoed.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// The error code: one of Herald's, or an RPC backend's application code.
        code: Cow<'static, str>,
        /// What went wrong.
        message: String,
    },
    /// Reply to `ping`.
    Pong {
        /// The request id, echoed.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
}

impl ServerFrame {
    /// An `error` frame for `error`, echoing `id`.
    pub fn error(id: Option<RequestId>, error: &HeraldError) -> ServerFrame {
        ServerFrame::Error {
            id,
            code: Cow::Borrowed(error.code.as_str()),
            message: error.message.clone(),
        }
    }

    /// The frame as JSON text.
    pub fn encode(&self) -> String {
        // Serializing these plain structs cannot fail; keep a valid frame even if it did.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"encoding failed"}"#.into()
        })
    }
}

#[derive(Serialize)]
struct EventFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    event: &'a str,
    payload: &'a RawValue,
    via: &'a Via,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<From<'a>>,
    #[serde(skip_serializing_if = "Positions::is_empty")]
    pos: &'a Positions,
}

#[derive(Serialize)]
struct From<'a> {
    user: &'a str,
}

/// Encodes an `event` frame once; the bytes are shared by every connection with the same `via`.
/// `from` names the user of a client-published event; `pos` holds the positions of the `via`
/// targets that keep history.
pub fn encode_event(
    id: &str,
    event: &str,
    payload: &RawValue,
    (via, pos): (&Via, &Positions),
    from: Option<&str>,
) -> Bytes {
    let frame = EventFrame {
        kind: "event",
        id,
        event,
        payload,
        via,
        from: from.map(|user| From { user }),
        pos,
    };
    match serde_json::to_vec(&frame) {
        Ok(bytes) => Bytes::from(bytes),
        // Only a non-string map key could fail here, and none exist in these types.
        Err(_) => {
            Bytes::from_static(br#"{"type":"error","code":"internal","message":"encoding failed"}"#)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_encode_as_documented() {
        assert_eq!(
            ServerFrame::Welcome {
                conn: "g-1".into(),
                heartbeat_ms: 25000,
                secret: None,
            }
            .encode(),
            r#"{"type":"welcome","conn":"g-1","heartbeat_ms":25000}"#
        );
        assert_eq!(
            ServerFrame::Welcome {
                conn: "g-2".into(),
                heartbeat_ms: 25000,
                secret: Some("s3".into()),
            }
            .encode(),
            r#"{"type":"welcome","conn":"g-2","heartbeat_ms":25000,"secret":"s3"}"#
        );
        assert_eq!(
            ServerFrame::Ok {
                id: Some(RequestId::Number(2.into())),
                user: None,
                channel: Some("chat".into()),
                event_id: None,
                pos: None,
                recovered: None,
            }
            .encode(),
            r#"{"type":"ok","id":2,"channel":"chat"}"#
        );
        let error = HeraldError::new(crate::ErrorCode::Forbidden, "no");
        assert_eq!(
            ServerFrame::error(Some(RequestId::Text("x".into())), &error).encode(),
            r#"{"type":"error","id":"x","code":"forbidden","message":"no"}"#
        );
        assert_eq!(
            ServerFrame::Pong { id: None }.encode(),
            r#"{"type":"pong"}"#
        );
    }

    #[test]
    fn event_frames_carry_payload_verbatim() {
        let payload = RawValue::from_string(r#"{"a":[1,2]}"#.into()).unwrap();
        let via = Via {
            users: vec!["u".into()],
            channels: vec![],
            broadcast: false,
        };
        let none = Positions::default();
        let bytes = encode_event("e1", "MESSAGE:NEW", &payload, (&via, &none), None);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"type":"event","id":"e1","event":"MESSAGE:NEW","payload":{"a":[1,2]},"via":{"users":["u"],"channels":[]}}"#
        );
        let mut pos = Positions::default();
        pos.users.insert("u".into(), "1-2-3".into());
        let bytes = encode_event("e2", "M", &payload, (&via, &pos), Some("ann"));
        assert!(
            std::str::from_utf8(&bytes).unwrap().ends_with(
                r#""via":{"users":["u"],"channels":[]},"from":{"user":"ann"},"pos":{"users":{"u":"1-2-3"}}}"#
            ),
            "{bytes:?}"
        );
    }
}
