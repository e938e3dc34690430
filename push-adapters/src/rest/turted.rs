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

pub(crate) async fn push(
    State(state): State<Arc<RestState>>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    let bytes = body::read(request, state.config.max_payload_bytes).await?;
    let push: PushBody = body::json(&bytes)?;
    let key = match &push.auth {
        Some(PushAuth::Password { password }) => Some(password.as_str()),
        Some(PushAuth::Secret(secret)) => Some(secret.as_str()),
        None => super::auth::bearer(&headers),
    };
    super::auth::check_key(&state, key).await?;
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
    notify.validate()?;
    super::routes::accept(&state, notify).await?;
    // TURTED answered a bare 200 "OK"; its connectors check for exactly that.
    Ok("OK".into_response())
}
