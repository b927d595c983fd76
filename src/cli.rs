//! The command line (clap): global flags that override the file, and the subcommands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app;
use crate::config::{self, LogFormat, Sources};
use crate::shutdown::{self, Shutdown};
use crate::state::{self, AppState, Overrides};
use crate::telemetry;

/// The file `--config` defaults to.
pub const DEFAULT_CONFIG: &str = "lookout.yaml";

#[derive(Debug, Parser)]
#[command(
    name = "lookout",
    version,
    about = "Host and SQL business metrics for Prometheus, and an Alertmanager relay to DingTalk, WeCom and SMS"
)]
pub struct Cli {
    /// Configuration file. When it is not given and `lookout.yaml` does not exist,
    /// lookout runs on built-in defaults (host metrics on 0.0.0.0:9788).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen address, overriding `listen:` in the file.
    #[arg(long, global = true, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,
    /// State directory (outbox, demo database), overriding `state_dir:`.
    #[arg(long = "state-dir", global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Log filter: error, warn, info, debug, trace, or a directive like `lookout=debug,info`.
    #[arg(long = "log.level", global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format.
    #[arg(long = "log.format", global = true, value_name = "FORMAT", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The embedded default: a seeded SQLite shop database under the state directory, a
    /// simulator that keeps it busy, and a built-in configuration exporting host metrics
    /// and ~14 business queries, with a console channel that prints alerts.
    Demo,
    /// Validate a configuration file without side effects; print every error with its
    /// file, line, column and key path; exit non-zero on error.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Print, per channel of a receiver, exactly what would be sent for an Alertmanager
    /// payload (body, size, parts) without sending anything.
    Render {
        /// The receiver whose channels render the payload.
        #[arg(long)]
        receiver: String,
        /// An Alertmanager webhook payload (JSON, version 4).
        payload: PathBuf,
    },
    /// Send a test notification through one channel and print the classified outcome.
    SendTest {
        /// The channel's name.
        channel: String,
    },
    /// Run one query once against its database and print the exposition text it gives.
    Query {
        /// The query's `name`.
        name: String,
    },
    /// Act on the running lookout's outbox.
    #[command(subcommand)]
    Outbox(OutboxCommand),
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Send dead letters again once their cause is fixed (calls POST /-/outbox/redrive
    /// on the running lookout this configuration describes, with its web.auth).
    Redrive {
        /// Every dead letter of this channel.
        #[arg(long, conflicts_with = "ids")]
        channel: Option<String>,
        /// A dead letter's number (as on `/`); repeatable.
        #[arg(long = "id")]
        ids: Vec<i64>,
        /// The server's base URL, if not the configured `listen` on this host.
        #[arg(long)]
        url: Option<String>,
    },
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    config::validate::parse_listen(text)
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    text.parse()
}

impl Cli {
    fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen,
            state_dir: self.state_dir.clone(),
            log_level: self.log_level.clone(),
            log_format: self.log_format,
        }
    }

    /// The config file to load: `--config`, else `lookout.yaml` if it exists.
    fn config_path(&self) -> Option<PathBuf> {
        self.config.clone().or_else(|| {
            let default = Path::new(DEFAULT_CONFIG);
            default.exists().then(|| default.to_owned())
        })
    }
}

/// Runs the parsed command line.
pub fn main(cli: &Cli) -> ExitCode {
    match &cli.command {
        Some(Command::CheckConfig { file }) => check_config(file),
        Some(Command::Demo) => demo(cli),
        Some(Command::Query { name }) => query(cli, name),
        Some(Command::Render { receiver, payload }) => with_config(cli, |config| {
            crate::notify::cli::render(config, receiver, payload)
        }),
        Some(Command::SendTest { channel }) => {
            with_config(cli, |config| crate::notify::cli::send_test(config, channel))
        }
        Some(Command::Outbox(OutboxCommand::Redrive { channel, ids, url })) => {
            with_config(cli, |config| {
                crate::notify::redrive_cli::redrive(
                    &config,
                    channel.as_deref(),
                    ids,
                    url.as_deref(),
                )
            })
        }
        None => serve(cli),
    }
}

