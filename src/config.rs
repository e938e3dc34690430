//! Configuration: flags, then `HERALD_*` environment variables, then an optional TOML file,
//! then defaults, in that order of precedence.

use anyhow::{bail, Context};
use clap::Args;
use herald_adapters::file_tail::FileTailConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options every role understands. Each flag also reads `HERALD_<NAME>` and the TOML key of
/// the same name (with `_` for `-`).
#[derive(Args, Debug, Clone, Default)]
pub struct Options {
    /// TOML configuration file; flags and HERALD_* variables override its values.
    #[arg(long, env = "HERALD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// NATS server URL, or a comma-separated list of a cluster's servers; without it `serve`
    /// runs on an embedded in-memory bus.
    // Its value stays out of --help: the URL may carry a password.
    #[arg(long, env = "HERALD_NATS", value_name = "URL", hide_env_values = true)]
    pub nats: Option<String>,
    /// Address to listen on for HTTP (default 127.0.0.1:8080; port 0 picks a free one).
    #[arg(long, env = "HERALD_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Secret that signs client tokens (HS256), shared with the backend.
    #[arg(
        long,
        env = "HERALD_JWT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    /// Argon2id hash of an accepted API key; repeat for several. Make one with `herald
    /// passwd`. [env: HERALD_API_KEY_HASHES, separated by spaces or newlines, since hashes
    /// contain commas]
    #[arg(long = "api-key-hash", value_name = "HASH")]
    pub api_key_hashes: Vec<String>,
    /// File of `name:$argon2id$...` lines: users who may ident with a password.
    #[arg(long, env = "HERALD_USERS_FILE", value_name = "FILE")]
    pub users_file: Option<PathBuf>,
    /// Largest event payload in bytes (default 65536); larger ones get 413 / too_large.
    #[arg(long, env = "HERALD_MAX_PAYLOAD_BYTES", value_name = "BYTES")]
    pub max_payload_bytes: Option<usize>,
    /// Server ping interval in milliseconds (default 25000); silent clients are closed after
    /// two intervals.
    #[arg(long, env = "HERALD_HEARTBEAT_MS", value_name = "MS")]
    pub heartbeat_ms: Option<u64>,
    /// Frames a connection may have queued before it is closed as a slow consumer
    /// (default 1024).
    #[arg(long, env = "HERALD_OUTBOX_CAPACITY", value_name = "FRAMES")]
    pub outbox_capacity: Option<usize>,
    /// Bytes a connection may have queued before it is closed as a slow consumer (default
    /// 1048576; at least max-payload-bytes).
    #[arg(long, env = "HERALD_OUTBOX_MAX_BYTES", value_name = "BYTES")]
    pub outbox_max_bytes: Option<usize>,
    /// Channels one connection may have joined at once (default 100); a join beyond gets
    /// `forbidden`.
    #[arg(long, env = "HERALD_MAX_CHANNELS_PER_CONNECTION", value_name = "N")]
    pub max_channels_per_connection: Option<usize>,
    /// How often a gateway reports it is alive, in milliseconds (default 1000).
    #[arg(long, env = "HERALD_LIVENESS_INTERVAL_MS", value_name = "MS")]
    pub liveness_interval_ms: Option<u64>,
    /// A gateway silent this long, in milliseconds, is declared dead and its connections
    /// removed (default 3000).
    #[arg(long, env = "HERALD_GATEWAY_TIMEOUT_MS", value_name = "MS")]
    pub gateway_timeout_ms: Option<u64>,
    /// Replicas of Herald's JetStream KV buckets when this process creates them (default 1;
    /// 3 on a three-node NATS cluster so presence survives losing a node).
    #[arg(long, env = "HERALD_KV_REPLICAS", value_name = "N")]
    pub kv_replicas: Option<usize>,
    /// Public key (PEM: RSA, EC P-256 or Ed25519) that checks RS256 / ES256 / EdDSA client
    /// tokens, alongside HS256 tokens signed with --jwt-secret.
    #[arg(long, env = "HERALD_JWT_PUBLIC_KEY", value_name = "FILE")]
    pub jwt_public_key: Option<PathBuf>,
    /// JWKS file (`{"keys":[...]}`) whose keys check RS256 / ES256 / EdDSA client tokens; a
    /// token's `kid` picks the key.
    #[arg(long, env = "HERALD_JWT_JWKS", value_name = "FILE")]
    pub jwt_jwks: Option<PathBuf>,
    /// Longest token lifetime accepted and minted, in seconds (default 2592000, 30 days):
    /// tokens whose `exp` is further away are refused.
    #[arg(long, env = "HERALD_MAX_TOKEN_TTL_SECS", value_name = "SECS")]
    pub max_token_ttl_secs: Option<u64>,
    /// Argon2 hashes (API key and password checks not yet cached) run at once, process-wide
    /// (default 0: one per CPU); each takes 19 MiB while it runs.
    #[arg(long, env = "HERALD_MAX_CONCURRENT_HASHES", value_name = "N")]
    pub max_concurrent_hashes: Option<usize>,
    /// Failed authentications (API keys, idents) a client address may have per window before
    /// it is refused with 429 / rate_limited and a doubling backoff (default 20; 0: no limit).
    #[arg(long, env = "HERALD_AUTH_FAIL_LIMIT", value_name = "N")]
    pub auth_fail_limit: Option<u32>,
    /// The window of --auth-fail-limit, in seconds (default 60).
    #[arg(long, env = "HERALD_AUTH_FAIL_WINDOW_SECS", value_name = "SECS")]
    pub auth_fail_window_secs: Option<u64>,
    /// User name to log in to NATS with (with --nats-password); `user:password@` in the
    /// --nats URL works too.
    #[arg(long, env = "HERALD_NATS_USER", value_name = "USER")]
    pub nats_user: Option<String>,
    /// Password of --nats-user; better in HERALD_NATS_PASSWORD or the TOML file than on a
    /// command line other local users can read.
    #[arg(
        long,
        env = "HERALD_NATS_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub nats_password: Option<String>,
    /// Token to log in to NATS with (the server's `authorization { token }`).
    #[arg(
        long,
        env = "HERALD_NATS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub nats_token: Option<String>,
    /// File holding the NKey seed (SU...) to log in to NATS with.
    #[arg(long, env = "HERALD_NATS_NKEY", value_name = "SEED_FILE")]
    pub nats_nkey: Option<PathBuf>,
    /// NATS credentials file (user JWT and seed, as `nsc` writes) to log in with.
    #[arg(long, env = "HERALD_NATS_CREDS", value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// PEM file of the CA that signed the NATS servers' certificates; turns TLS on.
    #[arg(long, env = "HERALD_NATS_TLS_CA", value_name = "FILE")]
    pub nats_tls_ca: Option<PathBuf>,
    /// PEM client certificate for NATS servers that verify clients (with --nats-tls-key).
    #[arg(long, env = "HERALD_NATS_TLS_CERT", value_name = "FILE")]
    pub nats_tls_cert: Option<PathBuf>,
    /// PEM private key of --nats-tls-cert.
    #[arg(long, env = "HERALD_NATS_TLS_KEY", value_name = "FILE")]
    pub nats_tls_key: Option<PathBuf>,
    /// A client must send a request's headers (and finish the TLS handshake) within this
    /// many milliseconds, or its connection is closed (default 10000).
    #[arg(long, env = "HERALD_HEADER_READ_TIMEOUT_MS", value_name = "MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// PEM certificate chain: serve HTTPS/WSS on the listen address (with --tls-key);
    /// reloaded on SIGHUP.
    #[arg(long, env = "HERALD_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert; reloaded on SIGHUP.
    #[arg(long, env = "HERALD_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Open WebSocket/SSE connections a gateway accepts at most; more get 503 (default: the
    /// open-file limit minus 256, so health checks and NATS keep descriptors).
    #[arg(long, env = "HERALD_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Open WebSocket/SSE connections one client IP address may hold; more get 429
    /// (default 256; 0 turns the cap off).
    #[arg(long, env = "HERALD_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<usize>,
    /// Connections that have not identified within this many milliseconds are closed
    /// (close code 4003; default 10000).
    #[arg(long, env = "HERALD_IDENT_TIMEOUT_MS", value_name = "MS")]
    pub ident_timeout_ms: Option<u64>,
    /// Origins allowed on /ws and /sse, comma-separated (`https://app.example.com`, or `*`
    /// for any). Default: the request's own host; any when `herald serve` runs the demo.
    #[arg(
        long,
        env = "HERALD_ALLOWED_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,
}

