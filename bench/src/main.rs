//! `herald-bench`: drives a running Herald exactly as its users do (events POSTed to the REST
//! adapter, received over WebSocket from the gateways) and measures fan-out throughput,
//! end-to-end latency, lost/duplicated/out-of-order deliveries, gateway memory per idle
//! connection, and REST ingest rate. With `--target nats-ws` the same subscribers read raw
//! nats-server WebSocket connections fed straight from NATS: the ceiling to compare against.
//!
//! Every mode prints one JSON line of results on stdout and a readable summary on stderr.

mod driver;
mod faults;
mod jitter;
mod plan;
mod publisher;
mod stats;
mod subscriber;
mod sys;
mod two_way;
mod wsclient;

use clap::{Args, Parser, Subcommand};
use plan::Target;
use std::process::ExitCode;

/// Load generator and meter for Herald (REST in, WebSocket out) and for raw nats-server
/// WebSocket as the reference. Targets must be loopback addresses.
#[derive(Parser)]
#[command(name = "herald-bench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// S subscribers in one channel (over the --gateway URLs); the publisher sends M events.
    Fanout(FanoutArgs),
    /// S connections each in K of N channels; events spread over the channels.
    Channels(ChannelsArgs),
    /// C idle identified connections, each joined to 2 channels: gateway RSS per connection
    /// (--gateway-pid) and the connect+ident+join rate.
    Idle(IdleArgs),
    /// REST POSTs per second one adapter accepts (202) with 1, 16 and 64 concurrent clients.
    Ingest(IngestArgs),
    /// RPC round trips per second from WebSocket clients to a backend on NATS (served by the
    /// bench itself), beside the same calls straight over NATS, at 1, 16 and 64 clients.
    Rpc(RpcArgs),
    /// Starts its own deployment on loopback, breaks one part half-way through a steady REST
    /// load, and prints the healthy half beside the broken half.
    Faults(faults::FaultsArgs),
    /// Clients dropped for a second every ~15 s while events flow: delivered %, duplicates,
    /// replay delay (with recovery, or `--no-recovery` for the reference).
    Jitter(jitter::JitterArgs),
    /// Internal: a subscriber process (spec on stdin, reports on stdout).
    #[command(hide = true)]
    Worker,
}

/// Where the servers are and how the load generator behaves.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// What the subscribers read: Herald gateways, or nats-server's WebSocket port.
    #[arg(long, value_enum, default_value = "herald")]
    pub target: Target,
    /// A Herald gateway (http://127.0.0.1:PORT); repeat to spread connections over several.
    #[arg(long = "gateway", value_name = "URL")]
    pub gateways: Vec<String>,
    /// Herald's REST adapter (http://127.0.0.1:PORT).
    #[arg(long, value_name = "URL")]
    pub rest: Option<String>,
    /// API key for the REST adapter.
    #[arg(
        long,
        env = "HERALD_BENCH_API_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub api_key: String,
    /// Secret the gateways verify tokens with (tokens are minted here).
    #[arg(
        long,
        env = "HERALD_BENCH_JWT_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub jwt_secret: String,
    /// NATS URL the reference publisher uses (--target nats-ws).
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// nats-server's WebSocket listener (ws://127.0.0.1:PORT) (--target nats-ws).
    #[arg(long, value_name = "URL")]
    pub nats_ws: Option<String>,
    /// The Pusher app key subscribers connect with (--target pusher).
    #[arg(long, value_name = "KEY")]
    pub pusher_key: Option<String>,
    /// The Pusher app id events are sent to (--target pusher).
    #[arg(long, value_name = "ID")]
    pub pusher_app: Option<String>,
    /// PID of a server process whose RSS is measured (idle mode); repeatable.
    #[arg(long = "gateway-pid", value_name = "PID")]
    pub gateway_pids: Vec<u32>,
    /// Spread client sockets over this many source addresses, 127.0.0.2 onward (0: kernel's
    /// choice). Each address has about 28,000 ephemeral ports.
    #[arg(long, default_value_t = 8)]
    pub source_addrs: u32,
    /// Connections per subscriber process (a process may hold only so many open files).
    #[arg(long, default_value_t = 15_000)]
    pub conns_per_proc: u64,
    /// Connections being set up at once, per subscriber process.
    #[arg(long, default_value_t = 100)]
    pub connect_concurrency: usize,
    /// WebSocket read buffer per client connection, bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pub client_read_buffer: usize,
    /// Time allowed for one connection's connect + ident + join, seconds.
    #[arg(long, default_value_t = 30)]
    pub connect_timeout_secs: u64,
    /// Time allowed for all connections to be ready, seconds.
    #[arg(long, default_value_t = 600)]
    pub ready_secs: u64,
    /// After publishing, wait at most this long for deliveries, seconds.
    #[arg(long, default_value_t = 30)]
    pub drain_secs: u64,
    /// After everything arrived, wait this long for duplicates, ms.
    #[arg(long, default_value_t = 200)]
    pub grace_ms: u64,
    /// The whole run (every process) stops after this long, seconds.
    #[arg(long, default_value_t = 1800)]
    pub max_secs: u64,
    /// Runtime threads per subscriber process.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Exit with status 1 on any lost, duplicated, out-of-order or unexpected delivery,
    /// failed connection or refused event.
    #[arg(long)]
    pub strict: bool,
    /// Free text copied into the results line.
    #[arg(long, default_value = "")]
    pub label: String,
}

