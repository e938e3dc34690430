//! Argon2id verification of API keys and passwords: bounded in memory, remembered under a keyed
//! digest, and as slow for an unknown user as for a wrong password.
//!
//! Argon2id is slow on purpose (tens of milliseconds, 19 MiB each). Three things keep that from
//! becoming a weapon:
//! - [`HashLimit`]: at most a few hashes run at once in the whole process; a few more wait
//!   briefly, and the rest are answered `rate_limited` at once, so a flood of unseen keys costs
//!   bounded memory instead of one 19 MiB block per request.
//! - The verdict cache: a backend posting thousands of events a second with the same key pays
//!   once. Verdicts are kept under SHA-256(process secret ‖ credential), so the cache never holds
//!   a credential and its keys are useless outside this process. Good verdicts are kept apart
//!   from bad ones: only a configured credential can make a good verdict, so that side is as
//!   small as the configuration, and a spray of bad keys can only evict other bad verdicts.
//! - [`Users`] verifies an unknown user's password against a dummy hash made once with the
//!   configured users' parameters, so the answer's timing does not reveal which names exist.

use crate::{ErrorCode, HeraldError};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, Params};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Bad verdicts remembered at most; beyond, the least used are evicted (good ones are kept apart).
const MAX_BAD_VERDICTS: u64 = 10_000;
/// Good verdicts remembered: one per configured credential, this is only a backstop.
const MAX_GOOD_VERDICTS: u64 = 10_000;
/// Hashes that may wait for a free thread, per thread; beyond that a check is refused at once.
const QUEUED_PER_PERMIT: usize = 16;
/// Longest wait for a free hashing thread before the check is refused.
const MAX_HASH_WAIT: Duration = Duration::from_secs(1);
/// The retry hint given with a refused check, in seconds.
const BUSY_RETRY_SECS: u64 = 1;

/// Hashes `secret` with argon2id and a random salt, in PHC string form (`$argon2id$...`).
pub fn hash_secret(secret: &str) -> Result<String, String> {
    hash_with(&Argon2::default(), secret)
}

fn hash_with(argon2: &Argon2<'_>, secret: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2
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

thread_local! {
    /// Argon2's working memory, kept by each hashing thread and reused: allocating 19 MiB per
    /// check left the allocator holding a little more after every one.
    static MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether `secret` matches the PHC string `hash` (compared in constant time).
fn verify(hash: &str, secret: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        argon2::Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| argon2::Version::try_from(v).ok())
        .unwrap_or_default();
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let hashed = MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        argon2.hash_password_into_with_memory(
            secret.as_bytes(),
            salt,
            &mut out,
            &mut memory[..blocks],
        )
    });
    hashed.is_ok() && argon2::password_hash::Output::new(&out).is_ok_and(|out| out == expected)
}

/// Bounds the argon2 hashes running at once, and those waiting for a turn. Hashes run on
/// `max_concurrent` threads of their own: each thread's allocator keeps the 19 MiB it last
/// used, so a fixed set of threads keeps the memory fixed too (the shared blocking pool would
/// spread it over as many threads as it grew to).
#[derive(Debug)]
pub struct HashLimit {
    jobs: std::sync::mpsc::SyncSender<Job>,
    max_concurrent: usize,
}

type Job = Box<dyn FnOnce() + Send>;

static PROCESS_LIMIT: OnceLock<Arc<HashLimit>> = OnceLock::new();

impl HashLimit {
    /// At most `max_concurrent` hashes at once (0: one per CPU), and 16 waiting per thread.
    pub fn new(max_concurrent: usize) -> Self {
        let max_concurrent = if max_concurrent == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            max_concurrent
        };
        let (jobs, queue) =
            std::sync::mpsc::sync_channel::<Job>(max_concurrent * QUEUED_PER_PERMIT);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..max_concurrent {
            let queue = queue.clone();
            let worker = move || loop {
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                // Ends when the limit is dropped (its sender with it).
                let Ok(job) = job else { return };
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            };
            if let Err(e) = std::thread::Builder::new()
                .name(format!("herald-hash-{i}"))
                .spawn(worker)
            {
                tracing::error!(%e, "cannot start a hashing thread");
            }
        }
        HashLimit {
            jobs,
            max_concurrent,
        }
    }

    /// Sets the limit every [`ApiKeys`] and [`Users`] of this process shares; call it once at
    /// startup, before the first check. Later calls change nothing and say so.
    pub fn set_process_wide(max_concurrent: usize) -> Result<(), String> {
        PROCESS_LIMIT
            .set(Arc::new(HashLimit::new(max_concurrent)))
            .map_err(|_| "the process-wide hashing limit was already set".to_string())
    }

    /// The limit shared by the whole process (one thread per CPU unless set otherwise).
    pub fn process_wide() -> Arc<HashLimit> {
        PROCESS_LIMIT
            .get_or_init(|| Arc::new(HashLimit::new(0)))
            .clone()
    }

    /// How many hashes may run at once.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// Runs `work` on a hashing thread. Refuses with `rate_limited` when too many already
    /// wait, or when no thread took it up within [`MAX_HASH_WAIT`] (it is then skipped).
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HeraldError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let queued = std::time::Instant::now();
        let job: Job = Box::new(move || {
            if queued.elapsed() <= MAX_HASH_WAIT {
                let _ = answer.send(work());
            }
        });
        match self.jobs.try_send(job) {
            Ok(()) => answered.await.map_err(|_| busy()),
            Err(std::sync::mpsc::TrySendError::Full(_)) => Err(busy()),
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                Err(HeraldError::internal("the hashing threads are gone"))
            }
        }
    }
}

