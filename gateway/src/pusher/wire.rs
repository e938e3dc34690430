//! What goes over a Pusher socket: the frames clients send, decoded; the frames they get,
//! encoded (`data` as a string of JSON, as Pusher sends it); and how a close is worded.

use crate::outbox::CloseReason;
use axum::extract::ws::Utf8Bytes;
use herald_core::pusher::{self, Frame, Member};
use herald_core::HeraldError;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

/// A Herald close as a Pusher client understands it: 4200 reconnect at once (server going
/// away), 4201 pong not received, 4100 over capacity (slow consumer: back off), 4009
/// terminated by the backend; others as they are.
pub(crate) fn close_reason(reason: CloseReason) -> CloseReason {
    match reason {
        CloseReason::GOING_AWAY => CloseReason {
            code: 4200,
            reason: "server shutting down: reconnect",
        },
        CloseReason::HEARTBEAT_TIMEOUT => CloseReason {
            code: 4201,
            reason: "pong reply not received",
        },
        CloseReason::SLOW_CONSUMER => CloseReason {
            code: 4100,
            reason: "over capacity: send queue full",
        },
        CloseReason::DISCONNECTED_BY_BACKEND => CloseReason {
            code: 4009,
            reason: "connection terminated by the backend",
        },
        other => other,
    }
}

/// A client frame: `{"event","channel"?,"data"?}`; `data` may be an object or a string of JSON.
#[derive(Deserialize)]
pub(super) struct ClientFrame {
    pub(super) event: String,
    #[serde(default)]
    pub(super) channel: Option<String>,
    #[serde(default)]
    pub(super) data: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
pub(super) struct SubscribeData {
    pub(super) channel: String,
    #[serde(default)]
    pub(super) auth: Option<String>,
    #[serde(default)]
    pub(super) channel_data: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct UnsubscribeData {
    pub(super) channel: String,
}

#[derive(Deserialize)]
pub(super) struct SigninData {
    pub(super) auth: String,
    pub(super) user_data: String,
}

/// A frame's `data` as `T`, whether sent as an object or as a string of JSON.
pub(super) fn data<T: serde::de::DeserializeOwned>(frame: &ClientFrame) -> Result<T, String> {
    let Some(raw) = &frame.data else {
        return Err(format!("{} needs `data`", frame.event));
    };
    let parsed = match serde_json::from_str::<String>(raw.get()) {
        Ok(text) => serde_json::from_str(&text),
        Err(_) => serde_json::from_str(raw.get()),
    };
    parsed.map_err(|e| format!("{}: malformed `data`: {e}", frame.event))
}

/// The presence member a `channel_data` names: `user_id` a string or a number.
pub(super) fn member_of(channel_data: &str) -> Result<Member, String> {
    let value: serde_json::Value = serde_json::from_str(channel_data)
        .map_err(|e| format!("`channel_data` is not JSON: {e}"))?;
    let user_id = match &value["user_id"] {
        serde_json::Value::String(id) if !id.is_empty() => id.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return Err("`channel_data` needs a non-empty `user_id`".into()),
    };
    Ok(Member {
        user_id,
        user_info: value["user_info"].clone(),
    })
}

/// A server frame whose `data` is `data_json` sent as a string, as Pusher sends them.
pub(super) fn text_frame(event: &str, channel: Option<&str>, data_json: &str) -> String {
    let data = pusher::json_string(data_json);
    Frame {
        event,
        channel,
        data: &data,
        user_id: None,
    }
    .encode()
}

/// A server frame whose `data` is an object (errors are sent so).
fn object_frame(event: &str, channel: Option<&str>, data: serde_json::Value) -> String {
    let data = serde_json::value::to_raw_value(&data)
        .unwrap_or_else(|_| unreachable!("a JSON value serializes"));
    Frame {
        event,
        channel,
        data: &data,
        user_id: None,
    }
    .encode()
}

/// `pusher:error`: `{"code","message"}` (code `null` when the connection goes on as usual).
pub(crate) fn error_frame(code: Option<u16>, message: &str) -> String {
    object_frame(
        "pusher:error",
        None,
        json!({"code": code, "message": message}),
    )
}

/// `pusher:subscription_error` on `channel`: `{"type","error","status"}`.
pub(super) fn subscription_error(channel: &str, (status, kind, message): Refused) -> String {
    object_frame(
        "pusher:subscription_error",
        Some(channel),
        json!({"type": kind, "error": message, "status": status}),
    )
}

/// Why a subscription is refused: its HTTP-like status, Pusher's error type, a message.
pub(super) type Refused = (u16, &'static str, String);

/// A refused subscription for a Herald error, under `kind`.
pub(super) fn refused(kind: &'static str, error: HeraldError) -> Refused {
    (error.code.http_status(), kind, error.message)
}

/// The frames a Pusher connection gets for an event that reached it through `channels`
/// (Herald names), one per channel, as Pusher sends one per subscription.
pub(crate) fn event_frames(channels: &[String], event: &str, payload: &RawValue) -> Vec<Utf8Bytes> {
    channels
        .iter()
        .filter_map(|herald| pusher::pusher_channel(herald))
        .map(|(_, channel)| Utf8Bytes::from(pusher::event_frame(&channel, event, payload)))
        .collect()
}
