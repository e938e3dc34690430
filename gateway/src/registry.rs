//! The connections one gateway holds, indexed by user and channel, and the resolution of an
//! event's targets to those connections grouped by `via`.

use crate::outbox::Outbox;
use herald_core::protocol::notify::Targets;
use herald_core::protocol::Via;
use herald_core::subjects::ConnId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use subtle::ConstantTimeEq;

/// One connection as the rest of the gateway sees it.
pub struct Connection {
    /// Its cluster-wide id.
    pub id: ConnId,
    /// The id as text (sent in `welcome`, used in KV and SSE URLs).
    pub id_text: String,
    /// For SSE connections: the secret their `welcome` carried, which `POST /sse/{conn}` must
    /// present. `None` for WebSocket connections, which are never driven over `/sse`.
    sse_secret: Option<String>,
    /// Where frames for it are queued.
    pub outbox: Outbox,
    /// Who the client is and what it joined; locked while one of its requests runs, which
    /// also makes a connection's requests take effect one at a time, in order.
    pub session: tokio::sync::Mutex<crate::session::SessionState>,
    /// Milliseconds (gateway clock) when the client last showed it is alive.
    last_seen_ms: AtomicU64,
    /// RPCs of this connection waiting for their backend.
    pub rpcs_in_flight: std::sync::atomic::AtomicU8,
    /// Replays of missed events, and the live events waiting behind them.
    pub recovery: crate::recovery::Recovery,
    /// Whether it speaks the Pusher protocol (`/app/{key}`): events reach it as Pusher frames.
    pub speaks_pusher: bool,
}

impl Connection {
    /// A connection with an empty outbox; `sse_secret` for SSE connections only.
    pub fn new(id: ConnId, outbox: Outbox, sse_secret: Option<String>) -> Self {
        Connection {
            id_text: id.to_string(),
            sse_secret,
            id,
            outbox,
            session: Default::default(),
            last_seen_ms: AtomicU64::new(now_ms()),
            rpcs_in_flight: Default::default(),
            recovery: Default::default(),
            speaks_pusher: false,
        }
    }

    /// The connection, speaking the Pusher protocol.
    pub fn speaking_pusher(self) -> Self {
        Connection {
            speaks_pusher: true,
            ..self
        }
    }

    /// The secret an SSE client must send with its POSTs (`None` for WebSocket connections).
    pub fn sse_secret(&self) -> Option<&str> {
        self.sse_secret.as_deref()
    }

    /// Whether `presented` is this SSE connection's secret, compared in constant time so the
    /// time of a refusal says nothing of how much of a guess was right. Always `false` for a
    /// WebSocket connection.
    pub fn is_sse_secret(&self, presented: &str) -> bool {
        match &self.sse_secret {
            Some(secret) => bool::from(secret.as_bytes().ct_eq(presented.as_bytes())),
            None => false,
        }
    }