fn busy() -> HeraldError {
    HeraldError::new(
        ErrorCode::RateLimited,
        format!(
            "too many credential checks in progress on this server; retry in {BUSY_RETRY_SECS} s"
        ),
    )
    .with_retry_after(BUSY_RETRY_SECS)
}

/// Verdicts under a keyed digest of the credential; good and bad ones kept apart, each a
/// bounded cache that evicts the least useful entries (TinyLFU), so a spray of bad keys
/// churns only the bad side and never evicts a verdict a backend keeps using.
struct VerdictCache {
    key: [u8; 32],
    good: moka::sync::Cache<[u8; 32], ()>,
    bad: moka::sync::Cache<[u8; 32], ()>,
}

impl Default for VerdictCache {
    fn default() -> Self {
        VerdictCache {
            key: rand::random(),
            good: moka::sync::Cache::new(MAX_GOOD_VERDICTS),
            bad: moka::sync::Cache::new(MAX_BAD_VERDICTS),
        }
    }
}

impl VerdictCache {
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
        if self.good.contains_key(digest) {
            return Some(true);
        }
        self.bad.contains_key(digest).then_some(false)
    }

    fn put(&self, digest: [u8; 32], verdict: bool) {
        if verdict {
            self.good.insert(digest, ());
        } else {
            self.bad.insert(digest, ());
        }
    }
}

/// Which hashing limit a credential set uses: the process's unless a test gives its own.
#[derive(Clone, Default)]
struct LimitChoice(Option<Arc<HashLimit>>);

impl LimitChoice {
    fn get(&self) -> Arc<HashLimit> {
        self.0.clone().unwrap_or_else(HashLimit::process_wide)
    }
}

/// The API keys a REST adapter accepts, as argon2id hashes.
#[derive(Clone)]
pub struct ApiKeys {
    hashes: Arc<Vec<String>>,
    cache: Arc<VerdictCache>,
    limit: LimitChoice,
}

impl ApiKeys {
    /// Accepts any key matching one of `hashes`.
    pub fn new(hashes: Vec<String>) -> Self {
        ApiKeys {
            hashes: Arc::new(hashes),
            cache: Arc::default(),
            limit: LimitChoice::default(),
        }
    }

    /// Uses `limit` instead of the process-wide hashing limit.
    pub fn with_hash_limit(mut self, limit: Arc<HashLimit>) -> Self {
        self.limit = LimitChoice(Some(limit));
        self
    }

    /// Whether `key` matches a configured hash. Slow the first time per key, then cached.
    /// `rate_limited` when the server is too busy hashing to check an unseen key now.
    pub async fn verify(&self, key: &str) -> Result<bool, HeraldError> {
        let digest = self.cache.digest(&[key]);
        if let Some(verdict) = self.cache.get(&digest) {
            return Ok(verdict);
        }
        let hashes = self.hashes.clone();
        let key = key.to_string();
        let verdict = self
            .limit
            .get()
            .run(move || hashes.iter().any(|h| verify(h, &key)))
            .await?;
        self.cache.put(digest, verdict);
        Ok(verdict)
    }
}

/// Users who may ident with a password: name → argon2id hash.
#[derive(Clone, Default)]
pub struct Users {
    hashes: Arc<HashMap<String, String>>,
    /// Verified instead of a hash when the user is unknown, so that costs the same.
    dummy: Option<Arc<str>>,
    cache: Arc<VerdictCache>,
    limit: LimitChoice,
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
    /// Users from a map of name to hash. Makes the dummy hash (one argon2 run) when not empty.
    pub fn new(hashes: HashMap<String, String>) -> Self {
        let dummy = hashes
            .values()
            .next()
            .map(|hash| Arc::from(dummy_like(hash)));
        Users {
            hashes: Arc::new(hashes),
            dummy,
            cache: Arc::default(),
            limit: LimitChoice::default(),
        }
    }

