//! Frames a client sends (`ident`, `join`, `leave`, `publish`, `rpc`, `ping`): decoding with
//! precise errors.
//!
//! Decoding is by hand over a JSON object rather than a derived enum so each mistake gets its
//! own message (unknown type, unknown field, wrong type) and the reply can still echo the `id`.

use super::error::HeraldError;
use super::{excerpt, RequestId};
use crate::history::Position;
use crate::names::check_name;
use serde_json::{Map, Value};

/// A decoded client frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    /// Identify the connection.
    Ident {
        /// Echoed in the reply.
        id: Option<RequestId>,
        /// The credentials.
        auth: IdentAuth,
        /// The position in the user's stream the client last saw: the events after it follow.
        since: Option<Position>,
    },
    /// Join a channel.
    Join {
        /// Echoed in the reply.
        id: Option<RequestId>,
        /// A valid channel name.
        channel: String,
        /// The position in the channel's stream the client last saw.
        since: Option<Position>,
    },
    /// Leave a channel.
    Leave {
        /// Echoed in the reply.
        id: Option<RequestId>,
        /// A valid channel name.
        channel: String,
    },
    /// Send an event to the members of a channel the connection joined.
    Publish {
        /// Echoed in the reply.
        id: Option<RequestId>,
        /// A valid channel name.
        channel: String,
        /// A valid event name.
        event: String,
        /// Any JSON; `null` when absent.
        payload: Value,
    },
    /// Call a backend method.
    Rpc {
        /// Echoed in the reply.
        id: Option<RequestId>,
        /// A valid method name (channel-name characters), e.g. `calc.double`.
        method: String,
        /// Any JSON; `null` when absent.
        data: Value,
    },
    /// Liveness check, answered by `pong`.
    Ping {
        /// Echoed in the reply.
        id: Option<RequestId>,
    },
}

/// The credentials of an `ident` frame.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum IdentAuth {
    /// A JWT minted by the backend or `POST /v1/tokens`.
    Token {
        /// The JWT.
        token: String,
    },
    /// A user of the configured users file.
    Password {
        /// The user name.
        username: String,
        /// The password, checked against its argon2id hash.
        password: String,
    },
}

/// A frame that could not be decoded: the error, and the `id` when one could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    /// The request id, echoed in the error reply when it was readable.
    pub id: Option<RequestId>,
    /// What was wrong.
    pub error: HeraldError,
}

impl ClientFrame {
    /// The request id of this frame.
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            ClientFrame::Ident { id, .. }
            | ClientFrame::Join { id, .. }
            | ClientFrame::Leave { id, .. }
            | ClientFrame::Publish { id, .. }
            | ClientFrame::Rpc { id, .. }
            | ClientFrame::Ping { id } => id.as_ref(),
        }
    }

    /// Decodes one text frame.
    pub fn decode(text: &str) -> Result<ClientFrame, DecodeError> {
        let fail = |id: Option<RequestId>, message: String| DecodeError {
            id,
            error: HeraldError::bad_request(message),
        };
        let value: Value = serde_json::from_str(text)
            .map_err(|e| fail(None, format!("frame is not valid JSON: {e}")))?;
        let Value::Object(mut object) = value else {
            return Err(fail(None, "frame must be a JSON object".into()));
        };
        // A bad id is never echoed: the reply to it carries no id at all.
        let id = match object.remove("id") {
            None | Some(Value::Null) => None,
            Some(value) => {
                Some(RequestId::from_json(value).map_err(|error| DecodeError { id: None, error })?)
            }
        };
        let kind = match object.remove("type") {
            Some(Value::String(kind)) => kind,
            Some(_) => return Err(fail(id, "field `type` must be a string".into())),
            None => return Err(fail(id, "missing field `type`".into())),
        };
        let result = match kind.as_str() {
            "ident" => decode_ident(&mut object).and_then(|auth| {
                Ok(ClientFrame::Ident {
                    id: id.clone(),
                    auth,
                    since: since_field(&mut object)?,
                })
            }),
            "join" => channel_field(&mut object).and_then(|channel| {
                Ok(ClientFrame::Join {
                    id: id.clone(),
                    channel,
                    since: since_field(&mut object)?,
                })
            }),
            "leave" => channel_field(&mut object).map(|channel| ClientFrame::Leave {
                id: id.clone(),
                channel,
            }),
            "publish" => decode_publish(&mut object, id.clone()),
            "rpc" => decode_rpc(&mut object, id.clone()),
            "ping" => Ok(ClientFrame::Ping { id: id.clone() }),
            other => Err(HeraldError::bad_request(format!(
                "unknown frame type {:?}; expected ident, join, leave, publish, rpc or ping",
                excerpt(other)
            ))),
        };
        let frame = result.map_err(|error| DecodeError {
            id: id.clone(),
            error,
        })?;
        if let Some(field) = object.keys().next() {
            return Err(fail(
                id,
                format!("unknown field {:?} in {kind} frame", excerpt(field)),
            ));
        }
        Ok(frame)
    }
}

