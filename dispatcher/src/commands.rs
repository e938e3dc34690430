//! Ident, join, leave and closed requests from gateways: authorize, then record in KV.

use crate::Context;
use bytes::Bytes;
use herald_core::messages::{CommandReply, GatewayCommand};
use herald_core::protocol::client_frames::IdentAuth;
use herald_core::subjects::ConnId;
use herald_core::token;
use herald_core::{ErrorCode, HeraldError};
use std::sync::Arc;

fn conn_id(text: &str) -> Result<ConnId, HeraldError> {
    ConnId::parse(text)
        .ok_or_else(|| HeraldError::bad_request(format!("bad connection id {text:?}")))
}

pub(crate) fn kv_down(e: impl std::fmt::Display) -> HeraldError {
    HeraldError::unavailable(format!("presence store unavailable, try again: {e}"))
}

/// Carries out one gateway command.
pub(crate) async fn execute(
    context: Arc<Context>,
    command: GatewayCommand,
) -> Result<CommandReply, HeraldError> {
    let shared = &context;
    let context = context.as_ref();
    match command {
        GatewayCommand::Ident { conn, auth } => {
            let conn = conn_id(&conn)?;
            let identity = match authenticate(context, &conn, auth).await {
                Ok(identity) => identity,
                Err(e) => {
                    context.idents_failed.inc();
                    return Err(e);
                }
            };
            context
                .presence
                .identified(&conn, &identity.user)
                .await
                .map_err(kv_down)?;
            tracing::debug!(%conn, user = %identity.user, "identified");
            crate::lifecycle::identified(context, &conn.to_string(), &identity.user).await;
            Ok(identity.into_reply())
        }
        GatewayCommand::Join {
            conn,
            user,
            grants,
            channel,
            member,
        } => {
            let conn = conn_id(&conn)?;
            check_channel_grant(&grants, &channel)?;
            context
                .presence
                .joined(&conn, &user, &channel)
                .await
                .map_err(kv_down)?;
            crate::lifecycle::joined(context, &conn.to_string(), &user, &channel).await;
            match member {
                Some(member) if crate::pusher_members::is_presence(&channel) => {
                    let members =
                        crate::pusher_members::joined(shared, &conn, &channel, member).await?;
                    Ok(CommandReply::Members { members })
                }
                _ => Ok(CommandReply::Done),
            }
        }
        GatewayCommand::Leave {
            conn,
            user,
            channel,
        } => {
            let conn = conn_id(&conn)?;
            context
                .presence
                .left(&conn, &channel)
                .await
                .map_err(kv_down)?;
            crate::pusher_members::left(shared, &conn, std::slice::from_ref(&channel)).await;
            crate::lifecycle::left(context, &conn.to_string(), &user, &channel).await;
            Ok(CommandReply::Done)
        }
        GatewayCommand::Closed {
            conn,
            user,
            channels,
            reason,
        } => {
            let conn_parsed = conn_id(&conn)?;
            let user = match user {
                Some(user) => Some(user),
                None => context
                    .presence
                    .user_of(&conn_parsed)
                    .await
                    .map_err(kv_down)?,
            };
            let Some(user) = user else {
                // An ident that timed out and never reached KV: nothing to remove.
                return Ok(CommandReply::Done);
            };
            context
                .presence
                .closed(&conn_parsed, &user, &channels)
                .await
                .map_err(kv_down)?;
            crate::pusher_members::left(shared, &conn_parsed, &channels).await;
            crate::lifecycle::disconnected(context, &conn, &user, &channels, &reason).await;
            Ok(CommandReply::Done)
        }
        GatewayCommand::Heartbeat {
            gateway,
            beat,
            connections,
            url,
        } => {
            context
                .presence
                .heartbeat(&gateway, beat, connections, url)
                .await
                .map_err(kv_down)?;
            Ok(CommandReply::Done)
        }
        GatewayCommand::Stopped { gateway } => {
            crate::liveness::reap(shared, &gateway, "gateway_stopped").await;
            Ok(CommandReply::Done)
        }
    }
}

/// A valid channel name the `grants` allow: `private-*` channels need a matching grant.
fn check_channel_grant(grants: &[String], channel: &str) -> Result<(), HeraldError> {
    herald_core::names::check_name("channel", channel)?;
    if token::is_private(channel) && !token::grants_allow(grants, channel) {
        return Err(HeraldError::new(
            ErrorCode::Forbidden,
            format!(
                "channel {channel:?} is private and your token does not grant it; \
                 ask the backend for a token whose `channels` match it"
            ),
        ));
    }
    Ok(())
}

/// Who a set of credentials names, and what it may do beyond public channels.
struct Identity {
    user: String,
    /// Channel patterns it may join.
    grants: Vec<String>,
    /// Channel patterns it may publish to.
    publish: Vec<String>,
}

impl Identity {
    fn into_reply(self) -> CommandReply {
        CommandReply::Identified {
            user: self.user,
            grants: self.grants,
            publish: self.publish,
        }
    }
}

async fn authenticate(
    context: &Context,
    conn: &ConnId,
    auth: IdentAuth,
) -> Result<Identity, HeraldError> {
    match auth {
        IdentAuth::Token { token } => {
            let claims = context.config.tokens.verify(&token)?;
            if claims.once {
                let jti = claims.jti.as_deref().unwrap_or_default();
                if jti.is_empty() || !jti.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(HeraldError::new(
                        ErrorCode::Unauthorized,
                        "one-time token lacks a valid `jti`",
                    ));
                }
                // The token remembers the connection that spent it, so the same ident sent
                // again (its answer was lost with a dispatcher) still succeeds.
                let key = format!("once.{jti}");
                let spender = Bytes::from(conn.to_string());
                let first_use = context
                    .spent_tokens
                    .create(&key, spender.clone())
                    .await
                    .map_err(kv_down)?;
                let spent_elsewhere = !first_use
                    && context.spent_tokens.get(&key).await.map_err(kv_down)? != Some(spender);
                if spent_elsewhere {
                    return Err(HeraldError::new(
                        ErrorCode::Unauthorized,
                        "one-time token already used; ask the backend for a new one",
                    ));
                }
            }
            Ok(Identity {
                user: claims.sub,
                grants: claims.channels,
                publish: claims.publish,
            })
        }
        IdentAuth::Password { username, password } => {
            if context.config.users.is_empty() {
                return Err(HeraldError::new(
                    ErrorCode::Unauthorized,
                    "password ident is not enabled on this server (no users file); use a token",
                ));
            }
            if context.config.users.verify(&username, &password).await? {
                Ok(Identity {
                    user: username,
                    grants: Vec::new(),
                    publish: Vec::new(),
                })
            } else {
                Err(HeraldError::new(
                    ErrorCode::Unauthorized,
                    "wrong username or password",
                ))
            }
        }
    }
}
