//! `MemoryKv`: an in-process [`Kv`] for embedded mode and unit tests.
//!
//! Use it when every role runs in one process; state dies with the process, which is right
//! there because the connections it describes die with it too.

use super::{Kv, KvError};
use crate::subjects::subject_matches;
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// An in-memory [`Kv`].
#[derive(Clone, Default)]
pub struct MemoryKv {
    entries: Arc<RwLock<BTreeMap<String, Bytes>>>,
}

impl MemoryKv {
    /// An empty bucket.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Kv for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, KvError> {
        Ok(self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned())
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<(), KvError> {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), value);
        Ok(())
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<bool, KvError> {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.contains_key(key) {
            return Ok(false);
        }
        entries.insert(key.to_string(), value);
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        Ok(())
    }

    async fn entries(&self, filter: &str) -> Result<Vec<(String, Bytes)>, KvError> {
        // Every key filter starts with a literal first token; scan only that range.
        let first = filter.split('.').next().unwrap_or("");
        let literal = !first.contains(['*', '>']);
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let matching =
            |(k, v): (&String, &Bytes)| subject_matches(filter, k).then(|| (k.clone(), v.clone()));
        Ok(if literal {
            let start = format!("{first}.");
            entries
                .range(start.clone()..)
                .take_while(|(k, _)| k.starts_with(&start))
                .filter_map(matching)
                .collect()
        } else {
            entries.iter().filter_map(matching).collect()
        })
    }

    async fn is_ready(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_kv_conforms() {
        super::super::conformance::run_all(&super::MemoryKv::new(), "t").await;
    }
}
