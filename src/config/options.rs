//! Every option Herald takes, declared once: its flag and environment variable (clap), its TOML
//! key (the field's name), its default and its documentation. `--help`, the README's table and
//! `herald check-config` all follow from this list.

use clap::Args;
use herald_adapters::file_tail::FileTailConfig;
use herald_core::defaults;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What an option is when nobody set it.
pub struct Default<T> {
    /// The value, if there is one that does not depend on anything else.
    pub value: Option<T>,
    /// What the documentation says besides the value (or instead of it, when there is none).
    pub note: &'static str,
}

impl<T: std::fmt::Debug> Default<T> {
    /// How the documentation shows it.
    pub fn shown(&self) -> String {
        match (&self.value, self.note) {
            (Some(value), "") => format!("{value:?}"),
            (Some(value), note) => format!("{value:?} {note}"),
            (None, note) => note.to_string(),
        }
    }
}

/// A default value.
fn value<T>(value: T) -> Default<T> {
    Default {
        value: Some(value),
        note: "",
    }
}

/// A default value and a word about it.
fn noted<T>(value: T, note: &'static str) -> Default<T> {
    Default {
        value: Some(value),
        note,
    }
}

/// No value: the option is off, or something else decides (said in `note`).
fn absent<T>(note: &'static str) -> Default<T> {
    Default { value: None, note }
}

