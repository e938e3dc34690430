//! Configuration: flags, then `HERALD_*` environment variables, then an optional TOML file,
//! then defaults, in that order of precedence, resolved into checked [`Settings`].
//!
//! # Layout
//! - [`options`]: every option declared once (flag, environment, TOML key, default, doc).
//! - [`check`]: `herald check-config` and the options table of the README.

pub mod check;
mod options;

pub use options::{FileOptions, Options};

use anyhow::{bail, Context};
use clap::Args;
use herald_adapters::file_tail::FileTailConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Client publish: patterns, rate and hook.
    pub publish: herald_gateway::publish::PublishConfig,
    /// `[[rpc]]` routes.
    pub rpc_routes: Vec<herald_gateway::rpc::RpcRoute>,
    /// `[[webhook]]` tables.
    pub webhooks: Vec<herald_dispatcher::webhooks::WebhookConfig>,
    /// What each channel and user keeps in history.
    pub history: herald_core::history::HistoryPolicy,
    /// `[[pusher_app]]` tables.
    pub pusher_apps: herald_core::pusher::PusherApps,
    pub public_url: Option<String>,
    pub users_by_interest: bool,
    /// `None`: the role's default (on for `serve`).
    pub admin: Option<bool>,
    pub lifecycle_events: bool,
    pub rpc_timeout: Duration,
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
        self.resolve_with(file)
    }

    /// [`Options::resolve`] with the TOML file already read.
    pub fn resolve_with(mut self, file: FileOptions) -> anyhow::Result<Settings> {
        // Hashes contain commas, so the environment separates them by white space.
        if self.api_key_hashes.is_none() {
            self.api_key_hashes = std::env::var("HERALD_API_KEY_HASHES")
                .ok()
                .map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .filter(|hashes| !hashes.is_empty());
        }
        let listen_configured = self.listen.is_some() || file.listen.is_some();
        let o = self.merged(&file);
        let api_key_hashes = o.api_key_hashes.unwrap_or_default();
        for (i, hash) in api_key_hashes.iter().enumerate() {
            herald_core::credentials::check_hash(hash)
                .map_err(|e| anyhow::anyhow!("API key hash #{}: {e}", i + 1))?;
        }
        let users = match o.users_file {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read users file {}", path.display()))?;
                herald_core::credentials::Users::parse(&text)
                    .map_err(|e| anyhow::anyhow!("users file {}: {e}", path.display()))?
            }
            None => Default::default(),
        };
        // Every option below has a declared default, so these are set; `unwrap_or_default`
        // only spells that out.
        let max_payload_bytes = o.max_payload_bytes.unwrap_or_default();
        if max_payload_bytes == 0 || max_payload_bytes > 1024 * 1024 {
            bail!("max-payload-bytes must be between 1 and 1048576 (NATS's default message limit)");
        }
        let outbox_max_bytes = o.outbox_max_bytes.unwrap_or_default();
        if outbox_max_bytes < max_payload_bytes {
            bail!(
                "outbox-max-bytes ({outbox_max_bytes}) must be at least max-payload-bytes \
                 ({max_payload_bytes}), or no connection could be sent a full-size event"
            );
        }
        let max_channels_per_connection = o.max_channels_per_connection.unwrap_or_default();
        if max_channels_per_connection == 0 {
            bail!("max-channels-per-connection must be positive");
        }
        let millis = |ms: Option<u64>, name: &str| match ms.unwrap_or_default() {
            0 => bail!("{name} must be positive"),
            ms => Ok(Duration::from_millis(ms)),
        };
        let max_token_ttl_secs = o.max_token_ttl_secs.unwrap_or_default();
        if max_token_ttl_secs < 60 {
            bail!("max-token-ttl-secs must be at least 60");
        }
        let jwt_public_keys = public_keys(o.jwt_public_key, o.jwt_jwks, max_token_ttl_secs)?;
        let auth_fail_window_secs = o.auth_fail_window_secs.unwrap_or_default();
        if auth_fail_window_secs == 0 {
            bail!("auth-fail-window-secs must be positive");
        }
        let auth_limit = herald_core::auth_limit::AuthLimiter::new(
            o.auth_fail_limit.unwrap_or_default(),
            Duration::from_secs(auth_fail_window_secs),
        );
        let rpc_timeout = millis(o.rpc_timeout_ms, "rpc-timeout-ms")?;
        if let Some(hook) = &file.publish_hook {
            hook.check()
                .map_err(|e| anyhow::anyhow!("[publish_hook]: {e}"))?;
        }
        for (n, hook) in file.webhook.iter().enumerate() {
            hook.check().map_err(|e| {
                anyhow::anyhow!("[[webhook]] table {} ({:?}): {e}", n + 1, hook.url)
            })?;
        }
        for (n, route) in file.rpc.iter().enumerate() {
            route.check().map_err(|e| {
                anyhow::anyhow!("[[rpc]] table {} ({:?}): {e}", n + 1, route.prefix)
            })?;
        }
        let history = herald_core::history::HistoryPolicy {
            default: herald_core::history::Retention {
                size: o.history_size.unwrap_or_default(),
                ttl: Duration::from_secs(o.history_ttl_secs.unwrap_or_default()),
            },
            channels: file.channels.clone(),
        };
        history.check().map_err(|e| anyhow::anyhow!(e))?;
        let pusher_apps = herald_core::pusher::PusherApps::new(file.pusher_app.clone())
            .map_err(|e| anyhow::anyhow!(e))?;
        let file_tail = file
            .file_tail
            .into_iter()
            .map(|mut entry| {
                entry.max_line_bytes.get_or_insert(max_payload_bytes);
                entry
            })
            .collect();
        Ok(Settings {
            nats: o.nats,
            listen_configured,
            listen: o.listen.context("listen has a declared default")?,
            jwt_secret: o.jwt_secret,
            api_key_hashes,
            users,
            max_payload_bytes,
            heartbeat: millis(o.heartbeat_ms, "heartbeat-ms")?,
            outbox_capacity: o.outbox_capacity.unwrap_or_default().max(1),
            outbox_max_bytes,
            max_channels_per_connection,
            liveness_interval: millis(o.liveness_interval_ms, "liveness-interval-ms")?,
            gateway_timeout: millis(o.gateway_timeout_ms, "gateway-timeout-ms")?,
            kv_replicas: match o.kv_replicas.unwrap_or_default() {
                n @ 1..=5 => n,
                n => bail!("kv-replicas must be between 1 and 5 (NATS's limit), not {n}"),
            },
            jwt_public_keys,
            allow_weak_jwt_secret: false,
            max_token_ttl_secs,
            max_concurrent_hashes: o.max_concurrent_hashes.unwrap_or_default(),
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
                user: o.nats_user,
                password: o.nats_password,
                token: o.nats_token,
                nkey_file: o.nats_nkey,
                creds_file: o.nats_creds,
                tls_ca: o.nats_tls_ca,
                tls_cert: o.nats_tls_cert,
                tls_key: o.nats_tls_key,
            },
            header_read_timeout: millis(o.header_read_timeout_ms, "header-read-timeout-ms")?,
            tls: match (o.tls_cert, o.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                (None, None) => None,
                _ => bail!("tls-cert and tls-key go together: give both, or neither"),
            },
            max_connections: match o.max_connections {
                Some(0) => bail!("max-connections must be positive"),
                Some(n) => n,
                None => default_max_connections(),
            },
            max_connections_per_address: o.max_connections_per_address.unwrap_or_default(),
            ident_timeout: millis(o.ident_timeout_ms, "ident-timeout-ms")?,
            allowed_origins: o.allowed_origins,
            publish: herald_gateway::publish::PublishConfig {
                channels: o.client_publish.unwrap_or_default(),
                rate_per_sec: match o.client_publish_rate.unwrap_or_default() {
                    0 => bail!("client-publish-rate must be positive"),
                    n => n,
                },
                hook: file.publish_hook,
                hook_timeout: rpc_timeout,
            },
            rpc_routes: file.rpc,
            rpc_timeout,
            webhooks: file.webhook,
            history,
            pusher_apps,
            public_url: o.public_url,
            users_by_interest: o.users_by_interest.unwrap_or(true),
            admin: o.admin,
            lifecycle_events: o.lifecycle_events.unwrap_or_default(),
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

/// Reads and parses the TOML file (the first bad key stops it; `herald check-config` lists
/// them all).
pub fn read_file(path: &Path) -> anyhow::Result<FileOptions> {
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
