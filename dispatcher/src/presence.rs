//! The KV layout of who is connected where and who joined what, and every read and write of it.

use bytes::Bytes;
use herald_core::kv::{Kv, KvError};
use herald_core::subjects::{self, ConnId};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Presence state over a [`Kv`].
#[derive(Clone)]
pub struct Presence {
    kv: Arc<dyn Kv>,
}

/// A connection some dead gateway held, with its user.
pub struct LostConnection {
    /// The connection.
    pub conn: ConnId,
    /// Its user.
    pub user: String,
}

impl Presence {
    /// Presence stored in `kv`.
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Presence { kv }
    }

    /// Records a gateway heartbeat.
    pub async fn heartbeat(&self, gateway: &str, beat: u64) -> Result<(), KvError> {
        self.kv
            .put(
                &subjects::gateway_key(gateway),
                Bytes::from(beat.to_string()),
            )
            .await
    }

    /// Writes the liveness probe key: whether KV takes writes now (heartbeats are writes).
    pub async fn probe_writable(&self) -> Result<(), KvError> {
        self.kv
            .put(subjects::LIVENESS_PROBE_KEY, Bytes::from_static(b"1"))
            .await
    }

    /// Records that `conn` is identified as `user`.
    pub async fn identified(&self, conn: &ConnId, user: &str) -> Result<(), KvError> {
        let value = Bytes::from(user.to_string());
        self.kv
            .put(&subjects::conn_key(conn), value.clone())
            .await?;
        self.kv.put(&subjects::user_key(user, conn), value).await
    }

    /// Records that `conn` (of `user`) joined `channel`.
    pub async fn joined(&self, conn: &ConnId, user: &str, channel: &str) -> Result<(), KvError> {
        self.kv
            .put(
                &subjects::channel_key(channel, conn),
                Bytes::from(user.to_string()),
            )
            .await
    }

    /// Records that `conn` left `channel`.
    pub async fn left(&self, conn: &ConnId, channel: &str) -> Result<(), KvError> {
        self.kv.delete(&subjects::channel_key(channel, conn)).await
    }

    /// The user `conn` is identified as, if it is in KV.
    pub async fn user_of(&self, conn: &ConnId) -> Result<Option<String>, KvError> {
        Ok(self
            .kv
            .get(&subjects::conn_key(conn))
            .await?
            .map(|user| String::from_utf8_lossy(&user).into_owned()))
    }

    /// Removes everything `conn` left behind.
    pub async fn closed(
        &self,
        conn: &ConnId,
        user: &str,
        channels: &[String],
    ) -> Result<(), KvError> {
        for channel in channels {
            self.kv
                .delete(&subjects::channel_key(channel, conn))
                .await?;
        }
        self.kv.delete(&subjects::user_key(user, conn)).await?;
        self.kv.delete(&subjects::conn_key(conn)).await
    }

    /// Removes everything `gateway` held and returns its connections.
    pub async fn forget_gateway(&self, gateway: &str) -> Result<Vec<LostConnection>, KvError> {
        let [conns, users, channels] = subjects::gateway_filters(gateway);
        let mut lost = Vec::new();
        for (key, user) in self.kv.entries(&conns).await? {
            if let Some(conn) = subjects::parse_conn_key(&key) {
                lost.push(LostConnection {
                    conn,
                    user: String::from_utf8_lossy(&user).into_owned(),
                });
            }
        }
        for filter in [channels, users] {
            for (key, _) in self.kv.entries(&filter).await? {
                self.kv.delete(&key).await?;
            }
        }
        for lost in &lost {
            self.kv.delete(&subjects::conn_key(&lost.conn)).await?;
        }
        self.kv.delete(&subjects::gateway_key(gateway)).await?;
        Ok(lost)
    }

    /// The connections of `user`.
    pub async fn connections_of(&self, user: &str) -> Result<Vec<ConnId>, KvError> {
        Ok(self
            .kv
            .entries(&subjects::user_filter(user))
            .await?
            .into_iter()
            .filter_map(|(key, _)| subjects::parse_member_key(&key).map(|(_, conn)| conn))
            .collect())
    }

    /// `GET /v1/users/{user}`: whether connected, how many connections, which channels.
    pub async fn user_info(&self, user: &str) -> Result<serde_json::Value, KvError> {
        let conns = self.connections_of(user).await?;
        let mut channels = BTreeSet::new();
        for conn in &conns {
            let filter = subjects::connection_channels_filter(conn);
            for (key, _) in self.kv.entries(&filter).await? {
                if let Some((channel, _)) = subjects::parse_member_key(&key) {
                    channels.insert(channel);
                }
            }
        }
        Ok(json!({
            "user": user,
            "connected": !conns.is_empty(),
            "connections": conns.len(),
            "channels": channels,
        }))
    }

    /// `GET /v1/channels/{channel}`: how many connections joined it, and their users.
    pub async fn channel_info(&self, channel: &str) -> Result<serde_json::Value, KvError> {
        let members = self.kv.entries(&subjects::channel_filter(channel)).await?;
        let users: BTreeSet<String> = members
            .iter()
            .map(|(_, user)| String::from_utf8_lossy(user).into_owned())
            .collect();
        Ok(json!({
            "channel": channel,
            "connections": members.len(),
            "users": users,
        }))
    }

    /// `GET /v1/channels`: every channel with at least one member, with its connection count.
    pub async fn channels(&self) -> Result<serde_json::Value, KvError> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (key, _) in self.kv.entries(subjects::ALL_CHANNELS_FILTER).await? {
            if let Some((channel, _)) = subjects::parse_member_key(&key) {
                *counts.entry(channel).or_default() += 1;
            }
        }
        let channels: Vec<_> = counts
            .into_iter()
            .map(|(channel, connections)| json!({"channel": channel, "connections": connections}))
            .collect();
        Ok(json!({ "channels": channels }))
    }

    /// Every gateway's heartbeat record.
    pub async fn gateways(&self) -> Result<Vec<(String, Bytes)>, KvError> {
        Ok(self
            .kv
            .entries(subjects::ALL_GATEWAYS_FILTER)
            .await?
            .into_iter()
            .filter_map(|(key, value)| {
                subjects::parse_gateway_key(&key).map(|gw| (gw.to_string(), value))
            })
            .collect())
    }
}