/// Declares the options: one entry per option (doc comment, clap attribute, `name: Type =
/// default`), generating the flags ([`Options`]), the TOML keys ([`FileOptions`]), their
/// merge, and the defaults table ([`defaults`]).
macro_rules! options {
    ($( $(#[$attr:meta])* $name:ident : $ty:ty = $default:expr ; )*) => {
        /// Options every role understands: each is a flag, a `HERALD_*` variable and a key of
        /// the TOML file, in that order of precedence.
        #[derive(Args, Debug, Clone, Default)]
        pub struct Options {
            /// TOML configuration file; flags and HERALD_* variables override its values.
            #[arg(long, env = "HERALD_CONFIG", value_name = "FILE")]
            pub config: Option<PathBuf>,
            $( $(#[$attr])* pub $name: Option<$ty>, )*
        }

        /// The TOML file: the keys of [`Options`], and the tables and keys of the adapter
        /// and demo flags.
        #[derive(Deserialize, Debug, Default)]
        #[serde(deny_unknown_fields)]
        pub struct FileOptions {
            $( pub $name: Option<$ty>, )*
            /// `[[file_tail]]` tables: files the file-tail adapter (and `herald serve`) follows.
            #[serde(default)]
            pub file_tail: Vec<FileTailConfig>,
            /// See [`super::RedisArgs`].
            pub redis_url: Option<String>,
            /// See [`super::RedisArgs`].
            pub redis_channel: Option<String>,
            /// See [`super::DemoArgs`].
            pub demo: Option<bool>,
            /// See [`super::DemoArgs`].
            pub demo_public: Option<bool>,
            /// `[publish_hook]`: a backend that may reject or rewrite each client publish.
            pub publish_hook: Option<herald_gateway::backend::BackendEndpoint>,
            /// `[[rpc]]` tables: HTTP routes of client RPCs by method prefix.
            #[serde(default)]
            pub rpc: Vec<herald_gateway::rpc::RpcRoute>,
            /// `[[webhook]]` tables: backends that receive lifecycle events.
            #[serde(default)]
            pub webhook: Vec<herald_dispatcher::webhooks::WebhookConfig>,
            /// `[[channels]]` tables: the history of the channels a pattern matches.
            #[serde(default)]
            pub channels: Vec<herald_core::history::policy::ChannelRetention>,
            /// `[[pusher_app]]` tables: apps Pusher clients and server SDKs use.
            #[serde(default)]
            pub pusher_app: Vec<herald_core::pusher::PusherApp>,
        }

        impl Options {
            /// Each option from the flags (or environment), else the file, else its default.
            pub fn merged(self, file: &FileOptions) -> Options {
                Options {
                    config: self.config,
                    $( $name: self.$name.or_else(|| file.$name.clone()).or_else(|| {
                        let default: Default<$ty> = $default;
                        default.value
                    }), )*
                }
            }
        }

        /// Each option's TOML key and how its default is shown, in declaration order.
        pub fn defaults() -> Vec<(&'static str, String)> {
            vec![
                ("config", "none".to_string()),
                $( (stringify!($name), { let default: Default<$ty> = $default; default.shown() }), )*
            ]
        }
    };
}

options! {
    /// NATS server URL, or a comma-separated list of a cluster's servers; required by
    /// `gateway`, `dispatcher` and `adapter`.
    // Its value stays out of --help: the URL may carry a password.
    #[arg(long, env = "HERALD_NATS", value_name = "URL", hide_env_values = true)]
    nats: String = absent("none (`serve`: the embedded in-memory bus)");
    /// HTTP address to listen on; port 0 picks a free one.
    #[arg(long, env = "HERALD_LISTEN", value_name = "ADDR")]
    listen: SocketAddr = value(SocketAddr::from(([127, 0, 0, 1], 8080)));
    /// HS256 secret shared with the backend, at least 32 bytes (`openssl rand -base64 32`);
    /// shorter stops every role but a local `serve`, which warns.
    #[arg(long, env = "HERALD_JWT_SECRET", value_name = "SECRET", hide_env_values = true)]
    jwt_secret: String = absent("`serve`: random per run");
    /// Argon2id hash of an accepted API key (`herald passwd` makes one); repeat the flag for
    /// several. Environment: HERALD_API_KEY_HASHES, separated by spaces or newlines (hashes
    /// contain commas); TOML: a list.
    #[arg(long = "api-key-hash", value_name = "HASH")]
    api_key_hashes: Vec<String> = absent("`serve`: one generated key");
    /// File of `name:$argon2id$…` lines: users who may ident with a password.
    #[arg(long, env = "HERALD_USERS_FILE", value_name = "FILE")]
    users_file: PathBuf = absent("none");
    /// Largest event payload and client frame in bytes; larger ones get 413 / `too_large`.
    #[arg(long, env = "HERALD_MAX_PAYLOAD_BYTES", value_name = "BYTES")]
    max_payload_bytes: usize = value(defaults::MAX_PAYLOAD_BYTES);
    /// Server ping interval in milliseconds; silent clients are closed after two.
    #[arg(long, env = "HERALD_HEARTBEAT_MS", value_name = "MS")]
    heartbeat_ms: u64 = value(defaults::HEARTBEAT_MS);
    /// Frames queued per connection before it is closed as a slow consumer.
    #[arg(long, env = "HERALD_OUTBOX_CAPACITY", value_name = "FRAMES")]
    outbox_capacity: usize = value(defaults::OUTBOX_FRAMES);
    /// Bytes queued per connection before it is closed as a slow consumer; at least
    /// `max_payload_bytes`.
    #[arg(long, env = "HERALD_OUTBOX_MAX_BYTES", value_name = "BYTES")]
    outbox_max_bytes: usize = value(defaults::OUTBOX_BYTES);
    /// Channels one connection may have joined at once; a join beyond gets `forbidden`.
    #[arg(long, env = "HERALD_MAX_CHANNELS_PER_CONNECTION", value_name = "N")]
    max_channels_per_connection: usize = value(defaults::CHANNELS_PER_CONNECTION);
    /// How often a gateway tells the dispatchers it is alive, in milliseconds.
    #[arg(long, env = "HERALD_LIVENESS_INTERVAL_MS", value_name = "MS")]
    liveness_interval_ms: u64 = value(defaults::LIVENESS_INTERVAL_MS);
    /// Silence in milliseconds after which a gateway is declared dead and its connections
    /// removed (counted only while KV takes writes).
    #[arg(long, env = "HERALD_GATEWAY_TIMEOUT_MS", value_name = "MS")]
    gateway_timeout_ms: u64 = value(3_000);
    /// Replicas of Herald's JetStream buckets when this process creates them; 3 on a
    /// three-node NATS cluster so presence survives losing a node.
    #[arg(long, env = "HERALD_KV_REPLICAS", value_name = "N")]
    kv_replicas: usize = value(1);
    /// PEM public key (RSA, EC P-256 or Ed25519) that checks RS256 / ES256 / EdDSA client
    /// tokens, alongside HS256 tokens signed with the JWT secret.
    #[arg(long, env = "HERALD_JWT_PUBLIC_KEY", value_name = "FILE")]
    jwt_public_key: PathBuf = absent("none");
    /// JWKS file (`{"keys":[…]}`) whose keys check RS256 / ES256 / EdDSA client tokens; a
    /// token's `kid` picks the key.
    #[arg(long, env = "HERALD_JWT_JWKS", value_name = "FILE")]
    jwt_jwks: PathBuf = absent("none");
    /// Longest token lifetime accepted and minted, in seconds: tokens whose `exp` is further
    /// away are refused.
    #[arg(long, env = "HERALD_MAX_TOKEN_TTL_SECS", value_name = "SECS")]
    max_token_ttl_secs: u64 = noted(herald_core::token::DEFAULT_MAX_TTL_SECS, "(30 days)");
    /// Argon2 checks (unseen API keys, passwords) running at once, process-wide, 19 MiB
    /// each; 16 per slot wait up to 1 s, the rest get 429 / `rate_limited`. 0: one per CPU.
    #[arg(long, env = "HERALD_MAX_CONCURRENT_HASHES", value_name = "N")]
    max_concurrent_hashes: usize = noted(0, "(one per CPU)");
    /// Failed API keys / idents per client address per window before it gets 429 /
    /// `rate_limited`, with a backoff doubling from 1 s to 300 s. 0: no limit.
    #[arg(long, env = "HERALD_AUTH_FAIL_LIMIT", value_name = "N")]
    auth_fail_limit: u32 = value(20);
    /// The window of `auth_fail_limit`, in seconds.
    #[arg(long, env = "HERALD_AUTH_FAIL_WINDOW_SECS", value_name = "SECS")]
    auth_fail_window_secs: u64 = value(60);
    /// User name to log in to NATS with (with the NATS password); `user:password@` in the
    /// NATS URL works too.
    #[arg(long, env = "HERALD_NATS_USER", value_name = "USER")]
    nats_user: String = absent("none");
    /// Password of the NATS user; better in HERALD_NATS_PASSWORD or the TOML file than on a
    /// command line other local users can read.
    #[arg(long, env = "HERALD_NATS_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    nats_password: String = absent("none");
    /// Token to log in to NATS with (the server's `authorization { token }`).
    #[arg(long, env = "HERALD_NATS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    nats_token: String = absent("none");
    /// File holding the NKey seed (SU…) to log in to NATS with (`herald nkey FILE` makes one
    /// and prints its public key).
    #[arg(long, env = "HERALD_NATS_NKEY", value_name = "SEED_FILE")]
    nats_nkey: PathBuf = absent("none");
    /// NATS credentials file (user JWT and seed, as `nsc` writes) to log in with.
    #[arg(long, env = "HERALD_NATS_CREDS", value_name = "FILE")]
    nats_creds: PathBuf = absent("none");
    /// PEM file of the CA that signed the NATS servers' certificates; turns TLS on.
    #[arg(long, env = "HERALD_NATS_TLS_CA", value_name = "FILE")]
    nats_tls_ca: PathBuf = absent("system roots (TLS only with `tls://`)");
    /// PEM client certificate for NATS servers that verify clients (with the NATS TLS key).
    #[arg(long, env = "HERALD_NATS_TLS_CERT", value_name = "FILE")]
    nats_tls_cert: PathBuf = absent("none");
    /// PEM private key of the NATS client certificate.
    #[arg(long, env = "HERALD_NATS_TLS_KEY", value_name = "FILE")]
    nats_tls_key: PathBuf = absent("none");
    /// Milliseconds a client has to send a request's headers (and finish the TLS handshake)
    /// before its connection is closed.
    #[arg(long, env = "HERALD_HEADER_READ_TIMEOUT_MS", value_name = "MS")]
    header_read_timeout_ms: u64 = value(10_000);
    /// PEM certificate chain: serve HTTPS/WSS natively on the listen address (with the TLS
    /// key); reloaded on SIGHUP.
    #[arg(long, env = "HERALD_TLS_CERT", value_name = "FILE")]
    tls_cert: PathBuf = absent("none");
    /// PEM private key of the TLS certificate; reloaded on SIGHUP.
    #[arg(long, env = "HERALD_TLS_KEY", value_name = "FILE")]
    tls_key: PathBuf = absent("none");
    /// WebSocket/SSE connections a gateway holds at most; more get 503 `unavailable`.
    #[arg(long, env = "HERALD_MAX_CONNECTIONS", value_name = "N")]
    max_connections: usize = absent("open-file limit − 256");
    /// WebSocket/SSE connections one client IP address may hold; more get 429
    /// `rate_limited`. 0: no cap.
    #[arg(long, env = "HERALD_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    max_connections_per_address: usize = value(defaults::CONNECTIONS_PER_ADDRESS);
    /// Connections not identified within this many milliseconds are closed (close code 4003).
    #[arg(long, env = "HERALD_IDENT_TIMEOUT_MS", value_name = "MS")]
    ident_timeout_ms: u64 = value(defaults::IDENT_TIMEOUT_MS);
    /// Browser origins allowed on /ws and /sse, comma-separated (`https://app.example.com`,
    /// or `*` for any); others get 403.
    #[arg(long, env = "HERALD_ALLOWED_ORIGINS", value_name = "ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String> = absent("the request's own host; any in `serve` with the demo");
    /// Channel patterns (`*` globs) any identified connection may publish to once it joined
    /// the channel, comma-separated; a token's `publish` claim adds its own.
    #[arg(long, env = "HERALD_CLIENT_PUBLISH", value_name = "PATTERNS", value_delimiter = ',')]
    client_publish: Vec<String> = absent("none: only tokens with a `publish` claim publish");
    /// Publishes per second one connection may make (bursts of as many); beyond, `rate_limited`.
    #[arg(long, env = "HERALD_CLIENT_PUBLISH_RATE", value_name = "N")]
    client_publish_rate: u32 = value(defaults::CLIENT_PUBLISH_RATE);
    /// How long an RPC, or the publish hook, may take when its table does not say; then the
    /// client gets `unavailable`.
    #[arg(long, env = "HERALD_RPC_TIMEOUT_MS", value_name = "MS")]
    rpc_timeout_ms: u64 = value(defaults::RPC_TIMEOUT_MS);
    /// Publish every lifecycle event (connect, join, online, …) on NATS `herald.events.<type>`
    /// (kept in the JetStream stream HERALD_EVENTS), also without a `[[webhook]]`; webhooks
    /// turn on the types they want by themselves.
    #[arg(long, env = "HERALD_LIFECYCLE_EVENTS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    lifecycle_events: bool = value(false);
    /// Events each channel and user keeps for clients that reconnect (and `GET …/history`);
    /// 0 keeps none. `[[channels]]` tables (`pattern`, `history_size`, `history_ttl_secs`)
    /// set it per channel name pattern.
    #[arg(long, env = "HERALD_HISTORY_SIZE", value_name = "N")]
    history_size: usize = value(herald_core::history::policy::DEFAULT_SIZE);
    /// Seconds each event is kept in history.
    #[arg(long, env = "HERALD_HISTORY_TTL_SECS", value_name = "SECS")]
    history_ttl_secs: u64 = value(herald_core::history::DEFAULT_TTL.as_secs());
    /// Subscribe each gateway to the events of each user it holds, so a user's events reach
    /// only the gateways holding that user (about 5 KiB of gateway memory per user held);
    /// false: every gateway receives every user's events through one subscription.
    #[arg(long, env = "HERALD_USERS_BY_INTEREST", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    users_by_interest: bool = value(true);
    /// The URL browsers reach this gateway at (`https://ws1.example.com`); the cluster view
    /// lists it, and the admin console's live tail connects there.
    #[arg(long, env = "HERALD_PUBLIC_URL", value_name = "URL")]
    public_url: String = absent("none (the admin console's tail then connects to its own origin)");
    /// Serve the admin console at /admin on the REST API's listener (it signs in with an API
    /// key, like any REST call).
    #[arg(long, env = "HERALD_ADMIN", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    admin: bool = absent("on for `herald serve`, off for `herald adapter rest`");
}
