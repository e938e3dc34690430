//! How many events, and for how long, each channel and user keeps: defaults, and
//! `[[channels]]` tables by channel name pattern (the first that matches wins).

use super::Target;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What one target keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events kept at most (0: no history).
    pub size: usize,
    /// How long each is kept.
    pub ttl: Duration,
}

impl Retention {
    /// Whether the target keeps no history at all.
    pub fn is_off(&self) -> bool {
        self.size == 0 || self.ttl.is_zero()
    }
}

/// A `[[channels]]` table: the history of the channels a pattern matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRetention {
    /// Channel name pattern (`*` matches any run of characters), e.g. `logs-*`.
    pub pattern: String,
    /// Events kept at most; 0 keeps none. Unset: the default `history_size`.
    #[serde(default)]
    pub history_size: Option<usize>,
    /// Seconds each is kept. Unset: the default `history_ttl_secs`.
    #[serde(default)]
    pub history_ttl_secs: Option<u64>,
}

impl ChannelRetention {
    /// What the channels this table takes keep, `default` where it says nothing.
    fn retention(&self, default: Retention) -> Retention {
        Retention {
            size: self.history_size.unwrap_or(default.size),
            ttl: self
                .history_ttl_secs
                .map_or(default.ttl, Duration::from_secs),
        }
    }
}

/// Every target's retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Users, and channels no table matches.
    pub default: Retention,
    /// Channel tables, first match wins.
    pub channels: Vec<ChannelRetention>,
}

impl Default for HistoryPolicy {
    fn default() -> Self {
        HistoryPolicy {
            default: Retention {
                size: DEFAULT_SIZE,
                ttl: super::DEFAULT_TTL,
            },
            channels: Vec::new(),
        }
    }
}

/// The default `history_size`.
pub const DEFAULT_SIZE: usize = 100;

impl HistoryPolicy {
    /// What `target` keeps. A Pusher app's channel keeps nothing (Pusher's protocol cannot
    /// ask for history; keeping it would only cost), a cache channel its last event, unless a
    /// table whose pattern names Pusher channels (`pusher:…`) says otherwise.
    pub fn retention(&self, target: &Target) -> Retention {
        let Target::Channel(channel) = target else {
            return self.default;
        };
        let pusher = crate::pusher::pusher_channel(channel);
        let default = match &pusher {
            // A cache channel keeps its last event, for its next subscriber.
            Some((_, name)) => Retention {
                size: usize::from(crate::pusher::is_cache(name)),
                ttl: self.default.ttl,
            },
            None => self.default,
        };
        let pusher = pusher.is_some();
        self.channels
            .iter()
            .filter(|t| !pusher || t.pattern.starts_with(crate::pusher::NAMESPACE))
            .find(|t| crate::token::grants_allow(std::slice::from_ref(&t.pattern), channel))
            .map_or(default, |t| t.retention(self.default))
    }

    /// The most any target keeps: what the store itself must keep (a Pusher cache channel's
    /// last event included, whatever `history_size` says).
    pub fn widest(&self) -> Retention {
        let tables = self.channels.iter().map(|t| t.retention(self.default));
        let cache = Retention {
            size: 1,
            ttl: self.default.ttl,
        };
        let all = [self.default, cache].into_iter().chain(tables);
        all.fold(
            Retention {
                size: 0,
                ttl: Duration::ZERO,
            },
            |a, b| Retention {
                size: a.size.max(b.size),
                ttl: a.ttl.max(b.ttl),
            },
        )
    }

    /// Checks the tables: patterns not empty, sizes within what one page replays.
    pub fn check(&self) -> Result<(), String> {
        for (n, table) in self.channels.iter().enumerate() {
            if table.pattern.is_empty() {
                return Err(format!("[[channels]] table {}: empty pattern", n + 1));
            }
        }
        let widest = self.widest();
        if widest.size > super::MAX_PAGE * 10 {
            return Err(format!(
                "history_size {} is more than the {} events a stream may keep",
                widest.size,
                super::MAX_PAGE * 10
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_table_wins_and_users_take_the_default() {
        let policy = HistoryPolicy {
            channels: vec![
                ChannelRetention {
                    pattern: "logs-*".into(),
                    history_size: Some(0),
                    history_ttl_secs: None,
                },
                ChannelRetention {
                    pattern: "*".into(),
                    history_size: None,
                    history_ttl_secs: Some(3600),
                },
            ],
            ..HistoryPolicy::default()
        };
        assert!(policy.retention(&Target::Channel("logs-a".into())).is_off());
        let chat = policy.retention(&Target::Channel("chat".into()));
        assert_eq!((chat.size, chat.ttl.as_secs()), (100, 3600));
        assert_eq!(
            policy.retention(&Target::User("logs-a".into())),
            policy.default
        );
        assert_eq!(policy.widest().ttl.as_secs(), 3600);
        // Pusher channels keep nothing, whatever `*` says, unless a `pusher:` table asks; cache
        // channels their last event.
        assert!(policy
            .retention(&Target::Channel("pusher:1:chat".into()))
            .is_off());
        let cache = policy.retention(&Target::Channel("pusher:1:private-cache-x".into()));
        assert_eq!(cache.size, 1);
        let asked = HistoryPolicy {
            channels: vec![ChannelRetention {
                pattern: "pusher:1:*".into(),
                history_size: Some(10),
                history_ttl_secs: None,
            }],
            ..HistoryPolicy::default()
        };
        assert_eq!(
            asked
                .retention(&Target::Channel("pusher:1:chat".into()))
                .size,
            10
        );
    }

    #[test]
    fn the_widest_counts_each_table_as_written() {
        // The text "ab*" matches "a*": looking a table up by its pattern's text would find the
        // first table and miss this one's 500.
        let policy = HistoryPolicy {
            channels: vec![
                ChannelRetention {
                    pattern: "a*".into(),
                    history_size: Some(0),
                    history_ttl_secs: None,
                },
                ChannelRetention {
                    pattern: "ab*".into(),
                    history_size: Some(500),
                    history_ttl_secs: None,
                },
            ],
            ..HistoryPolicy::default()
        };
        assert_eq!(policy.widest().size, 500);
    }
}
