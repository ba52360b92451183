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

use crate::admin::report::{ControlReport, StatusReport};
use crate::app;
use crate::config::{self, Config, LogFormat};

/// Exit code for an invalid configuration.
pub const EXIT_CONFIG: u8 = 2;

/// How long `serve` waits, after its orderly shutdown, for blocking calls still running (a
/// broker that does not answer) before the process exits anyway.
const BLOCKING_CALLS_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(1);

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
    /// Operate a running fluxroute through its admin API.
    Ctl(CtlArgs),
}

/// `fluxroute ctl`: the admin API as a command.
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// Admin API base URL.
    #[arg(
        long,
        env = "FLUXROUTE_ADMIN_URL",
        default_value = "http://127.0.0.1:8087"
    )]
    url: String,
    /// Bearer token of the admin API.
    #[arg(long, env = "FLUXROUTE_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    verb: CtlVerb,
}

#[derive(Debug, Subcommand)]
enum CtlVerb {
    /// Clusters, endpoints, lag, rates and the queue.
    Status,
    /// Pause a cluster's drain on every instance (the queue buffers meanwhile).
    Pause {
        /// Cluster name.
        cluster: String,
    },
    /// Resume a paused cluster.
    Resume {
        /// Cluster name.
        cluster: String,
    },
    /// Re-deliver a cluster's records from a time on (harmless: replays overwrite).
    Replay {
        /// Cluster name.
        cluster: String,
        /// RFC 3339 time, e.g. 2026-11-25T10:00:00Z.
        #[arg(long)]
        since: String,
    },
    /// Force rerouting a cluster's writes to its standby on or off, or back to automatic.
    Reroute {
        /// Cluster name.
        cluster: String,
        /// true, false or auto.
        #[arg(long)]
        enabled: String,
    },
    /// The running configuration (secrets redacted).
    Config,
    /// Re-read the configuration file (clusters, routes, users).
    Reload,
    /// Batches clusters refused for good.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadLetterVerb),
}