    /// Notes that the client is alive.
    pub fn seen(&self) {
        self.last_seen_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Milliseconds since the client last showed it is alive.
    pub fn silent_for_ms(&self) -> u64 {
        now_ms().saturating_sub(self.last_seen_ms.load(Ordering::Relaxed))
    }
}

fn now_ms() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

type Members = HashMap<u128, Arc<Connection>>;

#[derive(Default)]
struct Tables {
    connections: Members,
    users: HashMap<String, Members>,
    channels: HashMap<String, Members>,
}

/// The connections of this gateway and who they are.
#[derive(Default)]
pub struct Registry {
    tables: RwLock<Tables>,
}

/// Connections that get the same frame: same `via`.
pub struct Recipients {
    /// Which targets reached them.
    pub via: Via,
    /// The connections.
    pub connections: Vec<Arc<Connection>>,
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a new, anonymous connection; `false` (and nothing added) when its id is taken.
    pub fn insert(&self, connection: Arc<Connection>) -> bool {
        match self.write().connections.entry(connection.id.local) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(connection);
                true
            }
        }
    }

    /// The connection with local id `local`, if this gateway holds it.
    pub fn get(&self, local: u128) -> Option<Arc<Connection>> {
        self.read().connections.get(&local).cloned()
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.read().connections.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records that the connection is identified as `user`.
    pub fn identify(&self, connection: &Arc<Connection>, user: &str) {
        self.write()
            .users
            .entry(user.to_string())
            .or_default()
            .insert(connection.id.local, connection.clone());
    }

    /// Records that the connection joined `channel`.
    pub fn join(&self, connection: &Arc<Connection>, channel: &str) {
        self.write()
            .channels
            .entry(channel.to_string())
            .or_default()
            .insert(connection.id.local, connection.clone());
    }

    /// Records that the connection left `channel`.
    pub fn leave(&self, local: u128, channel: &str) {
        let mut tables = self.write();
        remove_member(&mut tables.channels, channel, local);
    }

    /// Forgets a connection, its user and its channels.
    pub fn remove(&self, local: u128, user: Option<&str>, channels: &[String]) {
        let mut tables = self.write();
        tables.connections.remove(&local);
        if let Some(user) = user {
            remove_member(&mut tables.users, user, local);
        }
        for channel in channels {
            remove_member(&mut tables.channels, channel, local);
        }
    }

    /// Every connection identified as `user`.
    pub fn connections_of(&self, user: &str) -> Vec<Arc<Connection>> {
        self.read()
            .users
            .get(user)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every connection that joined `channel`.
    pub fn members_of(&self, channel: &str) -> Vec<Arc<Connection>> {
        self.read()
            .channels
            .get(channel)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every connection, identified or not.
    pub fn all(&self) -> Vec<Arc<Connection>> {
        self.read().connections.values().cloned().collect()
    }

    /// The connections `targets` reach, each once, grouped by `via`.
    pub fn resolve(&self, targets: &Targets) -> Vec<Recipients> {
        let tables = self.read();
        // Fast path, the common case: one channel or one user, so one `via` for everyone.
        if !targets.broadcast && targets.users.len() + targets.channels.len() == 1 {
            let (index, name, via) = match (targets.users.first(), targets.channels.first()) {
                (Some(user), _) => (
                    &tables.users,
                    user,
                    Via {
                        users: vec![user.clone()],
                        ..Via::default()
                    },
                ),
                (None, Some(channel)) => (
                    &tables.channels,
                    channel,
                    Via {
                        channels: vec![channel.clone()],
                        ..Via::default()
                    },
                ),
                (None, None) => return Vec::new(),
            };
            return match index.get(name) {
                Some(members) if !members.is_empty() => vec![Recipients {
                    via,
                    connections: members.values().cloned().collect(),
                }],
                _ => Vec::new(),
            };
        }

        let mut reached: HashMap<u128, (Arc<Connection>, Via)> = HashMap::new();
        let mut reach = |members: Option<&Members>, note: &dyn Fn(&mut Via)| {
            for (local, connection) in members.into_iter().flatten() {
                let entry = reached
                    .entry(*local)
                    .or_insert_with(|| (connection.clone(), Via::default()));
                note(&mut entry.1);
            }
        };
        if targets.broadcast {
            for members in tables.users.values() {
                reach(Some(members), &|via| via.broadcast = true);
            }
        }
        for user in &targets.users {
            reach(tables.users.get(user), &|via| {
                push_once(&mut via.users, user)
            });
        }
        for channel in &targets.channels {
            reach(tables.channels.get(channel), &|via| {
                push_once(&mut via.channels, channel)
            });
        }
        drop(tables);
        let mut groups: HashMap<Via, Vec<Arc<Connection>>> = HashMap::new();
        for (_, (connection, via)) in reached {
            groups.entry(via).or_default().push(connection);
        }
        groups
            .into_iter()
            .map(|(via, connections)| Recipients { via, connections })
            .collect()
    }
}

fn push_once(names: &mut Vec<String>, name: &str) {
    // A target list may repeat a name; `via` lists it once.
    if !names.iter().any(|n| n == name) {
        names.push(name.to_string());
    }
}

fn remove_member(index: &mut HashMap<String, Members>, name: &str, local: u128) {
    if let Some(members) = index.get_mut(name) {
        members.remove(&local);
        if members.is_empty() {
            index.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::sync::CancellationToken;

    fn connection(local: u128) -> Arc<Connection> {
        let (outbox, receiver) = Outbox::new(4, 1024, &CancellationToken::new());
        std::mem::forget(receiver);
        Arc::new(Connection::new(
            ConnId {
                gateway: "g".into(),
                local,
            },
            outbox,
            None,
        ))
    }

    fn targets(users: &[&str], channels: &[&str], broadcast: bool) -> Targets {
        Targets {
            users: users.iter().map(|s| s.to_string()).collect(),
            channels: channels.iter().map(|s| s.to_string()).collect(),
            broadcast,
        }
    }

    fn summary(groups: Vec<Recipients>) -> Vec<(Vec<u128>, Via)> {
        let mut out: Vec<_> = groups
            .into_iter()
            .map(|g| {
                let mut locals: Vec<u128> = g.connections.iter().map(|c| c.id.local).collect();
                locals.sort_unstable();
                (locals, g.via)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn each_connection_once_with_every_via() {
        let registry = Registry::default();
        let (a1, a2, b) = (connection(1), connection(2), connection(3));
        for c in [&a1, &a2, &b] {
            registry.insert(c.clone());
        }
        registry.identify(&a1, "alice");
        registry.identify(&a2, "alice");
        registry.identify(&b, "bob");
        registry.join(&a1, "chat");
        registry.join(&b, "chat");

        let groups = summary(registry.resolve(&targets(&["alice"], &["chat", "chat"], false)));
        assert_eq!(
            groups,
            vec![
                (
                    vec![1],
                    Via {
                        users: vec!["alice".into()],
                        channels: vec!["chat".into()],
                        broadcast: false
                    }
                ),
                (
                    vec![2],
                    Via {
                        users: vec!["alice".into()],
                        ..Via::default()
                    }
                ),
                (
                    vec![3],
                    Via {
                        channels: vec!["chat".into()],
                        ..Via::default()
                    }
                ),
            ]
        );
        let one = summary(registry.resolve(&targets(&[], &["chat"], false)));
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].0, vec![1, 3]);
        assert!(registry
            .resolve(&targets(&["carol"], &[], false))
            .is_empty());
    }

    #[test]
    fn broadcast_reaches_identified_connections_only() {
        let registry = Registry::default();
        let (anon, alice) = (connection(1), connection(2));
        registry.insert(anon);
        registry.insert(alice.clone());
        registry.identify(&alice, "alice");
        let groups = summary(registry.resolve(&targets(&[], &[], true)));
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].0, vec![2]);
        assert!(groups[0].1.broadcast);
    }

    #[test]
    fn only_an_sse_connection_with_its_own_secret_is_owned() {
        let (outbox, receiver) = Outbox::new(4, 1024, &CancellationToken::new());
        std::mem::forget(receiver);
        let id = ConnId::random("g");
        let sse = Connection::new(id, outbox, Some("s3cret".into()));
        assert!(sse.is_sse_secret("s3cret"));
        for wrong in ["", "s3cre", "s3cret!", "S3CRET"] {
            assert!(!sse.is_sse_secret(wrong), "{wrong:?}");
        }
        assert!(!connection(1).is_sse_secret(""));
        let registry = Registry::default();
        let first = connection(7);
        assert!(registry.insert(first.clone()));
        assert!(
            !registry.insert(connection(7)),
            "a taken id is not replaced"
        );
        assert!(Arc::ptr_eq(&registry.get(7).expect("held"), &first));
    }

    #[test]
    fn removed_connections_are_not_reached() {
        let registry = Registry::default();
        let c = connection(1);
        registry.insert(c.clone());
        registry.identify(&c, "alice");
        registry.join(&c, "chat");
        registry.leave(1, "chat");
        assert!(registry.resolve(&targets(&[], &["chat"], false)).is_empty());
        registry.remove(1, Some("alice"), &[]);
        assert!(registry.resolve(&targets(&["alice"], &[], true)).is_empty());
        assert!(registry.is_empty());
    }
}
