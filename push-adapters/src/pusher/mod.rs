//! The Pusher Channels HTTP API (`/apps/{id}/…`), so that Pusher's server SDKs (and Laravel
//! Broadcasting) publish to Herald and ask it about channels unchanged.
//!
//! Every call is signed ([`signing`]); refusals are answered as Pusher answers them: a status
//! and a plain-text message.

pub mod signing;

use axum::extract::{FromRequest, Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_core::messages::{EventIds, NotifyRequest, Query};
use herald_core::metrics::{Metric, Metrics};
use herald_core::protocol::notify::{Notify, Targets};
use herald_core::pusher::{self, ChannelKind, PusherApp, PusherApps};
use herald_core::requests::Requester;
use herald_core::HeraldError;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Most channels one event names (Pusher's limit).
pub const MAX_CHANNELS_PER_EVENT: usize = 100;
/// Most events one batch carries (Pusher's limit).
pub const MAX_BATCH_EVENTS: usize = 10;
/// Channels one `GET /apps/{id}/channels` lists at most.
const MAX_LISTED_CHANNELS: usize = 10_000;

struct PusherState {
    requests: Requester,
    apps: PusherApps,
    /// Per app id: events accepted.
    events: HashMap<String, Arc<Metric>>,
}

/// The HTTP API of `apps`, sending through `requests`.
pub fn router(requests: Requester, apps: PusherApps, metrics: &Metrics) -> Router {
    let accepted = apps
        .iter()
        .map(|app| {
            let counter = metrics.labelled(&[("app", &app.id)]).counter(
                "herald_pusher_api_events_total",
                "Events Pusher apps published through the HTTP API.",
            );
            (app.id.clone(), counter)
        })
        .collect();
    let state = Arc::new(PusherState {
        requests,
        apps,
        events: accepted,
    });
    Router::new()
        .route("/apps/{app}/events", post(events))
        .route("/apps/{app}/batch_events", post(batch_events))
        .route("/apps/{app}/channels", get(channels))
        .route("/apps/{app}/channels/{channel}", get(channel))
        .route("/apps/{app}/channels/{channel}/users", get(users))
        .route(
            "/apps/{app}/users/{user}/terminate_connections",
            post(terminate_connections),
        )
        // Pusher's Python SDK (3.3) posts here, without the app: its signature's key names it.
        .route(
            "/users/{user}/terminate_connections",
            post(terminate_connections_by_key),
        )
        .with_state(state)
}

/// A refusal: Pusher's status and a plain-text message.
pub struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

impl From<HeraldError> for Refused {
    fn from(e: HeraldError) -> Self {
        let status =
            StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Refused(status, e.message)
    }
}

fn bad_request(message: impl Into<String>) -> Refused {
    Refused(StatusCode::BAD_REQUEST, message.into())
}

/// A call's parts that its signature covers.
struct Call {
    method: Method,
    uri: Uri,
    query: Option<String>,
    body: axum::body::Bytes,
}

impl Call {
    /// The app the call is for, once its signature checks out.
    fn authenticate(&self, state: &PusherState, app: &str) -> Result<Arc<PusherApp>, Refused> {
        let Some(app) = state.apps.by_id(app) else {
            return Err(Refused(StatusCode::NOT_FOUND, "Unknown app".into()));
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        signing::verify(
            app,
            self.method.as_str(),
            self.uri.path(),
            self.query.as_deref().unwrap_or_default(),
            &self.body,
            now,
        )
        .map_err(|e| Refused(StatusCode::UNAUTHORIZED, e.0))?;
        Ok(app.clone())
    }

    fn param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref().unwrap_or_default();
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The `info` attributes asked for.
    fn info(&self) -> Vec<String> {
        self.param("info")
            .map(|info| info.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    }
}

impl FromRequest<Arc<PusherState>> for Call {
    type Rejection = Refused;

    /// Reads the parts a signature covers, the body within what the call may carry: up to 10
    /// events of the app's size for `batch_events`, one for `events`, none elsewhere.
    async fn from_request(
        request: axum::extract::Request,
        state: &Arc<PusherState>,
    ) -> Result<Self, Refused> {
        let (parts, body) = request.into_parts();
        let path = parts.uri.path();
        let events = if path.ends_with("/batch_events") {
            MAX_BATCH_EVENTS
        } else if path.ends_with("/events") {
            1
        } else {
            0
        };
        let app = path
            .strip_prefix("/apps/")
            .and_then(|rest| rest.split('/').next());
        let data = app
            .and_then(|id| state.apps.by_id(id))
            .map_or(0, |a| a.max_event_bytes);
        // Data is JSON-escaped in the body: up to 6 bytes per byte (`\u00XX`).
        let limit = data * 6 * events + BODY_OVERHEAD;
        let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
            Refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body exceeds {limit} bytes"),
            )
        })?;
        Ok(Call {
            method: parts.method,
            query: parts.uri.query().map(str::to_string),
            uri: parts.uri,
            body,
        })
    }
}

/// Bytes a call's body may have beyond its events' data.
const BODY_OVERHEAD: usize = 64 * 1024;

/// One event as the API takes it.
#[derive(Deserialize)]
struct EventBody {
    name: String,
    /// A string (as the SDKs send it); other JSON is sent as its text.
    data: serde_json::Value,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
    /// The sender's connection, which does not get the event.
    #[serde(default)]
    socket_id: Option<String>,
    /// Attributes to answer (accepted, answered empty).
    #[serde(default)]
    #[allow(dead_code)]
    info: Option<String>,
}

impl EventBody {
    /// The notify request this event is, or why it is refused.
    fn into_request(self, app: &PusherApp) -> Result<(String, Notify, Option<String>), Refused> {
        if self.name.is_empty() || self.name.len() > pusher::MAX_EVENT_NAME_LEN {
            return Err(bad_request(format!(
                "Event name must be 1 to {} characters",
                pusher::MAX_EVENT_NAME_LEN
            )));
        }
        let channels: Vec<String> = match (self.channels, self.channel) {
            (Some(channels), None) => channels,
            (None, Some(channel)) => vec![channel],
            _ => return Err(bad_request("Give either `channels` or `channel`")),
        };
        if !(1..=MAX_CHANNELS_PER_EVENT).contains(&channels.len()) {
            return Err(bad_request(format!(
                "An event goes to 1 to {MAX_CHANNELS_PER_EVENT} channels"
            )));
        }
        let data = match self.data {
            serde_json::Value::String(data) => data,
            other => other.to_string(),
        };
        if data.len() > app.max_event_bytes {
            return Err(Refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The data content of this event exceeds the allowed maximum ({} bytes)",
                    app.max_event_bytes
                ),
            ));
        }
        let except = match self.socket_id {
            Some(socket) => {
                let well_formed = socket
                    .split_once('.')
                    .is_some_and(|(a, b)| digits(a) && digits(b));
                if !well_formed {
                    return Err(bad_request(format!("Invalid socket id: {socket:?}")));
                }
                pusher::conn_of_socket(&socket).map(|conn| conn.to_string())
            }
            None => None,
        };
        let herald: Vec<String> = channels
            .iter()
            .map(|channel| pusher::herald_channel(&app.id, channel).map_err(bad_request))
            .collect::<Result<_, _>>()?;
        let data = pusher::json_string(&data);
        let envelope = pusher::Envelope {
            name: self.name.into(),
            data: &data,
            user_id: None,
        };
        let notify = Notify {
            event: pusher::EVENT.to_string(),
            targets: Targets {
                channels: herald,
                ..Default::default()
            },
            payload: serde_json::value::to_raw_value(&envelope).map_err(HeraldError::internal)?,
        };
        Ok((EventIds::fresh(), notify, except))
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn body_json<T: serde::de::DeserializeOwned>(call: &Call) -> Result<T, Refused> {
    serde_json::from_slice(&call.body).map_err(|e| bad_request(format!("Invalid JSON body: {e}")))
}

/// `POST /apps/{id}/events`: one event to up to 100 channels; `{}` once a dispatcher took it.
async fn events(
    State(state): State<Arc<PusherState>>,
    Path(app): Path<String>,
    call: Call,
) -> Result<Json<serde_json::Value>, Refused> {
    let app = call.authenticate(&state, &app)?;
    let event: EventBody = body_json(&call)?;
    let (id, notify, except) = event.into_request(&app)?;
    let request = NotifyRequest {
        id,
        notify: &notify,
        from: None,
        except,
    };
    state.requests.notify_request(&request).await?;
    if let Some(counter) = state.events.get(&app.id) {
        counter.inc();
    }
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct BatchBody {
    batch: Vec<EventBody>,
}

/// `POST /apps/{id}/batch_events`: up to 10 events, published in order.
async fn batch_events(
    State(state): State<Arc<PusherState>>,
    Path(app): Path<String>,
    call: Call,
) -> Result<Json<serde_json::Value>, Refused> {
    let app = call.authenticate(&state, &app)?;
    let batch: BatchBody = body_json(&call)?;
    if !(1..=MAX_BATCH_EVENTS).contains(&batch.batch.len()) {
        return Err(bad_request(format!(
            "A batch carries 1 to {MAX_BATCH_EVENTS} events"
        )));
    }
    let prepared: Vec<(String, Notify, Option<String>)> = batch
        .batch
        .into_iter()
        .map(|event| event.into_request(&app))
        .collect::<Result<_, _>>()?;
    let items = prepared
        .iter()
        .map(|(id, notify, except)| NotifyRequest {
            id: id.clone(),
            notify,
            from: None,
            except: except.clone(),
        })
        .collect();
    let results = state.requests.notify_batch(items).await?;
    let sent = results.iter().filter(|r| r.is_ok()).count();
    if let Some(counter) = state.events.get(&app.id) {
        counter.add(sent as i64);
    }
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(Refused(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{sent} of the batch's events were sent, then: {}; send the rest again",
                e.message
            ),
        ));
    }
    Ok(Json(json!({ "batch": vec![json!({}); sent] })))
}

