//! The command line: `serve`, `check-config`, `loadgen`.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app;
use crate::config::{self, Config, LogFormat};

/// Exit code for an invalid configuration.
pub const EXIT_CONFIG: u8 = 2;

/// fluxroute: a fault-tolerant InfluxDB write router.
#[derive(Debug, Parser)]
#[command(name = "fluxroute", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the router.
    Serve {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file; lists every problem with its line (exit 2 if any).
    CheckConfig {
        /// Configuration file (TOML).
        file: PathBuf,
    },
    /// Write generated line protocol to an InfluxDB write endpoint and report rates and latency.
    Loadgen(Box<crate::loadgen::LoadgenArgs>),
}

fn env_map() -> HashMap<String, String> {
    std::env::vars().collect()
}

fn load(path: &std::path::Path) -> Result<Config, config::ConfigError> {
    config::load(path, &env_map())
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::CheckConfig { file } => match load(&file) {
            Ok(cfg) => {
                println!(
                    "{}: ok ({} clusters, {} routes, queue backend {})",
                    file.display(),
                    cfg.clusters.len(),
                    cfg.routes.len(),
                    cfg.queue.backend.as_str()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(EXIT_CONFIG))
            }
        },
        Command::Serve { config } => {
            let cfg = match load(&config) {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            };
            init_logging(cfg.log.format, &cfg.log.level);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            rt.block_on(serve(cfg))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Loadgen(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            let report = rt.block_on(crate::loadgen::run(&args)).context("loadgen")?;
            if args.json {
                println!("{}", report.to_json());
            } else {
                println!("{report}");
            }
            Ok(if report.requests_failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let listeners = app::Listeners::bind(&cfg).await?;
    let shutdown = CancellationToken::new();
    let run = app::run(Arc::clone(&cfg), listeners, shutdown.clone());
    tokio::pin!(run);
    tokio::select! {
        r = &mut run => return r.context("fluxroute serve"),
        r = wait_for_signal() => {
            if let Err(e) = r {
                tracing::error!(error = %e, "installing signal handlers; shutting down");
            }
        }
    }
    shutdown.cancel();
    run.await.context("fluxroute serve")
}

/// Waits for Ctrl-C or SIGTERM.
async fn wait_for_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    tracing::info!("signal received");
    Ok(())
}