#[derive(Debug, Subcommand)]
enum DeadLetterVerb {
    /// List dead letters, oldest first.
    List {
        /// Only this cluster's.
        #[arg(long)]
        cluster: Option<String>,
        /// Only this reason class (e.g. field_type_conflict).
        #[arg(long)]
        reason: Option<String>,
        /// Start at this id.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Re-enqueue dead letters after their cause is fixed.
    Replay {
        /// Only this cluster's.
        #[arg(long)]
        cluster: Option<String>,
        /// Only this reason class.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Delete dead letters with an id below `--before` (all without it).
    Purge {
        /// Exclusive upper bound of the ids to delete.
        #[arg(long)]
        before: Option<u64>,
    },
}

fn filter_query(cluster: Option<&String>, reason: Option<&String>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(c) = cluster {
        q.append_pair("cluster", c);
    }
    if let Some(r) = reason {
        q.append_pair("reason", r);
    }
    q.finish()
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
            let served = rt.block_on(serve(
                cfg,
                app::ReloadSource {
                    path: config.clone(),
                    env: env_map(),
                },
            ));
            // Dropping the runtime would wait for every blocking task without limit, and a
            // broker call can block for good (a consumer's synchronous offset commit waits for
            // a group coordinator that never answers): the orderly shutdown is over, so give
            // such calls a moment and exit.
            rt.shutdown_timeout(BLOCKING_CALLS_AT_EXIT);
            served?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ctl(args) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            match rt.block_on(ctl(&args)) {
                Ok(out) => {
                    println!("{out}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("fluxroute ctl: {e:#}");
                    Ok(ExitCode::from(1))
                }
            }
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

async fn serve(cfg: Config, reload: app::ReloadSource) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let listeners = app::Listeners::bind(&cfg).await?;
    let shutdown = CancellationToken::new();
    let run = app::run(Arc::clone(&cfg), listeners, shutdown.clone(), Some(reload));
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

/// Runs a `ctl` verb; returns what to print.
async fn ctl(args: &CtlArgs) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .context("building the HTTP client")?;
    let base = args.url.trim_end_matches('/');
    let (method, path) = match &args.verb {
        CtlVerb::Status => (reqwest::Method::GET, "/admin/v1/status".to_owned()),
        CtlVerb::Config => (reqwest::Method::GET, "/admin/v1/config".to_owned()),
        CtlVerb::Reload => (reqwest::Method::POST, "/admin/v1/reload".to_owned()),
        CtlVerb::Pause { cluster } => (
            reqwest::Method::POST,
            format!("/admin/v1/clusters/{}/pause", enc(cluster)),
        ),
        CtlVerb::Resume { cluster } => (
            reqwest::Method::POST,
            format!("/admin/v1/clusters/{}/resume", enc(cluster)),
        ),
        CtlVerb::Replay { cluster, since } => (
            reqwest::Method::POST,
            format!(
                "/admin/v1/clusters/{}/replay?since={}",
                enc(cluster),
                enc(since)
            ),
        ),
        CtlVerb::Reroute { cluster, enabled } => (
            reqwest::Method::POST,
            format!(
                "/admin/v1/clusters/{}/reroute?enabled={}",
                enc(cluster),
                enc(enabled)
            ),
        ),
        CtlVerb::DeadLetters(DeadLetterVerb::List {
            cluster,
            reason,
            from,
            limit,
        }) => (
            reqwest::Method::GET,
            format!(
                "/admin/v1/dead-letters?from={from}&limit={limit}&{}",
                filter_query(cluster.as_ref(), reason.as_ref())
            ),
        ),
        CtlVerb::DeadLetters(DeadLetterVerb::Replay { cluster, reason }) => (
            reqwest::Method::POST,
            format!(
                "/admin/v1/dead-letters/replay?{}",
                filter_query(cluster.as_ref(), reason.as_ref())
            ),
        ),
        CtlVerb::DeadLetters(DeadLetterVerb::Purge { before }) => (
            reqwest::Method::POST,
            match before {
                Some(b) => format!("/admin/v1/dead-letters/purge?before={b}"),
                None => "/admin/v1/dead-letters/purge".to_owned(),
            },
        ),
    };
    let mut req = http.request(method, format!("{base}{path}"));
    if let Some(t) = &args.token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("reaching the admin API at {base}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json_or_text().await;
    if !status.is_success() {
        let msg = body
            .get("error")
            .and_then(|e| e.as_str())
            .map_or_else(|| body.to_string(), str::to_owned);
        let problems: Vec<&str> = body["problems"]
            .as_array()
            .map(|p| p.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        if problems.is_empty() {
            anyhow::bail!("{status}: {msg}");
        }
        anyhow::bail!("{status}: {msg}\n{}", problems.join("\n"));
    }
    if args.json {
        return Ok(serde_json::to_string_pretty(&body)?);
    }
    Ok(match &args.verb {
        CtlVerb::Status => status_table(
            &serde_json::from_value::<StatusReport>(body).context("reading the admin status")?,
        ),
        CtlVerb::Config | CtlVerb::Reload => serde_json::to_string_pretty(&body)?,
        CtlVerb::DeadLetters(DeadLetterVerb::List { .. }) => dead_letter_table(&body),
        CtlVerb::DeadLetters(DeadLetterVerb::Replay { .. }) => format!(
            "replayed {} dead letters ({} lines); last id {}",
            body["replayed_letters"], body["replayed_lines"], body["last_id"]
        ),
        CtlVerb::DeadLetters(DeadLetterVerb::Purge { .. }) => {
            format!("purged dead letters below id {}", body["purged_before"])
        }
        _ => control_line(body)?,
    })
}

/// An operator action's answer, for people: the cluster's control as it now is.
fn control_line(body: serde_json::Value) -> anyhow::Result<String> {
    let r: ControlReport = serde_json::from_value(body).context("reading the admin answer")?;
    let replay = r.control.replay.map_or_else(
        || "none".to_owned(),
        |p| {
            let since = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(p.since_ms).unwrap_or(0));
            format!("since {}", humantime::format_rfc3339_millis(since))
        },
    );
    Ok(format!(
        "{}: paused={} reroute={} replay={replay}",
        r.cluster,
        r.control.paused,
        r.control.reroute.as_str(),
    ))
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Reads a JSON body, or wraps a non-JSON one as `{"error": text}`.
trait JsonOrText {
    async fn json_or_text(self) -> serde_json::Value;
}

impl JsonOrText for reqwest::Response {
    async fn json_or_text(self) -> serde_json::Value {
        let text = self.text().await.unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_else(|_| serde_json::json!({ "error": text.trim() }))
    }
}

/// Dead letters as a table for people.
fn dead_letter_table(v: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{:>8}  {:<14} {:<16} {:<24} {:>6}  {:>6}  REASON\n",
        "ID", "CLUSTER", "DB", "CLASS", "STATUS", "LINES"
    );
    for l in v["dead_letters"].as_array().cloned().unwrap_or_default() {
        let lines = l["lines"].as_str().map_or(0, |t| t.lines().count());
        let mut reason = l["reason"].as_str().unwrap_or_default().to_owned();
        reason.truncate(80);
        let _ = writeln!(
            out,
            "{:>8}  {:<14} {:<16} {:<24} {:>6}  {:>6}  {}",
            l["id"],
            l["cluster"].as_str().unwrap_or("?"),
            l["db"].as_str().unwrap_or("?"),
            l["reason_class"].as_str().unwrap_or("?"),
            l["status"],
            lines,
            reason
        );
    }
    if let Some(next) = v["next"].as_u64() {
        let _ = writeln!(out, "(more: --from {next})");
    }
    out.trim_end().to_owned()
}

/// The status as a table for people.
fn status_table(v: &StatusReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let q = &v.queue;
    let _ = writeln!(
        out,
        "fluxroute {}  up {}s  queue {} {}",
        v.version,
        v.uptime_seconds,
        q.backend,
        if q.healthy {
            "healthy".to_owned()
        } else {
            format!("UNHEALTHY: {}", q.error.as_deref().unwrap_or("?"))
        }
    );
    let _ = writeln!(
        out,
        "{:<16} {:<14} {:>10} {:>9} {:>12} {:>9} {:>6}  ENDPOINTS",
        "CLUSTER", "STATE", "LAG", "LAG(s)", "LINES/s", "ETA(s)", "DEAD"
    );
    for c in &v.clusters {
        let eps: Vec<String> = c
            .endpoints
            .iter()
            .map(|e| format!("{} {}", e.url, if e.up { "up" } else { "DOWN" }))
            .collect();
        let eta = c
            .catch_up_eta_seconds
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.0}"));
        let _ = writeln!(
            out,
            "{:<16} {:<14} {:>10} {:>9.1} {:>12.0} {:>9} {:>6}  {}",
            c.name,
            c.state.as_str(),
            c.lag_records,
            c.lag_seconds,
            c.write_rate_lines_per_second,
            eta,
            c.dead_letters,
            eps.join(", ")
        );
    }
    for r in &v.reads {
        let stale = r
            .stale_seconds
            .map_or_else(String::new, |s| format!(" (stale, {s:.1}s behind)"));
        let then = if r.then.is_empty() {
            String::new()
        } else {
            format!(", then {}", r.then.join(", "))
        };
        let _ = writeln!(
            out,
            "reads of {}: {}{stale}{then}",
            r.database,
            r.cluster.as_deref().unwrap_or("no cluster")
        );
    }
    out.trim_end().to_owned()
}