/// The TOML file: the same keys as the flags.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileOptions {
    nats: Option<String>,
    listen: Option<SocketAddr>,
    jwt_secret: Option<String>,
    #[serde(default)]
    api_key_hashes: Vec<String>,
    users_file: Option<PathBuf>,
    max_payload_bytes: Option<usize>,
    heartbeat_ms: Option<u64>,
    outbox_capacity: Option<usize>,
    outbox_max_bytes: Option<usize>,
    max_channels_per_connection: Option<usize>,
    liveness_interval_ms: Option<u64>,
    gateway_timeout_ms: Option<u64>,
    kv_replicas: Option<usize>,
    jwt_public_key: Option<PathBuf>,
    jwt_jwks: Option<PathBuf>,
    max_token_ttl_secs: Option<u64>,
    max_concurrent_hashes: Option<usize>,
    auth_fail_limit: Option<u32>,
    auth_fail_window_secs: Option<u64>,
    header_read_timeout_ms: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    ident_timeout_ms: Option<u64>,
    allowed_origins: Option<Vec<String>>,
    /// `[[file_tail]]` tables: files the file-tail adapter (and `herald serve`) follows.
    #[serde(default)]
    file_tail: Vec<FileTailConfig>,
    redis_url: Option<String>,
    redis_channel: Option<String>,
    demo: Option<bool>,
    demo_public: Option<bool>,
    nats_user: Option<String>,
    nats_password: Option<String>,
    nats_token: Option<String>,
    nats_nkey: Option<PathBuf>,
    nats_creds: Option<PathBuf>,
    nats_tls_ca: Option<PathBuf>,
    nats_tls_cert: Option<PathBuf>,
    nats_tls_key: Option<PathBuf>,
}

