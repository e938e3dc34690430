//! The KV layout of who is connected where and who joined what, and every read and write of it.

use bytes::Bytes;
use herald_core::kv::{Kv, KvError};
use herald_core::pusher::Member;
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
    /// The channels it had joined.
    pub channels: Vec<String>,
}

impl Presence {
    /// Presence stored in `kv`.
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Presence { kv }
    }

    /// Records a gateway heartbeat: its counter (liveness looks for a change), and what the
    /// cluster view shows.
    pub async fn heartbeat(
        &self,
        gateway: &str,
        beat: u64,
        connections: u64,
        url: Option<String>,
    ) -> Result<(), KvError> {
        let record = json!({
            "beat": beat,
            "connections": connections,
            "url": url,
            "seen_ms": herald_core::messages::Delivery::now_ms(),
        });
        self.kv
            .put(
                &subjects::gateway_key(gateway),
                Bytes::from(record.to_string()),
            )
            .await
    }

    /// Whether the presence store answers.
    pub async fn is_ready(&self) -> bool {
        self.kv.is_ready().await
    }

    /// Records that dispatcher `id` is running; its liveness loop calls this first each round,
    /// so it doubles as the probe of whether KV takes writes now (heartbeats are writes).
    pub async fn dispatcher_alive(&self, id: &str) -> Result<(), KvError> {
        let now = herald_core::messages::Delivery::now_ms();
        self.kv
            .put(&subjects::dispatcher_key(id), Bytes::from(now.to_string()))
            .await
    }

    /// `GET /v1/cluster`'s gateways and dispatchers. Dispatchers silent for over
    /// `forget_after_ms` are removed (a stopped or killed one leaves its key behind).
    pub async fn cluster(&self, forget_after_ms: u64) -> Result<serde_json::Value, KvError> {
        let now = herald_core::messages::Delivery::now_ms();
        let mut gateways = Vec::new();
        for (id, record) in self.gateways().await? {
            let record: serde_json::Value = serde_json::from_slice(&record).unwrap_or_default();
            let seen = record["seen_ms"].as_u64().unwrap_or(now);
            gateways.push(json!({
                "id": id,
                "connections": record["connections"].as_u64().unwrap_or(0),
                "url": record["url"],
                "last_seen_ms": now.saturating_sub(seen),
            }));
        }
        let mut dispatchers = Vec::new();
        for (key, seen) in self.kv.entries(subjects::ALL_DISPATCHERS_FILTER).await? {
            let Some(id) = key.strip_prefix(subjects::DISPATCHER_KEY_PREFIX) else {
                continue;
            };
            let seen: u64 = String::from_utf8_lossy(&seen).parse().unwrap_or(0);
            let silent = now.saturating_sub(seen);
            if silent > forget_after_ms {
                self.kv.delete(&key).await?;
                continue;
            }
            dispatchers.push(json!({"id": id, "last_seen_ms": silent}));
        }
        Ok(json!({ "gateways": gateways, "dispatchers": dispatchers }))
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

    /// Whether `conn`, identified as `user`, is a member of `channel` in KV.
    pub async fn is_member(
        &self,
        conn: &ConnId,
        user: &str,
        channel: &str,
    ) -> Result<bool, KvError> {
        let member = self.kv.get(&subjects::channel_key(channel, conn)).await?;
        Ok(member.is_some_and(|of| of.as_ref() == user.as_bytes()))
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
                    channels: Vec::new(),
                });
            }
        }
        for (key, _) in self.kv.entries(&channels).await? {
            if let Some((channel, conn)) = subjects::parse_member_key(&key) {
                if let Some(lost) = lost.iter_mut().find(|l| l.conn == conn) {
                    lost.channels.push(channel);
                }
            }
            self.kv.delete(&key).await?;
        }
        for (key, _) in self.kv.entries(&users).await? {
            self.kv.delete(&key).await?;
        }
        for lost in &lost {
            self.kv.delete(&subjects::conn_key(&lost.conn)).await?;
        }
        self.kv.delete(&subjects::gateway_key(gateway)).await?;
        Ok(lost)
    }

    /// Records who `conn` is among the members of the Pusher presence `channel`; answers every
    /// member now (one per connection) and whether this made the user a member: exactly one of
    /// several connections of a user joining at once is told so.
    pub async fn member_joined(
        &self,
        conn: &ConnId,
        channel: &str,
        member: &Member,
    ) -> Result<(Vec<(ConnId, Member)>, bool), KvError> {
        let value = serde_json::to_vec(member).unwrap_or_default();
        self.kv
            .put(&subjects::member_key(channel, conn), Bytes::from(value))
            .await?;
        let user = subjects::presence_user_key(channel, &member.user_id);
        let first = self.kv.create(&user, Bytes::new()).await?;
        Ok((self.members(channel).await?, first))
    }

    /// After a connection of `user_id` left `channel`: whether the user is gone from it now.
    /// The user's record is deleted with its last connection; should a connection of the user
    /// have joined meanwhile (and, finding the record, not announced itself), the user stays.
    pub async fn member_gone(&self, channel: &str, user_id: &str) -> Result<bool, KvError> {
        let connections =
            |all: Vec<(ConnId, Member)>| all.iter().filter(|(_, m)| m.user_id == user_id).count();
        if connections(self.members(channel).await?) > 0 {
            return Ok(false);
        }
        let user = subjects::presence_user_key(channel, user_id);
        self.kv.delete(&user).await?;
        if connections(self.members(channel).await?) > 0 {
            // Back already: keep the record (unless its new connection made it again).
            self.kv.create(&user, Bytes::new()).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Forgets `conn` among the members of `channel`; answers who it was there, if anyone.
    pub async fn member_left(
        &self,
        conn: &ConnId,
        channel: &str,
    ) -> Result<Option<Member>, KvError> {
        let key = subjects::member_key(channel, conn);
        let Some(value) = self.kv.get(&key).await? else {
            return Ok(None);
        };
        self.kv.delete(&key).await?;
        Ok(serde_json::from_slice(&value).ok())
    }

    /// The members of the Pusher presence `channel`, one per connection.
    pub async fn members(&self, channel: &str) -> Result<Vec<(ConnId, Member)>, KvError> {
        Ok(self
            .kv
            .entries(&subjects::member_filter(channel))
            .await?
            .into_iter()
            .filter_map(|(key, value)| {
                let (_, conn) = subjects::parse_member_key(&key)?;
                Some((conn, serde_json::from_slice(&value).ok()?))
            })
            .collect())
    }

    /// Forgets every presence member on `gateway`'s connections; answers each channel and
    /// member it held.
    pub async fn forget_gateway_members(
        &self,
        gateway: &str,
    ) -> Result<Vec<(String, Member)>, KvError> {
        let mut lost = Vec::new();
        for (key, value) in self
            .kv
            .entries(&subjects::gateway_members_filter(gateway))
            .await?
        {
            self.kv.delete(&key).await?;
            if let (Some((channel, _)), Ok(member)) = (
                subjects::parse_member_key(&key),
                serde_json::from_slice(&value),
            ) {
                lost.push((channel, member));
            }
        }
        Ok(lost)
    }

    /// How many connections joined `channel`.
    pub async fn member_count(&self, channel: &str) -> Result<usize, KvError> {
        Ok(self
            .kv
            .entries(&subjects::channel_filter(channel))
            .await?
            .len())
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

    /// `GET /v1/presence`: every connected user with its connection count, and every channel
    /// with its connection count and users, in name order.
    pub async fn snapshot(&self) -> Result<serde_json::Value, KvError> {
        let mut users: std::collections::BTreeMap<String, usize> = Default::default();
        for (key, _) in self.kv.entries(subjects::ALL_USERS_FILTER).await? {
            if let Some((user, _)) = subjects::parse_member_key(&key) {
                *users.entry(user).or_default() += 1;
            }
        }
        let mut channels: std::collections::BTreeMap<String, (usize, BTreeSet<String>)> =
            Default::default();
        for (key, user) in self.kv.entries(subjects::ALL_CHANNELS_FILTER).await? {
            if let Some((channel, _)) = subjects::parse_member_key(&key) {
                let entry = channels.entry(channel).or_default();
                entry.0 += 1;
                entry.1.insert(String::from_utf8_lossy(&user).into_owned());
            }
        }
        Ok(json!({
            "users": users
                .into_iter()
                .map(|(user, connections)| json!({"user": user, "connections": connections}))
                .collect::<Vec<_>>(),
            "channels": channels
                .into_iter()
                .map(|(channel, (connections, users))| {
                    json!({"channel": channel, "connections": connections, "users": users})
                })
                .collect::<Vec<_>>(),
        }))
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

    /// `GET /v1/channels`: up to `limit` channels with at least one member, named after
    /// `after` (all when `None`), in name order, each with its connection count; with a
    /// `next` cursor when more follow.
    pub async fn channels(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<serde_json::Value, KvError> {
        // Only the first `limit + 1` names after `after` are kept (one more than the page, to
        // know whether another follows), so the answer stays bounded however many channels
        // exist. A name dropped here never returns: `limit + 1` smaller names were kept.
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (key, _) in self.kv.entries(subjects::ALL_CHANNELS_FILTER).await? {
            let Some((channel, _)) = subjects::parse_member_key(&key) else {
                continue;
            };
            if after.is_some_and(|after| channel.as_str() <= after) {
                continue;
            }
            if let Some(count) = counts.get_mut(&channel) {
                *count += 1;
                continue;
            }
            if counts.len() > limit {
                match counts.last_key_value() {
                    Some((largest, _)) if *largest > channel => {
                        counts.pop_last();
                    }
                    _ => continue,
                }
            }
            counts.insert(channel, 1);
        }
        let more = counts.len() > limit;
        let channels: Vec<_> = counts
            .into_iter()
            .take(limit)
            .map(|(channel, connections)| json!({"channel": channel, "connections": connections}))
            .collect();
        let next = channels
            .last()
            .and_then(|c| c["channel"].as_str())
            .filter(|_| more)
            .map(herald_core::protocol::page::cursor_after);
        let mut page = json!({ "channels": channels });
        if let Some(next) = next {
            page["next"] = json!(next);
        }
        Ok(page)
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

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::kv::MemoryKv;
    use serde_json::Value;

    fn names(page: &Value) -> Vec<(String, u64)> {
        page["channels"]
            .as_array()
            .expect("channels")
            .iter()
            .map(|c| {
                let name = c["channel"].as_str().expect("name").to_string();
                (name, c["connections"].as_u64().expect("count"))
            })
            .collect()
    }

    #[tokio::test]
    async fn channels_come_in_bounded_pages_in_name_order() {
        let presence = Presence::new(Arc::new(MemoryKv::new()));
        // Joined in scrambled order; `c07` has three members, the others one.
        for i in [7u64, 3, 9, 0, 5, 1, 8, 2, 6, 4] {
            let conn = ConnId::parse(&format!("g1-{}", i + 1)).expect("conn id");
            presence
                .joined(&conn, "u", &format!("c{i:02}"))
                .await
                .unwrap();
        }
        for seq in [20u64, 21] {
            let conn = ConnId::parse(&format!("g2-{seq}")).expect("conn id");
            presence.joined(&conn, "u", "c07").await.unwrap();
        }
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..10 {
            let page = presence.channels(after.as_deref(), 3).await.unwrap();
            let got = names(&page);
            assert!(got.len() <= 3, "{page}");
            seen.extend(got);
            match page.get("next").and_then(Value::as_str) {
                Some(next) => {
                    after = Some(herald_core::protocol::page::decode_cursor(next).unwrap())
                }
                None => break,
            }
        }
        let expected: Vec<(String, u64)> = (0..10)
            .map(|i| (format!("c{i:02}"), if i == 7 { 3 } else { 1 }))
            .collect();
        assert_eq!(seen, expected);
        let all = presence.channels(None, 1000).await.unwrap();
        assert_eq!(names(&all), expected);
        assert!(all.get("next").is_none(), "{all}");
    }
}