fn string_field(object: &mut Map<String, Value>, name: &str) -> Result<String, HeraldError> {
    match object.remove(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(HeraldError::bad_request(format!(
            "field `{name}` must be a string"
        ))),
        None => Err(HeraldError::bad_request(format!("missing field `{name}`"))),
    }
}

/// The optional `since` position of `ident` and `join`.
fn since_field(object: &mut Map<String, Value>) -> Result<Option<Position>, HeraldError> {
    match object.remove("since") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(token)) => Position::parse(&token).map(Some).ok_or_else(|| {
            HeraldError::bad_request(
                "field `since` is not a position Herald gave out; send the `pos` of an `ok` \
                 or `event` frame as it was",
            )
        }),
        Some(_) => Err(HeraldError::bad_request("field `since` must be a string")),
    }
}

fn channel_field(object: &mut Map<String, Value>) -> Result<String, HeraldError> {
    let channel = string_field(object, "channel")?;
    check_name("channel", &channel)?;
    Ok(channel)
}

fn decode_publish(
    object: &mut Map<String, Value>,
    id: Option<RequestId>,
) -> Result<ClientFrame, HeraldError> {
    let channel = channel_field(object)?;
    let event = string_field(object, "event")?;
    check_name("event", &event)?;
    Ok(ClientFrame::Publish {
        id,
        channel,
        event,
        payload: object.remove("payload").unwrap_or(Value::Null),
    })
}

fn decode_rpc(
    object: &mut Map<String, Value>,
    id: Option<RequestId>,
) -> Result<ClientFrame, HeraldError> {
    let method = string_field(object, "method")?;
    check_name("method", &method)?;
    Ok(ClientFrame::Rpc {
        id,
        method,
        data: object.remove("data").unwrap_or(Value::Null),
    })
}