/// Flags of `herald adapter file-tail`: one file; several go in the TOML file as `[[file_tail]]`
/// tables (`path`, `channel`, `event`, `from_start`), which `--file` replaces.
#[derive(Args, Debug, Clone, Default)]
pub struct FileTailArgs {
    /// File to follow (it may not exist yet; its directory must).
    #[arg(long, env = "HERALD_FILE", value_name = "PATH", requires_all = ["channel", "event"])]
    pub file: Option<PathBuf>,
    /// Channel each line is published to.
    #[arg(
        long,
        env = "HERALD_CHANNEL",
        value_name = "CHANNEL",
        requires = "file"
    )]
    pub channel: Option<String>,
    /// Event name of each line, e.g. LOG:LINE.
    #[arg(long, env = "HERALD_EVENT", value_name = "EVENT", requires = "file")]
    pub event: Option<String>,
    /// Publish the lines already in the file too (default: only lines appended from now on).
    #[arg(long, env = "HERALD_FROM_START", requires = "file")]
    pub from_start: bool,
}

impl FileTailArgs {
    /// `--file` (with its channel and event) replaces the `[[file_tail]]` tables of the TOML file.
    pub fn apply(self, settings: &mut Settings) {
        if let (Some(path), Some(channel), Some(event)) = (self.file, self.channel, self.event) {
            settings.file_tail = vec![FileTailConfig {
                path,
                channel,
                event,
                from_start: self.from_start,
                max_line_bytes: Some(settings.max_payload_bytes),
            }];
        }
    }
}

/// Flags of `herald adapter redis`.
#[derive(Args, Debug, Clone, Default)]
pub struct RedisArgs {
    /// Redis to subscribe to (default redis://127.0.0.1:6379).
    #[arg(long, env = "HERALD_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,
    /// Channel carrying notify bodies (default herald:notify); with *, ? or [ a pattern.
    #[arg(long, env = "HERALD_REDIS_CHANNEL", value_name = "CHANNEL")]
    pub redis_channel: Option<String>,
}

