//! The `herald` binary: parses the command line and starts the roles it names.

mod adapter_roles;
mod config;
mod http_server;
mod nats_auth;
mod roles;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use config::{DemoArgs, FileTailArgs, Options, RedisArgs};

/// Herald: a real-time event dispatcher. Backends push events; browsers receive them live.
#[derive(Parser)]
#[command(name = "herald", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every role in one process: on an embedded in-memory bus, or on NATS with --nats.
    Serve {
        #[command(flatten)]
        options: Options,
        #[command(flatten)]
        demo: DemoArgs,
    },
    /// The WebSocket/SSE gateway role (needs --nats).
    Gateway {
        #[command(flatten)]
        options: Options,
        #[command(flatten)]
        demo: DemoArgs,
    },
    /// The dispatcher role (needs --nats).
    Dispatcher {
        #[command(flatten)]
        options: Options,
    },
    /// A push adapter role (needs --nats).
    Adapter {
        #[command(subcommand)]
        adapter: Adapter,
    },
    /// Reads a secret on stdin and prints its argon2id hash, for API keys and the users file.
    Passwd,
    /// Makes an NKey to log in to NATS with: writes its seed to SEED_FILE (for --nats-nkey,
    /// readable only by you) and prints the public key for the NATS server's configuration.
    Nkey {
        /// Where to write the seed; the file must not exist yet.
        #[arg(value_name = "SEED_FILE")]
        seed_file: std::path::PathBuf,
    },
    /// Checks a TOML configuration file and says what is wrong with each bad key; exits 1 if
    /// anything is.
    CheckConfig {
        /// The file to check.
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
    },
    /// Prints the table of every option (flag, environment variable, TOML key, default,
    /// meaning) as Markdown.
    Options,
}

#[derive(Subcommand)]
enum Adapter {
    /// REST API v1 and the TURTED-compatible POST /push.
    Rest {
        #[command(flatten)]
        options: Options,
    },
    /// Follows files (across rotations) and publishes each new line as an event.
    FileTail {
        #[command(flatten)]
        options: Options,
        #[command(flatten)]
        tail: FileTailArgs,
    },
    /// Subscribes to a Redis pub/sub channel carrying notify bodies (at-most-once).
    Redis {
        #[command(flatten)]
        options: Options,
        #[command(flatten)]
        redis: RedisArgs,
    },
}

fn main() -> std::process::ExitCode {
    let command = config::check::with_defaults_in_help(Cli::command());
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("herald: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { options, demo } => {
                let mut settings = options.resolve()?;
                demo.apply(&mut settings);
                roles::serve(settings).await
            }
            Command::Gateway { options, demo } => {
                let mut settings = options.resolve()?;
                demo.apply(&mut settings);
                roles::gateway(settings).await
            }
            Command::Dispatcher { options } => roles::dispatcher(options.resolve()?).await,
            Command::Adapter { adapter } => match adapter {
                Adapter::Rest { options } => roles::rest(options.resolve()?).await,
                Adapter::FileTail { options, tail } => {
                    let mut settings = options.resolve()?;
                    tail.apply(&mut settings);
                    adapter_roles::file_tail(settings).await
                }
                Adapter::Redis { options, redis } => {
                    let mut settings = options.resolve()?;
                    redis.apply(&mut settings);
                    adapter_roles::redis(settings).await
                }
            },
            Command::Passwd => roles::passwd(),
            Command::CheckConfig { file } => check_config(&file),
            Command::Options => {
                print!("{}", config::check::markdown_table());
                Ok(())
            }
            Command::Nkey { seed_file } => {
                println!("{}", nats_auth::new_nkey(&seed_file)?);
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `HERALD_LOG` (default `info`), as text or, with
/// `HERALD_LOG_FORMAT=json`, one JSON object per line for log collectors.
fn init_logging() {
    let filter = std::env::var("HERALD_LOG").unwrap_or_else(|_| "info".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| {
        eprintln!("HERALD_LOG={filter:?} is not a valid filter; using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("HERALD_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().flatten_event(true).init(),
        Ok("text") | Err(_) => builder.init(),
        Ok(other) => {
            builder.init();
            tracing::warn!(
                format = other,
                "HERALD_LOG_FORMAT must be `text` or `json`; logging as text"
            );
        }
    }
}

/// `herald check-config FILE`: one line per problem, or a line saying the file is good.
fn check_config(file: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let problems = config::check::problems(&text);
    if problems.is_empty() {
        println!("{}: OK", file.display());
        return Ok(());
    }
    for problem in &problems {
        println!("{}: {problem}", file.display());
    }
    anyhow::bail!("{} problem(s) in {}", problems.len(), file.display())
}