fn check_config(file: &Path) -> ExitCode {
    let checked = config::load(file, &Sources::system())
        .map_err(|e| e.to_string())
        .and_then(|config| {
            // Custom message templates are files of their own: parse them too.
            let config = std::sync::Arc::new(config);
            crate::notify::send::Channels::new(std::sync::Arc::clone(&config))
                .map(|_| config)
                .map_err(|e| format!("{}: {e}", file.display()))
        });
    match checked {
        Ok(config) => {
            println!(
                "{}: ok ({} databases, {} queries, {} channels, {} receivers)",
                file.display(),
                config.databases.len(),
                config.queries.len(),
                config.channels.len(),
                config.receivers.len()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration for a one-shot command and hands it to `run`.
fn with_config(cli: &Cli, run: impl FnOnce(crate::config::Config) -> ExitCode) -> ExitCode {
    match state::load_config(cli.config_path().as_deref(), &cli.overrides()) {
        Ok(config) => {
            telemetry::init("warn", config.log.format);
            run(config)
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn query(cli: &Cli, name: &str) -> ExitCode {
    with_config(cli, |config| query_with(&config, name))
}

fn query_with(config: &crate::config::Config, name: &str) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::exporter::sql::SqlExporter::run_now(config, name)) {
        Ok(families) => match crate::exporter::exposition::families_to_text(&families) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("cannot encode: {error}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("query `{name}`: {error}");
            ExitCode::FAILURE
        }
    }
}

fn serve(cli: &Cli) -> ExitCode {
    crate::malloc::tune_for_idle();
    let overrides = cli.overrides();
    let path = cli.config_path();
    let config = match state::load_config(path.as_deref(), &overrides) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(&config.log.level, config.log.format);
    if path.is_none() {
        tracing::info!("no {DEFAULT_CONFIG} found; running on built-in defaults");
    }
    run_server(config, overrides, None)
}

/// `lookout demo`: prepare the shop database, then serve the built-in demo config while
/// the simulator writes to it.
fn demo(cli: &Cli) -> ExitCode {
    crate::malloc::tune_for_idle();
    let overrides = cli.overrides();
    let state_dir = overrides
        .state_dir
        .clone()
        .unwrap_or_else(|| crate::config::Config::builtin().state_dir);
    let started = std::time::Instant::now();
    let db = match crate::demo::prepare(&state_dir) {
        Ok(db) => db,
        Err(error) => {
            eprintln!("lookout demo: {error}");
            return ExitCode::FAILURE;
        }
    };
    let yaml = crate::demo::config_yaml(&db);
    let mut config = match config::parse_str("<demo>", &yaml, &Sources::system()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("lookout demo: the built-in configuration is invalid:\n{error}");
            return ExitCode::FAILURE;
        }
    };
    overrides.apply(&mut config);
    config.state_dir = state_dir;
    telemetry::init(&config.log.level, config.log.format);
    tracing::info!(database = %db.display(), prepared_in = ?started.elapsed(), "demo shop database ready; simulator starting");
    run_server(config, overrides, Some(db))
}

/// Runs the server until a signal; with `simulate`, also the demo simulator on that file.
fn run_server(
    config: crate::config::Config,
    overrides: Overrides,
    simulate: Option<PathBuf>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let listener = app::bind(&config).await?;
        let shutdown = Shutdown::new();
        shutdown::on_signals(shutdown.clone());
        let demo = simulate.is_some();
        let simulator = simulate.map(|db| crate::demo::spawn_simulator(db, shutdown.clone()));
        let state = AppState::new(config, overrides, shutdown.clone())?;
        if demo && let Ok(addr) = listener.local_addr() {
            tokio::spawn(crate::demo::alerts::run(
                std::sync::Arc::clone(&state),
                addr,
                shutdown.clone(),
            ));
        }
        let result = app::run(listener, state, shutdown.clone()).await;
        shutdown.trigger();
        if let Some(simulator) = simulator {
            let _ = tokio::task::spawn_blocking(move || simulator.join()).await;
        }
        result
    });
    // `app::run` bounded the drain by `web.shutdown_timeout`; a blocking task still
    // stuck (a statfs on a dead mount, say) must not hold the exit beyond that.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "lookout failed");
            eprintln!("lookout: {error}");
            ExitCode::FAILURE
        }
    }
}