/// `GET /apps/{id}/channels`: occupied channels, optionally by prefix, with `user_count` for
/// presence channels when asked.
async fn channels(
    State(state): State<Arc<PusherState>>,
    Path(app): Path<String>,
    call: Call,
) -> Result<Json<serde_json::Value>, Refused> {
    let app = call.authenticate(&state, &app)?;
    let prefix = call.param("filter_by_prefix").unwrap_or_default();
    let info = call.info();
    let user_count = info.iter().any(|i| i == "user_count");
    if user_count && !prefix.starts_with("presence-") {
        return Err(bad_request(
            "info=user_count is only available with filter_by_prefix=presence-",
        ));
    }
    let namespace = format!("{}{}:", pusher::NAMESPACE, app.id);
    let mut listed = serde_json::Map::new();
    let mut cursor = Some(herald_core::protocol::page::cursor_after(&namespace));
    'pages: while let Some(after) = cursor.take() {
        let page = state
            .requests
            .query(&Query::Channels {
                cursor: Some(after),
                limit: Some(herald_core::protocol::page::MAX_PAGE_LIMIT),
            })
            .await?;
        for entry in page["channels"].as_array().into_iter().flatten() {
            let Some(herald) = entry["channel"].as_str() else {
                continue;
            };
            if !herald.starts_with(&namespace) || listed.len() >= MAX_LISTED_CHANNELS {
                break 'pages;
            }
            let Some((_, channel)) = pusher::pusher_channel(herald) else {
                continue;
            };
            if !channel.starts_with(&prefix) || ChannelKind::of(&channel) == ChannelKind::User {
                continue;
            }
            let mut attributes = serde_json::Map::new();
            if user_count {
                let about = channel_about(&state, herald).await?;
                attributes.insert("user_count".into(), json!(about.users));
            }
            listed.insert(channel, serde_json::Value::Object(attributes));
        }
        cursor = page["next"].as_str().map(str::to_string);
    }
    Ok(Json(json!({ "channels": listed })))
}

