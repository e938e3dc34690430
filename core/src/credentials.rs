//! Argon2id verification of API keys and passwords, remembered under a keyed digest.
//!
//! Argon2id is slow on purpose (tens of milliseconds). A backend posting thousands of events a
//! second with the same key must not pay that each time, so each verdict is cached under
//! SHA-256(process secret ‖ credential): the cache never holds a credential, and its keys are
//! useless outside this process.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most verdicts remembered; past that the cache starts afresh (cheap and bounded).
const MAX_CACHED_VERDICTS: usize = 10_000;

/// Hashes `secret` with argon2id and a random salt, in PHC string form (`$argon2id$...`).
pub fn hash_secret(secret: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks that `hash` is a PHC string argon2 can verify against; says why not.
pub fn check_hash(hash: &str) -> Result<(), String> {
    PasswordHash::new(hash)
        .map(|_| ())
        .map_err(|e| format!("not an argon2id hash ({e}); make one with `herald passwd`"))
}

fn verify(hash: &str, secret: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[derive(Default)]
struct VerdictCache {
    key: [u8; 32],
    verdicts: Mutex<HashMap<[u8; 32], bool>>,
}

impl VerdictCache {
    fn new() -> Self {
        VerdictCache {
            key: rand::random(),
            verdicts: Mutex::default(),
        }
    }

    fn digest(&self, parts: &[&str]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.finalize().into()
    }

    fn get(&self, digest: &[u8; 32]) -> Option<bool> {
        self.verdicts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
            .copied()
    }

    fn put(&self, digest: [u8; 32], verdict: bool) {
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|e| e.into_inner());
        if verdicts.len() >= MAX_CACHED_VERDICTS {
            verdicts.clear();
        }
        verdicts.insert(digest, verdict);
    }
}

/// The API keys a REST adapter accepts, as argon2id hashes.
#[derive(Clone)]
pub struct ApiKeys {
    hashes: Arc<Vec<String>>,
    cache: Arc<VerdictCache>,
}

impl ApiKeys {
    /// Accepts any key matching one of `hashes`.
    pub fn new(hashes: Vec<String>) -> Self {
        ApiKeys {
            hashes: Arc::new(hashes),
            cache: Arc::new(VerdictCache::new()),
        }
    }

    /// Whether `key` matches a configured hash. Slow the first time per key, then cached.
    pub async fn verify(&self, key: &str) -> bool {
        let digest = self.cache.digest(&[key]);
        if let Some(verdict) = self.cache.get(&digest) {
            return verdict;
        }
        let hashes = self.hashes.clone();
        let key = key.to_string();
        let verdict = tokio::task::spawn_blocking(move || hashes.iter().any(|h| verify(h, &key)))
            .await
            .unwrap_or(false);
        self.cache.put(digest, verdict);
        verdict
    }
}

/// Users who may ident with a password: name → argon2id hash.
#[derive(Clone, Default)]
pub struct Users {
    hashes: Arc<HashMap<String, String>>,
    cache: Arc<VerdictCache>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: hashes stay out of logs.
        f.debug_struct("Users")
            .field("names", &self.hashes.keys())
            .finish()
    }
}

impl Users {
    /// Users from a map of name to hash.
    pub fn new(hashes: HashMap<String, String>) -> Self {
        Users {
            hashes: Arc::new(hashes),
            cache: Arc::new(VerdictCache::new()),
        }
    }

    /// Parses a users file: one `name:$argon2id$...` per line, `#` comments and blank lines
    /// ignored. Errors name the line.
    pub fn parse(text: &str) -> Result<Users, String> {
        let mut hashes = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: expected `name:hash`", number + 1))?;
            crate::names::check_name("user", name)
                .map_err(|e| format!("line {}: {}", number + 1, e.message))?;
            check_hash(hash).map_err(|e| format!("line {}: {e}", number + 1))?;
            hashes.insert(name.to_string(), hash.to_string());
        }
        Ok(Users::new(hashes))
    }

    /// How many users are configured.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether no users are configured.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `password` is `username`'s. Slow the first time per pair, then cached.
    pub async fn verify(&self, username: &str, password: &str) -> bool {
        let Some(hash) = self.hashes.get(username).cloned() else {
            return false;
        };
        let digest = self.cache.digest(&[username, password]);
        if let Some(verdict) = self.cache.get(&digest) {
            return verdict;
        }
        let password = password.to_string();
        let verdict = tokio::task::spawn_blocking(move || verify(&hash, &password))
            .await
            .unwrap_or(false);
        self.cache.put(digest, verdict);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn api_keys_verify_and_cache() {
        let keys = ApiKeys::new(vec![hash_secret("s3cret").unwrap()]);
        assert!(keys.verify("s3cret").await);
        assert!(!keys.verify("wrong").await);
        let started = std::time::Instant::now();
        for _ in 0..1000 {
            assert!(keys.verify("s3cret").await);
        }
        // 1000 argon2 runs would take tens of seconds; cached verdicts take microseconds.
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[tokio::test]
    async fn users_file_parses_and_verifies() {
        let text = format!("# users\nalice:{}\n\n", hash_secret("pw").unwrap());
        let users = Users::parse(&text).unwrap();
        assert_eq!(users.len(), 1);
        assert!(users.verify("alice", "pw").await);
        assert!(!users.verify("alice", "nope").await);
        assert!(!users.verify("bob", "pw").await);
        assert!(Users::parse("alice").unwrap_err().contains("line 1"));
        assert!(Users::parse("alice:plain")
            .unwrap_err()
            .contains("herald passwd"));
    }
}