fn decode_ident(object: &mut Map<String, Value>) -> Result<IdentAuth, HeraldError> {
    let auth = match object.remove("auth") {
        Some(Value::Object(auth)) => auth,
        Some(_) => return Err(HeraldError::bad_request("field `auth` must be an object")),
        None => return Err(HeraldError::bad_request("missing field `auth`")),
    };
    let mut auth = auth;
    let result = if auth.contains_key("token") {
        IdentAuth::Token {
            token: string_field(&mut auth, "token")?,
        }
    } else if auth.contains_key("username") || auth.contains_key("password") {
        IdentAuth::Password {
            username: string_field(&mut auth, "username")?,
            password: string_field(&mut auth, "password")?,
        }
    } else {
        return Err(HeraldError::bad_request(
            "field `auth` needs `token`, or `username` and `password`",
        ));
    };
    if let Some(field) = auth.keys().next() {
        return Err(HeraldError::bad_request(format!(
            "unknown field {:?} in `auth`",
            excerpt(field)
        )));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn error_of(text: &str) -> (Option<RequestId>, String) {
        let e = ClientFrame::decode(text).expect_err(text);
        assert_eq!(e.error.code, ErrorCode::BadRequest);
        (e.id, e.error.message)
    }

    #[test]
    fn decodes_every_frame() {
        assert_eq!(
            ClientFrame::decode(r#"{"type":"ident","id":1,"auth":{"token":"t"}}"#).unwrap(),
            ClientFrame::Ident {
                id: Some(RequestId::Number(1.into())),
                auth: IdentAuth::Token { token: "t".into() },
                since: None,
            }
        );
        assert_eq!(
            ClientFrame::decode(r#"{"type":"ident","auth":{"username":"u","password":"p"}}"#)
                .unwrap(),
            ClientFrame::Ident {
                id: None,
                auth: IdentAuth::Password {
                    username: "u".into(),
                    password: "p".into()
                },
                since: None,
            }
        );
        assert_eq!(
            ClientFrame::decode(r#"{"type":"join","id":"a","channel":"chat"}"#).unwrap(),
            ClientFrame::Join {
                id: Some(RequestId::Text("a".into())),
                channel: "chat".into(),
                since: None,
            }
        );
        assert_eq!(
            ClientFrame::decode(r#"{"type":"join","channel":"chat","since":"1a-2-3"}"#).unwrap(),
            ClientFrame::Join {
                id: None,
                channel: "chat".into(),
                since: Position::parse("1a-2-3"),
            }
        );
        assert!(error_of(r#"{"type":"join","channel":"c","since":"x"}"#)
            .1
            .contains("not a position Herald gave out"));
        assert!(
            error_of(r#"{"type":"ident","auth":{"token":"t"},"since":5}"#)
                .1
                .contains("`since` must be a string")
        );
        assert!(matches!(
            ClientFrame::decode(r#"{"type":"leave","channel":"chat"}"#),
            Ok(ClientFrame::Leave { .. })
        ));
        assert_eq!(
            ClientFrame::decode(
                r#"{"type":"publish","id":5,"channel":"chat","event":"M:NEW","payload":{"a":1}}"#
            )
            .unwrap(),
            ClientFrame::Publish {
                id: Some(RequestId::Number(5.into())),
                channel: "chat".into(),
                event: "M:NEW".into(),
                payload: serde_json::json!({"a": 1}),
            }
        );
        assert_eq!(
            ClientFrame::decode(r#"{"type":"rpc","id":6,"method":"calc.double","data":10}"#)
                .unwrap(),
            ClientFrame::Rpc {
                id: Some(RequestId::Number(6.into())),
                method: "calc.double".into(),
                data: serde_json::json!(10),
            }
        );
        assert!(matches!(
            ClientFrame::decode(r#"{"type":"ping","id":4}"#),
            Ok(ClientFrame::Ping { .. })
        ));
    }

    #[test]
    fn bad_frames_get_precise_errors_and_keep_the_id() {
        assert!(error_of("{nope").1.contains("not valid JSON"));
        assert!(error_of("[1]").1.contains("JSON object"));
        assert!(error_of(r#"{"id":1}"#).1.contains("missing field `type`"));
        let (id, msg) = error_of(r#"{"type":"shout","id":7}"#);
        assert_eq!(id, Some(RequestId::Number(7.into())));
        assert!(msg.contains("unknown frame type"), "{msg}");
        let (id, msg) = error_of(r#"{"type":"join","id":2,"channel":"a b"}"#);
        assert_eq!(id, Some(RequestId::Number(2.into())));
        assert!(msg.contains("invalid channel name"), "{msg}");
        assert!(error_of(r#"{"type":"join","channel":5}"#)
            .1
            .contains("must be a string"));
        assert!(error_of(r#"{"type":"join"}"#)
            .1
            .contains("missing field `channel`"));
        assert!(error_of(r#"{"type":"join","channel":"c","extra":1}"#)
            .1
            .contains("unknown field \"extra\""));
        assert!(error_of(r#"{"type":"ident","auth":{}}"#)
            .1
            .contains("needs `token`"));
        assert!(error_of(r#"{"type":"ident","auth":{"token":"t","x":1}}"#)
            .1
            .contains("unknown field"));
        assert!(error_of(r#"{"type":"ping","id":[1]}"#)
            .1
            .contains("number or a string"));
    }

    #[test]
    fn long_or_unsafe_ids_are_refused_without_echo() {
        let huge = "x".repeat(64 * 1024);
        for frame in [
            format!(r#"{{"type":"ping","id":"{huge}"}}"#),
            format!(r#"{{"type":"join","id":"{huge}","channel":"c"}}"#),
            r#"{"type":"ping","id":9007199254740992}"#.to_string(),
            r#"{"type":"ping","id":-9007199254740992}"#.to_string(),
            r#"{"type":"ping","id":1e300}"#.to_string(),
        ] {
            let (id, message) = error_of(&frame);
            assert_eq!(id, None, "{message}");
            assert!(!message.contains("xxxx"), "{message}");
            assert!(message.len() < 200, "{message}");
        }
        assert!(
            ClientFrame::decode(&format!(r#"{{"type":"ping","id":"{}"}}"#, "é".repeat(32))).is_ok()
        );
        assert!(ClientFrame::decode(r#"{"type":"ping","id":9007199254740991}"#).is_ok());
    }

    /// An earlier fuzz run crashed the decoder on a string id full of `]`: decoding it, and
    /// every error about it, must stay a plain reply.
    #[test]
    fn fuzz_input_with_brackets_in_the_id_decodes() {
        let short = format!(r#"{{"type":"ping","id":"a-strig-id{}"}}"#, "]".repeat(50));
        assert_eq!(
            ClientFrame::decode(&short).unwrap().id(),
            Some(&RequestId::Text(format!("a-strig-id{}", "]".repeat(50))))
        );
        let long = format!(r#"{{"type":"ping","id":"a-strig-id{}"}}"#, "]".repeat(100));
        let (id, message) = error_of(&long);
        assert_eq!(id, None);
        assert!(message.contains("at most 64"), "{message}");
        // Truncated, malformed and multi-byte variants only ever produce bounded errors.
        for cut in 0..long.len() {
            if let Err(e) = ClientFrame::decode(&long[..cut]) {
                assert!(e.error.message.len() < 200, "{}", e.error.message);
            }
        }
        let wide = format!(r#"{{"type":"{}","id":"]]]"}}"#, "é]".repeat(100));
        let (_, message) = error_of(&wide);
        assert!(message.len() < 200, "{message}");
        let field = format!(r#"{{"type":"ping","{}":1}}"#, "é]".repeat(100));
        assert!(error_of(&field).1.len() < 200);
    }
}