impl RedisArgs {
    /// Flags and environment override the TOML file's `redis_url` and `redis_channel`.
    pub fn apply(self, settings: &mut Settings) {
        if let Some(url) = self.redis_url {
            settings.redis_url = url;
        }
        if let Some(channel) = self.redis_channel {
            settings.redis_channel = channel;
        }
    }
}

/// Flags of `herald serve` and `herald gateway` about the demo page and its token endpoint.
#[derive(Args, Debug, Clone, Default)]
pub struct DemoArgs {
    /// Serve the demo page and its development-only token endpoint, which mints a token for
    /// any user name to anyone who reaches it (default: on only for `herald serve` on the
    /// embedded bus listening on loopback).
    #[arg(long, env = "HERALD_DEMO", conflicts_with = "no_demo")]
    pub demo: bool,
    /// Do not serve the demo.
    #[arg(long, env = "HERALD_NO_DEMO")]
    pub no_demo: bool,
    /// Allow the demo on a listen address other than loopback (it refuses to start there
    /// otherwise): anyone who reaches it can mint tokens.
    #[arg(long, env = "HERALD_DEMO_PUBLIC")]
    pub demo_public: bool,
}

impl DemoArgs {
    /// Flags and environment override the TOML file's `demo` and `demo_public`.
    pub fn apply(self, settings: &mut Settings) {
        if self.demo {
            settings.demo = Some(true);
        }
        if self.no_demo {
            settings.demo = Some(false);
        }
        settings.demo_public |= self.demo_public;
    }
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub nats: Option<String>,
    pub listen: SocketAddr,
    /// Whether `listen` was configured (flag, environment or TOML) rather than defaulted: the
    /// feed adapters serve `/healthz`, `/readyz` and `/metrics` only then.
    pub listen_configured: bool,
    pub jwt_secret: Option<String>,
    pub api_key_hashes: Vec<String>,
    pub users: herald_core::credentials::Users,
    pub max_payload_bytes: usize,
    pub heartbeat: Duration,
    pub outbox_capacity: usize,
    pub outbox_max_bytes: usize,
    pub max_channels_per_connection: usize,
    pub liveness_interval: Duration,
    pub gateway_timeout: Duration,
    pub kv_replicas: usize,
    /// Keys that check RS256 / ES256 / EdDSA tokens, read at startup (no HS256 secret yet).
    pub jwt_public_keys: herald_core::token::TokenKeys,
    /// Whether a JWT secret shorter than 32 bytes only warns (`herald serve` on the embedded
    /// bus) instead of stopping startup.
    pub allow_weak_jwt_secret: bool,
    pub max_token_ttl_secs: u64,
    pub max_concurrent_hashes: usize,
    pub auth_limit: herald_core::auth_limit::AuthLimiter,
    /// Files to follow; each with its line limit set (default: `max_payload_bytes`).
    pub file_tail: Vec<FileTailConfig>,
    pub redis_url: String,
    pub redis_channel: String,
    /// Whether to serve the demo, when chosen (flag, environment or TOML); see [`Settings::demo_on`].
    pub demo: Option<bool>,
    /// Whether the demo may listen on a non-loopback address.
    pub demo_public: bool,
    /// How to log in to NATS.
    pub nats_auth: crate::nats_auth::NatsAuth,
    pub header_read_timeout: Duration,
    /// Certificate and key files when HTTP is served over TLS.
    pub tls: Option<TlsFiles>,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub ident_timeout: Duration,
    /// `None`: the role's default (same host; any for `herald serve` with the demo).
    pub allowed_origins: Option<Vec<String>>,
}

impl Settings {
    /// Whether the `serve` (`serve == true`) or `gateway` role serves the demo: as chosen, or
    /// by default only for `herald serve` on the embedded bus listening on loopback. Refuses a
    /// demo on a non-loopback address unless `demo_public`.
    pub fn demo_on(&self, serve: bool) -> anyhow::Result<bool> {
        let loopback = self.listen.ip().is_loopback();
        let on = self
            .demo
            .unwrap_or(serve && self.nats.is_none() && loopback);
        if on && !loopback && !self.demo_public {
            bail!(
                "refusing to serve the demo on {}: its /demo/token endpoint mints a token for \
                 any user to anyone who reaches it; listen on 127.0.0.1, pass --no-demo, or \
                 --demo-public if you really mean it",
                self.listen
            );
        }
        Ok(on)
    }
}

