//! `POST /push`: the body TURTED's RestPushConnector took, so a TURTED backend switches to
//! Herald by changing its URL. Lenient on purpose (unknown fields ignored, a single user or
//! channel may be a string), because the callers are existing programs nobody wants to edit.

use super::body;
use super::error::ApiError;
use super::RestState;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use herald_core::protocol::notify::{Notify, Targets};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::Arc;

#[derive(Deserialize)]
struct PushBody {
    event: String,
    targets: PushTargets,
    #[serde(default)]
    payload: Option<Box<RawValue>>,
    #[serde(default)]
    auth: Option<PushAuth>,
}

#[derive(Deserialize, Default)]
struct PushTargets {
    #[serde(default)]
    users: OneOrMany,
    #[serde(default)]
    channels: OneOrMany,
    #[serde(default)]
    broadcast: bool,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PushAuth {
    Password { password: String },
    Secret(String),
}

/// A decoded `/push` body.
#[derive(Debug)]
pub struct PushRequest {
    /// The event it asks for, not validated yet: the key is checked first, so a caller without
    /// one learns nothing about its body beyond whether it is JSON.
    pub notify: Notify,
    /// The key from its `auth` field, if it has one.
    pub key: Option<String>,
}

/// Decodes a `/push` body. Public so the fuzz targets reach the code the handler runs.
pub fn decode_push(bytes: &[u8]) -> Result<PushRequest, ApiError> {
    let push: PushBody = body::json(bytes)?;
    let key = push.auth.map(|auth| match auth {
        PushAuth::Password { password } => password,
        PushAuth::Secret(secret) => secret,
    });
    let notify = Notify {
        event: push.event,
        targets: Targets {
            users: push.targets.users.into_vec(),
            channels: push.targets.channels.into_vec(),
            broadcast: push.targets.broadcast,
        },
        payload: push.payload.unwrap_or_else(|| {
            RawValue::from_string("null".into()).unwrap_or_else(|_| unreachable!())
        }),
    };
    Ok(PushRequest { notify, key })
}

pub(crate) async fn push(
    State(state): State<Arc<RestState>>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    let bytes = body::read(request, state.config.max_payload_bytes).await?;
    let push = decode_push(&bytes)?;
    let key = push
        .key
        .as_deref()
        .or_else(|| super::auth::bearer(&headers));
    super::auth::check_key(&state, key).await?;
    push.notify.validate()?;
    super::routes::accept(&state, push.notify).await?;
    // TURTED answered a bare 200 "OK"; its connectors check for exactly that.
    Ok("OK".into_response())
}