    /// Uses `limit` instead of the process-wide hashing limit.
    pub fn with_hash_limit(mut self, limit: Arc<HashLimit>) -> Self {
        self.limit = LimitChoice(Some(limit));
        self
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

    /// Whether `password` is `username`'s. Slow the first time per pair, then cached; as slow
    /// for an unknown user as for a wrong password. `rate_limited` when the server is too
    /// busy hashing to check now.
    pub async fn verify(&self, username: &str, password: &str) -> Result<bool, HeraldError> {
        let known = self.hashes.get(username);
        let Some(hash) = known.map(String::as_str).or(self.dummy.as_deref()) else {
            return Ok(false);
        };
        let digest = self.cache.digest(&[username, password]);
        if let Some(verdict) = self.cache.get(&digest) {
            return Ok(verdict);
        }
        let (hash, password, known) = (hash.to_string(), password.to_string(), known.is_some());
        let verdict = self
            .limit
            .get()
            .run(move || verify(&hash, &password) && known)
            .await?;
        self.cache.put(digest, verdict);
        Ok(verdict)
    }
}

/// A hash of a random secret with the parameters of `hash` (argon2's defaults if it has
/// none readable), so verifying against it costs what verifying against `hash` does.
fn dummy_like(hash: &str) -> String {
    let params = PasswordHash::new(hash)
        .ok()
        .and_then(|parsed| Params::try_from(&parsed).ok())
        .unwrap_or_default();
    let argon2 = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let secret = format!("{:032x}", rand::random::<u128>());
    hash_with(&argon2, &secret).unwrap_or_else(|_| hash.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn api_keys_verify_and_cache() {
        let keys = ApiKeys::new(vec![hash_secret("s3cret").unwrap()]);
        assert!(keys.verify("s3cret").await.unwrap());
        assert!(!keys.verify("wrong").await.unwrap());
        let started = Instant::now();
        for _ in 0..1000 {
            assert!(keys.verify("s3cret").await.unwrap());
        }
        // 1000 argon2 runs would take tens of seconds; cached verdicts take microseconds.
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn users_file_parses_and_verifies() {
        let text = format!("# users\nalice:{}\n\n", hash_secret("pw").unwrap());
        let users = Users::parse(&text).unwrap();
        assert_eq!(users.len(), 1);
        assert!(users.verify("alice", "pw").await.unwrap());
        assert!(!users.verify("alice", "nope").await.unwrap());
        assert!(!users.verify("bob", "pw").await.unwrap());
        assert!(Users::parse("alice").unwrap_err().contains("line 1"));
        assert!(Users::parse("alice:plain")
            .unwrap_err()
            .contains("herald passwd"));
    }

    /// A spray of distinct bad keys used to empty the whole cache, good verdicts included,
    /// so the next request with the real key paid argon2 again.
    #[tokio::test]
    async fn a_spray_of_bad_keys_cannot_evict_a_good_verdict() {
        let keys = ApiKeys::new(vec![hash_secret("good-key").unwrap()]);
        assert!(keys.verify("good-key").await.unwrap());
        // Feed bad verdicts straight into the cache: 20,000 argon2 runs would take minutes.
        for i in 0..20_000u32 {
            let digest = keys.cache.digest(&[&format!("bad-{i}")]);
            keys.cache.put(digest, false);
        }
        let started = Instant::now();
        assert!(keys.verify("good-key").await.unwrap());
        assert!(
            started.elapsed() < Duration::from_millis(5),
            "good key no longer cached: {:?}",
            started.elapsed()
        );
    }

    fn median(mut samples: Vec<Duration>) -> Duration {
        samples.sort();
        samples[samples.len() / 2]
    }

    /// An unknown user used to be refused at once (0.3 ms) and a wrong password after argon2
    /// (40 ms): the difference told an attacker which user names exist.
    #[tokio::test]
    async fn unknown_user_costs_as_much_as_a_wrong_password() {
        let text = format!("alice:{}\n", hash_secret("pw").unwrap());
        let users = Users::parse(&text).unwrap();
        let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
        for i in 0..5 {
            // Distinct passwords so no verdict comes from the cache.
            let started = Instant::now();
            assert!(!users.verify("mallory", &format!("x{i}")).await.unwrap());
            unknown.push(started.elapsed());
            let started = Instant::now();
            assert!(!users.verify("alice", &format!("x{i}")).await.unwrap());
            wrong.push(started.elapsed());
        }
        let (unknown, wrong) = (median(unknown), median(wrong));
        let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
        assert!(
            (0.5..=2.0).contains(&ratio),
            "unknown user {unknown:?} vs wrong password {wrong:?}"
        );
    }

    /// Unseen keys used to run argon2 with no bound (19 MiB each): 48 at once took the process
    /// from 220 MiB to 1.1 GiB. Now at most `max_concurrent` run; a few wait; the rest are
    /// refused at once with a retry hint.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_hashing_is_bounded_and_the_rest_refused() {
        let limit = Arc::new(HashLimit::new(1));
        let keys = ApiKeys::new(vec![hash_secret("good-key").unwrap()]).with_hash_limit(limit);
        let checks: Vec<_> = (0..64)
            .map(|i| {
                let keys = keys.clone();
                tokio::spawn(async move { keys.verify(&format!("random-{i}")).await })
            })
            .collect();
        let mut refused = 0;
        for check in checks {
            match check.await.unwrap() {
                Ok(verdict) => assert!(!verdict),
                Err(e) => {
                    assert_eq!(e.code, ErrorCode::RateLimited);
                    assert_eq!(e.retry_after_secs, Some(BUSY_RETRY_SECS));
                    refused += 1;
                }
            }
        }
        // One thread and 16 waiting: of 64 at once, at least 64 - 17 are refused.
        assert!(refused >= 64 - 17, "only {refused} refused");
    }
}