/// The PEM files of the TLS certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Descriptors kept free under the open-file limit when `max_connections` is not configured:
/// for health checks, metrics scrapes, NATS and files.
const DESCRIPTOR_RESERVE: u64 = 256;

/// The default `max_connections`: the soft open-file limit minus [`DESCRIPTOR_RESERVE`].
fn default_max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    };
    soft.saturating_sub(DESCRIPTOR_RESERVE).clamp(16, 1 << 20) as usize
}

impl Options {
    /// Merges flags/env over the TOML file over defaults, and checks the result.
    pub fn resolve(self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileOptions::default(),
        };
        let from_env: Vec<String> = std::env::var("HERALD_API_KEY_HASHES")
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let api_key_hashes = [self.api_key_hashes, from_env, file.api_key_hashes]
            .into_iter()
            .find(|hashes| !hashes.is_empty())
            .unwrap_or_default();
        for (i, hash) in api_key_hashes.iter().enumerate() {
            herald_core::credentials::check_hash(hash)
                .map_err(|e| anyhow::anyhow!("API key hash #{}: {e}", i + 1))?;
        }
        let users = match self.users_file.or(file.users_file) {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read users file {}", path.display()))?;
                herald_core::credentials::Users::parse(&text)
                    .map_err(|e| anyhow::anyhow!("users file {}: {e}", path.display()))?
            }
            None => Default::default(),
        };
        let max_payload_bytes = self
            .max_payload_bytes
            .or(file.max_payload_bytes)
            .unwrap_or(65_536);
        if max_payload_bytes == 0 || max_payload_bytes > 1024 * 1024 {
            bail!("max-payload-bytes must be between 1 and 1048576 (NATS's default message limit)");
        }
        let outbox_max_bytes = self
            .outbox_max_bytes
            .or(file.outbox_max_bytes)
            .unwrap_or(1024 * 1024);
        if outbox_max_bytes < max_payload_bytes {
            bail!(
                "outbox-max-bytes ({outbox_max_bytes}) must be at least max-payload-bytes \
                 ({max_payload_bytes}), or no connection could be sent a full-size event"
            );
        }
        let max_channels_per_connection = self
            .max_channels_per_connection
            .or(file.max_channels_per_connection)
            .unwrap_or(100);
        if max_channels_per_connection == 0 {
            bail!("max-channels-per-connection must be positive");
        }
        let millis = |flag: Option<u64>, file: Option<u64>, default: u64, name: &str| {
            let ms = flag.or(file).unwrap_or(default);
            if ms == 0 {
                bail!("{name} must be positive");
            }
            Ok(Duration::from_millis(ms))
        };
        let max_token_ttl_secs = self
            .max_token_ttl_secs
            .or(file.max_token_ttl_secs)
            .unwrap_or(herald_core::token::DEFAULT_MAX_TTL_SECS);
        if max_token_ttl_secs < 60 {
            bail!("max-token-ttl-secs must be at least 60");
        }
        let jwt_public_keys = public_keys(
            self.jwt_public_key.or(file.jwt_public_key),
            self.jwt_jwks.or(file.jwt_jwks),
            max_token_ttl_secs,
        )?;
        let auth_fail_window_secs = self
            .auth_fail_window_secs
            .or(file.auth_fail_window_secs)
            .unwrap_or(60);
        if auth_fail_window_secs == 0 {
            bail!("auth-fail-window-secs must be positive");
        }
        let auth_limit = herald_core::auth_limit::AuthLimiter::new(
            self.auth_fail_limit.or(file.auth_fail_limit).unwrap_or(20),
            Duration::from_secs(auth_fail_window_secs),
        );
        let file_tail = file
            .file_tail
            .into_iter()
            .map(|mut entry| {
                entry.max_line_bytes.get_or_insert(max_payload_bytes);
                entry
            })
            .collect();
        Ok(Settings {
            nats: self.nats.or(file.nats),
            listen_configured: self.listen.or(file.listen).is_some(),
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            jwt_secret: self.jwt_secret.or(file.jwt_secret),
            api_key_hashes,
            users,
            max_payload_bytes,
            heartbeat: millis(self.heartbeat_ms, file.heartbeat_ms, 25_000, "heartbeat-ms")?,
            outbox_capacity: self
                .outbox_capacity
                .or(file.outbox_capacity)
                .unwrap_or(1024)
                .max(1),
            outbox_max_bytes,
            max_channels_per_connection,
            liveness_interval: millis(
                self.liveness_interval_ms,
                file.liveness_interval_ms,
                1_000,
                "liveness-interval-ms",
            )?,
            gateway_timeout: millis(
                self.gateway_timeout_ms,
                file.gateway_timeout_ms,
                3_000,
                "gateway-timeout-ms",
            )?,
            kv_replicas: match self.kv_replicas.or(file.kv_replicas).unwrap_or(1) {
                n @ 1..=5 => n,
                n => bail!("kv-replicas must be between 1 and 5 (NATS's limit), not {n}"),
            },
            jwt_public_keys,
            allow_weak_jwt_secret: false,
            max_token_ttl_secs,
            max_concurrent_hashes: self
                .max_concurrent_hashes
                .or(file.max_concurrent_hashes)
                .unwrap_or(0),
            auth_limit,
            file_tail,
            redis_url: file
                .redis_url
                .unwrap_or_else(|| herald_adapters::redis::DEFAULT_URL.to_string()),
            redis_channel: file
                .redis_channel
                .unwrap_or_else(|| herald_adapters::redis::DEFAULT_CHANNEL.to_string()),
            demo: file.demo,
            demo_public: file.demo_public.unwrap_or(false),
            nats_auth: crate::nats_auth::NatsAuth {
                user: self.nats_user.or(file.nats_user),
                password: self.nats_password.or(file.nats_password),
                token: self.nats_token.or(file.nats_token),
                nkey_file: self.nats_nkey.or(file.nats_nkey),
                creds_file: self.nats_creds.or(file.nats_creds),
                tls_ca: self.nats_tls_ca.or(file.nats_tls_ca),
                tls_cert: self.nats_tls_cert.or(file.nats_tls_cert),
                tls_key: self.nats_tls_key.or(file.nats_tls_key),
            },
            header_read_timeout: millis(
                self.header_read_timeout_ms,
                file.header_read_timeout_ms,
                10_000,
                "header-read-timeout-ms",
            )?,
            tls: match (
                self.tls_cert.or(file.tls_cert),
                self.tls_key.or(file.tls_key),
            ) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                (None, None) => None,
                _ => bail!("tls-cert and tls-key go together: give both, or neither"),
            },
            max_connections: match self.max_connections.or(file.max_connections) {
                Some(0) => bail!("max-connections must be positive"),
                Some(n) => n,
                None => default_max_connections(),
            },
            max_connections_per_address: self
                .max_connections_per_address
                .or(file.max_connections_per_address)
                .unwrap_or(256),
            ident_timeout: millis(
                self.ident_timeout_ms,
                file.ident_timeout_ms,
                10_000,
                "ident-timeout-ms",
            )?,
            allowed_origins: self.allowed_origins.or(file.allowed_origins),
        })
    }
}