/// How events are published.
#[derive(Args, Clone, Debug)]
pub struct PublishArgs {
    /// Events to publish.
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Concurrent publishers (keep-alive clients), each waiting for its 202 before the next.
    /// Order is checked per publisher.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u32,
    /// Events per second over all publishers (fixed rate); full speed when absent.
    #[arg(long, value_name = "PER_SEC")]
    pub rate: Option<f64>,
    /// Approximate size of each event's payload, bytes.
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,
    /// Stop publishing after this long, seconds.
    #[arg(long, default_value_t = 600)]
    pub publish_secs: u64,
    /// How events enter Herald: POSTed to the REST adapter, or published by WebSocket clients
    /// (`publish` frames to the first --gateway; its gateways need a --client-publish-rate
    /// above the rate per publisher).
    #[arg(long, value_enum, default_value = "rest")]
    pub via: Via,
}

/// How a Herald run's events are published.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `POST /v1/notify…` to the REST adapter.
    Rest,
    /// `publish` frames from client connections.
    Client,
}

/// `fanout`.
#[derive(Args, Clone, Debug)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub publish: PublishArgs,
    /// Subscriber connections.
    #[arg(long, default_value_t = 1_000)]
    pub subscribers: u64,
    /// Send each event as a broadcast (to every identified connection) instead of to the channel.
    #[arg(long)]
    pub broadcast: bool,
}

/// `channels`.
#[derive(Args, Clone, Debug)]
pub struct ChannelsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub publish: PublishArgs,
    /// Subscriber connections.
    #[arg(long, default_value_t = 1_000)]
    pub subscribers: u64,
    /// Channels (N).
    #[arg(long, default_value_t = 100)]
    pub channels: u32,
    /// Channels each connection joins (K).
    #[arg(long, default_value_t = 2)]
    pub per_conn: u32,
    /// Send each event to one user (each connection is its own user) instead of a channel:
    /// needs --per-conn 1 and --channels equal to --subscribers.
    #[arg(long)]
    pub to_users: bool,
}

/// `idle`.
#[derive(Args, Clone, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections.
    #[arg(long, default_value_t = 1_000)]
    pub connections: u64,
    /// Channels the connections' pairs of channels are drawn from.
    #[arg(long, default_value_t = 1_000)]
    pub channels: u32,
    /// Channels each connection joins.
    #[arg(long, default_value_t = 2)]
    pub per_conn: u32,
    /// How long the connections stay idle before RSS is read, seconds.
    #[arg(long, default_value_t = 5)]
    pub hold_secs: u64,
}

/// `ingest`.
#[derive(Args, Clone, Debug)]
pub struct IngestArgs {
    #[command(flatten)]
    pub common: Common,
    /// Numbers of concurrent clients to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub clients: Vec<u32>,
    /// Duration of each level, seconds.
    #[arg(long, default_value_t = 5)]
    pub secs: u64,
    /// Most requests per level.
    #[arg(long, default_value_t = 2_000_000)]
    pub max_requests: u64,
    /// Approximate size of each event's payload, bytes.
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,
}

/// `rpc`.
#[derive(Args, Clone, Debug)]
pub struct RpcArgs {
    #[command(flatten)]
    pub common: Common,
    /// Numbers of concurrent clients to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub clients: Vec<u32>,
    /// Duration of each level and path, seconds.
    #[arg(long, default_value_t = 5)]
    pub secs: u64,
    /// Size of each call's data, bytes.
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Worker => subscriber::run().map(|()| true),
        Mode::Fanout(args) => driver::run(driver::Job::Fanout(args)),
        Mode::Channels(args) => driver::run(driver::Job::Channels(args)),
        Mode::Idle(args) => driver::run(driver::Job::Idle(args)),
        Mode::Ingest(args) => driver::run(driver::Job::Ingest(args)),
        Mode::Rpc(args) => driver::run(driver::Job::Rpc(args)),
        Mode::Faults(args) => faults::run(args),
        Mode::Jitter(args) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(jitter::run(args))),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("herald-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
