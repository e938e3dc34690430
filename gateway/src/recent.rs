//! The ids of the events this gateway delivered lately, so a copy of one is dropped.
//!
//! An adapter whose dispatcher went silent sends the event again under the same id (see
//! `herald_core::bus::failover`); when the silent dispatcher had published it before dying,
//! the gateway receives it twice. Remembering the last [`CAPACITY`] ids (a keyed 64-bit digest
//! each, about 1.5 MiB in all) covers a retry that comes within a second at up to 60,000
//! events a second, with one hash lookup per event and nothing per connection.

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;

/// How many event ids a gateway remembers.
pub(crate) const CAPACITY: usize = 65_536;

/// A bounded set of recent event ids, oldest forgotten first.
pub(crate) struct RecentEvents {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
    keys: std::collections::hash_map::RandomState,
    capacity: usize,
}

impl RecentEvents {
    /// An empty set remembering up to `capacity` ids.
    pub(crate) fn new(capacity: usize) -> Self {
        RecentEvents {
            seen: HashSet::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
            keys: Default::default(),
            capacity,
        }
    }

    /// Records `id`; false when it was already there (a copy to drop).
    pub(crate) fn first_time(&mut self, id: &str) -> bool {
        let digest = self.keys.hash_one(id);
        if !self.seen.insert(digest) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.order.push_back(digest);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_refused_until_the_id_is_forgotten() {
        let mut recent = RecentEvents::new(2);
        assert!(recent.first_time("a"));
        assert!(!recent.first_time("a"));
        assert!(recent.first_time("b"));
        assert!(recent.first_time("c"));
        // "a" was the oldest of three in a set of two: forgotten, so taken again.
        assert!(recent.first_time("a"));
        assert!(!recent.first_time("c"));
    }
}