/// What presence knows of one channel.
struct About {
    connections: u64,
    users: usize,
    user_ids: Vec<String>,
}

async fn channel_about(state: &PusherState, herald: &str) -> Result<About, Refused> {
    let answer = state
        .requests
        .query(&Query::Channel {
            channel: herald.to_string(),
        })
        .await?;
    let user_ids: Vec<String> = answer["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u.as_str().map(str::to_string))
        .collect();
    Ok(About {
        connections: answer["connections"].as_u64().unwrap_or(0),
        users: user_ids.len(),
        user_ids,
    })
}

fn herald_name(app: &PusherApp, channel: &str) -> Result<String, Refused> {
    pusher::herald_channel(&app.id, channel).map_err(bad_request)
}

/// `GET /apps/{id}/channels/{name}`: `occupied`, and `user_count` / `subscription_count` when
/// asked.
async fn channel(
    State(state): State<Arc<PusherState>>,
    Path((app, channel)): Path<(String, String)>,
    call: Call,
) -> Result<Json<serde_json::Value>, Refused> {
    let app = call.authenticate(&state, &app)?;
    let herald = herald_name(&app, &channel)?;
    let about = channel_about(&state, &herald).await?;
    let mut answer = json!({ "occupied": about.connections > 0 });
    for attribute in call.info() {
        match attribute.as_str() {
            "user_count" if ChannelKind::of(&channel) == ChannelKind::Presence => {
                answer["user_count"] = json!(about.users);
            }
            "user_count" => {
                return Err(bad_request(
                    "user_count is only available for presence channels",
                ))
            }
            "subscription_count" => answer["subscription_count"] = json!(about.connections),
            other => return Err(bad_request(format!("Unknown info attribute {other:?}"))),
        }
    }
    Ok(Json(answer))
}

/// `GET /apps/{id}/channels/{name}/users`: a presence channel's users.
async fn users(
    State(state): State<Arc<PusherState>>,
    Path((app, channel)): Path<(String, String)>,
    call: Call,
) -> Result<Json<serde_json::Value>, Refused> {
    let app = call.authenticate(&state, &app)?;
    if ChannelKind::of(&channel) != ChannelKind::Presence {
        return Err(bad_request("Users are only listed for presence channels"));
    }
    let about = channel_about(&state, &herald_name(&app, &channel)?).await?;
    let users: Vec<serde_json::Value> = about
        .user_ids
        .iter()
        .map(|id| json!({ "id": id }))
        .collect();
    Ok(Json(json!({ "users": users })))
}

/// `POST /apps/{id}/users/{user}/terminate_connections`: closes every connection the user
/// signed in on, cluster-wide.
async fn terminate_connections(
    State(state): State<Arc<PusherState>>,
    Path((app, user)): Path<(String, String)>,
    call: Call,
) -> Result<Json<serde_json::Value>, Refused> {
    terminate(&state, &call, &app, &user).await
}

/// `POST /users/{user}/terminate_connections`, the app named by the signature's `auth_key`.
async fn terminate_connections_by_key(
    State(state): State<Arc<PusherState>>,
    Path(user): Path<String>,
    call: Call,
) -> Result<Json<serde_json::Value>, Refused> {
    let key = call.param("auth_key").unwrap_or_default();
    let Some(app) = state.apps.by_key(&key) else {
        return Err(Refused(StatusCode::UNAUTHORIZED, "Unknown auth_key".into()));
    };
    let app = app.id.clone();
    terminate(&state, &call, &app, &user).await
}

async fn terminate(
    state: &PusherState,
    call: &Call,
    app: &str,
    user: &str,
) -> Result<Json<serde_json::Value>, Refused> {
    let app = call.authenticate(state, app)?;
    state
        .requests
        .query(&Query::DisconnectUser {
            user: pusher::user_name(&app.id, user),
        })
        .await?;
    Ok(Json(json!({})))
}