/// The public keys of `--jwt-public-key` and `--jwt-jwks`, checked now so a bad file stops
/// startup with its name.
fn public_keys(
    pem: Option<PathBuf>,
    jwks: Option<PathBuf>,
    max_token_ttl_secs: u64,
) -> anyhow::Result<herald_core::token::TokenKeys> {
    let mut keys = herald_core::token::TokenKeys::new(None, max_token_ttl_secs);
    if let Some(path) = pem {
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read --jwt-public-key {}", path.display()))?;
        keys = keys
            .with_public_pem(&bytes)
            .map_err(|e| anyhow::anyhow!("--jwt-public-key {}: {e}", path.display()))?;
    }
    if let Some(path) = jwks {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read --jwt-jwks {}", path.display()))?;
        keys = keys
            .with_jwks(&text)
            .map_err(|e| anyhow::anyhow!("--jwt-jwks {}: {e}", path.display()))?;
    }
    Ok(keys)
}

fn read_file(path: &Path) -> anyhow::Result<FileOptions> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is invalid", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("herald-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("herald.toml");
        std::fs::write(&path, "heartbeat_ms = 1000\nmax_payload_bytes = 10\n").unwrap();
        let settings = Options {
            config: Some(path.clone()),
            max_payload_bytes: Some(20),
            ..Options::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(settings.max_payload_bytes, 20);
        assert_eq!(settings.heartbeat, Duration::from_millis(1000));
        assert_eq!(settings.gateway_timeout, Duration::from_millis(3_000));

        std::fs::write(&path, "heartbeat = 1\n").unwrap();
        let error = Options {
            config: Some(path),
            ..Options::default()
        }
        .resolve()
        .unwrap_err();
        assert!(format!("{error:#}").contains("unknown field"), "{error:#}");
    }

    #[test]
    fn connection_bounds_default_and_are_checked() {
        let settings = Options::default().resolve().unwrap();
        assert_eq!(settings.outbox_max_bytes, 1024 * 1024);
        assert_eq!(settings.max_channels_per_connection, 100);
        let error = Options {
            max_payload_bytes: Some(65_536),
            outbox_max_bytes: Some(1000),
            ..Options::default()
        }
        .resolve()
        .unwrap_err();
        assert!(
            error.to_string().contains("at least max-payload-bytes"),
            "{error}"
        );
        let error = Options {
            max_channels_per_connection: Some(0),
            ..Options::default()
        }
        .resolve()
        .unwrap_err();
        assert!(error.to_string().contains("positive"), "{error}");
    }

    #[test]
    fn kv_replicas_default_to_one_and_stay_within_nats_limits() {
        assert_eq!(Options::default().resolve().unwrap().kv_replicas, 1);
        let three = Options {
            kv_replicas: Some(3),
            ..Options::default()
        };
        assert_eq!(three.resolve().unwrap().kv_replicas, 3);
        let error = Options {
            kv_replicas: Some(7),
            ..Options::default()
        }
        .resolve()
        .unwrap_err();
        assert!(error.to_string().contains("between 1 and 5"), "{error}");
    }

    #[test]
    fn auth_and_token_options_have_defaults_and_check_their_files() {
        let settings = Options::default().resolve().unwrap();
        assert_eq!(settings.max_token_ttl_secs, 30 * 24 * 3600);
        assert_eq!(settings.max_concurrent_hashes, 0);
        assert!(settings.jwt_public_keys.is_empty());
        let error = Options {
            max_token_ttl_secs: Some(10),
            ..Options::default()
        }
        .resolve()
        .unwrap_err();
        assert!(error.to_string().contains("at least 60"), "{error}");
        let dir = std::env::temp_dir().join(format!("herald-config-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwks.json");
        std::fs::write(&path, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
        let error = Options {
            jwt_jwks: Some(path),
            ..Options::default()
        }
        .resolve()
        .unwrap_err();
        assert!(format!("{error:#}").contains("symmetric"), "{error:#}");
    }

    #[test]
    fn demo_on_by_default_only_for_a_local_embedded_serve() {
        let local = Options::default().resolve().unwrap();
        assert!(local.demo_on(true).unwrap(), "plain local herald serve");
        assert!(!local.demo_on(false).unwrap(), "gateway role");
        let nats = Options {
            nats: Some("nats://127.0.0.1:4222".into()),
            ..Options::default()
        }
        .resolve()
        .unwrap();
        assert!(!nats.demo_on(true).unwrap(), "serve --nats");
        let mut public = Options {
            listen: Some("0.0.0.0:8080".parse().unwrap()),
            ..Options::default()
        }
        .resolve()
        .unwrap();
        assert!(
            !public.demo_on(true).unwrap(),
            "off by default off loopback"
        );
        DemoArgs {
            demo: true,
            ..DemoArgs::default()
        }
        .apply(&mut public);
        let error = public.demo_on(true).unwrap_err().to_string();
        assert!(error.contains("--demo-public"), "{error}");
        DemoArgs {
            demo_public: true,
            ..DemoArgs::default()
        }
        .apply(&mut public);
        assert!(public.demo_on(false).unwrap());
    }

    #[test]
    fn file_tail_tables_and_redis_keys_with_flags_on_top() {
        let dir =
            std::env::temp_dir().join(format!("herald-config-adapters-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("herald.toml");
        std::fs::write(
            &path,
            "max_payload_bytes = 4096\nredis_channel = \"app:*\"\n\
             [[file_tail]]\npath = \"/var/log/a.log\"\nchannel = \"logs\"\nevent = \"LOG:A\"\n\
             [[file_tail]]\npath = \"/var/log/b.log\"\nchannel = \"logs\"\nevent = \"LOG:B\"\n\
             from_start = true\nmax_line_bytes = 512\n",
        )
        .unwrap();
        let options = Options {
            config: Some(path.clone()),
            ..Options::default()
        };
        let mut settings = options.clone().resolve().unwrap();
        assert_eq!(settings.file_tail.len(), 2);
        assert_eq!(settings.file_tail[0].max_line_bytes, Some(4096));
        assert!(!settings.file_tail[0].from_start);
        assert_eq!(settings.file_tail[1].max_line_bytes, Some(512));
        assert!(settings.file_tail[1].from_start);
        assert_eq!(settings.redis_channel, "app:*");
        assert_eq!(settings.redis_url, herald_adapters::redis::DEFAULT_URL);
        RedisArgs {
            redis_url: Some("redis://cache:6380".into()),
            redis_channel: None,
        }
        .apply(&mut settings);
        assert_eq!(
            (settings.redis_url.as_str(), settings.redis_channel.as_str()),
            ("redis://cache:6380", "app:*")
        );
        FileTailArgs {
            file: Some("/tmp/c.log".into()),
            channel: Some("c".into()),
            event: Some("E".into()),
            from_start: true,
        }
        .apply(&mut settings);
        assert_eq!(settings.file_tail.len(), 1);
        assert_eq!(settings.file_tail[0].path, PathBuf::from("/tmp/c.log"));
        assert_eq!(settings.file_tail[0].max_line_bytes, Some(4096));

        std::fs::write(
            &path,
            "[[file_tail]]\npath = \"x\"\nchannel = \"c\"\nevent = \"E\"\nfrom_end = true\n",
        )
        .unwrap();
        let error = options.resolve().unwrap_err();
        assert!(format!("{error:#}").contains("unknown field"), "{error:#}");
    }
    #[test]
    fn limits_tls_and_origins_from_the_file_with_safe_defaults() {
        let defaults = Options::default().resolve().unwrap();
        assert!(defaults.max_connections >= 16);
        assert_eq!(defaults.max_connections_per_address, 256);
        assert_eq!(defaults.ident_timeout, Duration::from_secs(10));
        assert_eq!(defaults.header_read_timeout, Duration::from_secs(10));
        assert!(defaults.tls.is_none() && defaults.allowed_origins.is_none());

        let dir = tempfile_dir("limits");
        let path = dir.join("herald.toml");
        std::fs::write(
            &path,
            "max_connections = 100\nmax_connections_per_address = 0\nident_timeout_ms = 500\n\
             header_read_timeout_ms = 700\nallowed_origins = [\"https://app.example.com\"]\n\
             tls_cert = \"/etc/herald/cert.pem\"\ntls_key = \"/etc/herald/key.pem\"\n",
        )
        .unwrap();
        let settings = Options {
            config: Some(path.clone()),
            ..Options::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            (
                settings.max_connections,
                settings.max_connections_per_address
            ),
            (100, 0)
        );
        assert_eq!(settings.ident_timeout, Duration::from_millis(500));
        assert_eq!(settings.header_read_timeout, Duration::from_millis(700));
        assert_eq!(
            settings.allowed_origins,
            Some(vec!["https://app.example.com".to_string()])
        );
        assert_eq!(
            settings.tls.unwrap().key,
            PathBuf::from("/etc/herald/key.pem")
        );

        std::fs::write(&path, "tls_cert = \"/etc/herald/cert.pem\"\n").unwrap();
        let error = Options {
            config: Some(path),
            ..Options::default()
        }
        .resolve()
        .unwrap_err();
        assert!(error.to_string().contains("go together"), "{error}");
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("herald-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
