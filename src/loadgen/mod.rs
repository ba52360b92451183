//! `fluxroute loadgen`: writes realistic line protocol to any InfluxDB write endpoint (a real
//! `influxd`, fluxroute itself, anything that answers like InfluxDB) and reports throughput and
//! acknowledgement latency.
//!
//! # What it owns
//!
//! - [`Generator`]: pure, allocation-light generation of Telegraf-shaped lines (`cpu`, `mem`,
//!   `disk`) with sorted tags and explicit nanosecond timestamps. No I/O.
//! - A token bucket (batch granularity) capping the total line rate across all connections.
//! - [`run`]: the writer tasks, the once-a-second progress line, the optional acked-line
//!   recorder, and the final [`Report`].
//!
//! It does not retry: a 2xx counts the batch's lines acknowledged, anything else (other status,
//! timeout, connection or body error) counts them failed, so the report says exactly what the
//! endpoint accepted.
//!
//! # Invariants
//!
//! - **Every line ever generated in one run is a distinct point.** Lines are numbered globally:
//!   each batch takes the next `batch_size` numbers from one atomic counter shared by all
//!   connections (`fetch_add`), so no number is handed out twice. Line number `L` belongs to
//!   series `L % S` (`S` = hosts × measurements) and is that series' point `P = L / S`; its
//!   timestamp is `start_ns + P µs`. Distinct `L` with the same series have distinct `P`, hence
//!   distinct timestamps, whichever connection sent them. A series advances 1 µs per point, so
//!   timestamps stay near the start time unless one series gets more than a million points a
//!   second.
//! - `max_lines` is exact: the counter hands out at most `max_lines` line numbers.
//! - With `record_acked`, the file receives, after the run, exactly the uncompressed bodies of the
//!   batches that got a 2xx (in ack order), each line with its timestamp as sent.
//! - Stopping (duration elapsed or `max_lines` reached) never abandons a request: writers stop
//!   starting new batches and [`run`] waits for the ones in flight (bounded by `--timeout`).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hdrhistogram::Histogram;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::Url;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

mod generator;
mod report;
#[cfg(test)]
mod tests;
mod writer;

pub use generator::{Generator, GeneratorSpec, Shape};
pub use report::Report;
use writer::*;

/// Command-line arguments of `fluxroute loadgen`.
#[derive(clap::Args, Clone)]
pub struct LoadgenArgs {
    /// Base URL, e.g. http://127.0.0.1:8086
    #[arg(long, default_value = "http://127.0.0.1:8086")]
    pub url: String,
    /// API: v1 (/write?db=&rp=) or v2 (/api/v2/write?org=&bucket=)
    #[arg(long, value_enum, default_value = "v1")]
    pub api: ApiVersion,
    /// Database (v1), or bucket (v2)
    #[arg(long, default_value = "loadgen")]
    pub db: String,
    /// Retention policy (v1 only)
    #[arg(long)]
    pub rp: Option<String>,
    /// Organization (v2 only)
    #[arg(long, default_value = "")]
    pub org: String,
    /// Token: v2 `Authorization: Token <token>`; for v1 pass `user:pass`. Wins over
    /// --username/--password
    #[arg(long, env = "LOADGEN_TOKEN")]
    pub token: Option<String>,
    /// v1 username (HTTP basic auth)
    #[arg(long)]
    pub username: Option<String>,
    /// v1 password (HTTP basic auth)
    #[arg(long, env = "LOADGEN_PASSWORD")]
    pub password: Option<String>,
    /// Number of hosts; series = hosts × measurements
    #[arg(long, default_value_t = 100)]
    pub hosts: usize,
    /// Comma-separated built-in measurement shapes: cpu, mem, disk
    #[arg(long, default_value = "cpu,mem,disk")]
    pub measurements: String,
    /// Extra tag pairs per line (values derive from the host: no extra cardinality)
    #[arg(long, default_value_t = 0)]
    pub extra_tags: usize,
    /// Extra float fields per line
    #[arg(long, default_value_t = 0)]
    pub extra_fields: usize,
    /// Lines per request
    #[arg(long, default_value_t = 5000)]
    pub batch_size: usize,
    /// Concurrent writers, each with at most one request in flight
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Total lines/s cap across all connections; none = as fast as possible
    #[arg(long)]
    pub rate: Option<u64>,
    /// How long to write
    #[arg(long, default_value = "10s")]
    pub duration: humantime::Duration,
    /// Stop after this many lines (whichever of this and --duration comes first)
    #[arg(long)]
    pub max_lines: Option<u64>,
    /// gzip request bodies
    #[arg(long)]
    pub gzip: bool,
    /// Per-request timeout, connecting to reading the whole response
    #[arg(long, default_value = "10s")]
    pub timeout: humantime::Duration,
    /// Send `CREATE DATABASE <db>` to /query first (v1)
    #[arg(long)]
    pub create_database: bool,
    /// No progress line
    #[arg(long)]
    pub quiet: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// Append every acknowledged line (as sent, with its explicit ns timestamp) to this file
    #[arg(long)]
    pub record_acked: Option<PathBuf>,
}

/// Redacts `token` and `password`.
impl fmt::Debug for LoadgenArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("LoadgenArgs")
            .field("url", &self.url)
            .field("api", &self.api)
            .field("db", &self.db)
            .field("rp", &self.rp)
            .field("org", &self.org)
            .field("token", &redact(&self.token))
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("hosts", &self.hosts)
            .field("measurements", &self.measurements)
            .field("extra_tags", &self.extra_tags)
            .field("extra_fields", &self.extra_fields)
            .field("batch_size", &self.batch_size)
            .field("connections", &self.connections)
            .field("rate", &self.rate)
            .field("duration", &self.duration)
            .field("max_lines", &self.max_lines)
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .field("create_database", &self.create_database)
            .field("quiet", &self.quiet)
            .field("json", &self.json)
            .field("record_acked", &self.record_acked)
            .finish()
    }
}

/// Which InfluxDB write API to speak.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `POST /write?db=<db>&rp=<rp>&precision=ns`
    V1,
    /// `POST /api/v2/write?org=<org>&bucket=<db>&precision=ns`
    V2,
}

/// Errors that stop [`run`] before or after the load (failed writes are not errors: they are
/// counted in the [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// An argument is out of range or unusable.
    #[error("invalid --{arg}: {reason}")]
    InvalidArgument {
        /// The flag, without dashes.
        arg: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `--url` does not parse as an http(s) URL.
    #[error("invalid --url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The HTTP client could not be built (e.g. no TLS backend).
    #[error("building the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// `CREATE DATABASE` was not accepted.
    #[error("CREATE DATABASE {db:?} at {endpoint} failed: {reason}")]
    CreateDatabase {
        /// The database.
        db: String,
        /// The `/query` URL (without credentials).
        endpoint: String,
        /// HTTP status, if a response arrived.
        status: Option<u16>,
        /// The error InfluxDB returned, or the transport error.
        reason: String,
    },
    /// The `--record-acked` file could not be opened or written.
    #[error("recording acknowledged lines to {}: {source}", path.display())]
    RecordAcked {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A loadgen task panicked or was cancelled (a bug).
    #[error("loadgen task {task} failed: {reason}")]
    Task {
        /// Which task.
        task: &'static str,
        /// The join error.
        reason: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Generator (pure)
// ---------------------------------------------------------------------------------------------

/// Runs [`run`] and prints the report to stdout, as JSON with `--json`, else as a table.
///
/// # Errors
///
/// As [`run`].
pub async fn run_and_print(args: &LoadgenArgs) -> Result<Report, LoadgenError> {
    let report = run(args).await?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    Ok(report)
}

/// Writes generated line protocol to `args.url` with `args.connections` concurrent writers
/// until `args.duration` has passed or `args.max_lines` lines were sent, then waits for the
/// requests in flight and returns the [`Report`]. Prints a progress line to stderr once a
/// second unless `args.quiet`.
///
/// Must be called inside a multi-threaded Tokio runtime (it spawns tasks and, with
/// `record_acked`, a blocking writer).
///
/// # Errors
///
/// Bad arguments, an HTTP client that cannot be built, a failed `CREATE DATABASE`, or a
/// `record_acked` file that cannot be written. Failed writes are counted, not returned.
///
/// # Cancel safety
///
/// Not cancel safe: dropping the future aborts the writers mid-request (their counts are lost).
pub async fn run(args: &LoadgenArgs) -> Result<Report, LoadgenError> {
    let plan = Plan::try_from_args(args)?;
    let client = reqwest::Client::builder()
        .timeout(plan.timeout)
        .connect_timeout(plan.timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(args.connections)
        .tcp_nodelay(true)
        .build()
        .map_err(LoadgenError::HttpClient)?;

    if args.create_database {
        match args.api {
            ApiVersion::V1 => create_database(&client, &plan, &args.db).await?,
            ApiVersion::V2 => {
                tracing::warn!("--create-database applies to the v1 API only; ignored");
            }
        }
    }

    let recorder = match &args.record_acked {
        Some(path) => Some(Recorder::start(path.clone())?),
        None => None,
    };

    let base_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let generator = Generator::try_new(&GeneratorSpec::from_args(args, base_ns)?)?;
    let start = Instant::now();
    let shared = Arc::new(Shared {
        client,
        write_url: plan.write_url,
        auth: plan.auth,
        gzip: args.gzip,
        generator,
        batch_size: args.batch_size,
        max_lines: args.max_lines.unwrap_or(u64::MAX),
        next_line: AtomicU64::new(0),
        deadline: start + plan.duration,
        limiter: args
            .rate
            .map(|rate| Mutex::new(TokenBucket::new(rate, args.batch_size as u64, start))),
        counters: Counters::default(),
        first_error: Mutex::new(None),
    });

    let (progress_stop, progress) = if args.quiet {
        (None, None)
    } else {
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(print_progress(Arc::clone(&shared), start, rx));
        (Some(tx), Some(handle))
    };

    let mut writers = JoinSet::new();
    for _ in 0..args.connections {
        let record = recorder.as_ref().map(|r| r.tx.clone());
        writers.spawn(write_loop(Arc::clone(&shared), record));
    }
    let mut totals = WriterTotals::new();
    let mut join_error = None;
    while let Some(joined) = writers.join_next().await {
        match joined {
            Ok(w) => totals.merge(w),
            Err(e) => join_error = Some(e.to_string()),
        }
    }
    let elapsed = start.elapsed();

    if let Some(tx) = progress_stop {
        // The progress task may have ended on its own; nothing to do then.
        let _ = tx.send(());
    }
    if let Some(handle) = progress {
        handle.await.map_err(|e| LoadgenError::Task {
            task: "progress",
            reason: e.to_string(),
        })?;
    }
    if let Some(reason) = join_error {
        return Err(LoadgenError::Task {
            task: "writer",
            reason,
        });
    }
    if let Some(recorder) = recorder {
        recorder.finish().await?;
    }

    let c = &shared.counters;
    let lines_acked = c.lines_acked.load(Ordering::Relaxed);
    let bytes_sent = c.bytes_sent.load(Ordering::Relaxed);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let quantile = |q: f64| Duration::from_micros(totals.latency_us.value_at_quantile(q));
    let first_error = shared
        .first_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok(Report {
        lines_acked,
        lines_failed: c.lines_failed.load(Ordering::Relaxed),
        requests_ok: c.requests_ok.load(Ordering::Relaxed),
        requests_failed: c.requests_failed.load(Ordering::Relaxed),
        transport_errors: totals.transport_errors,
        status_counts: totals.status_counts,
        bytes_sent,
        elapsed,
        lines_per_sec: lines_acked as f64 / secs,
        bytes_per_sec: bytes_sent as f64 / secs,
        latency_p50: quantile(0.5),
        latency_p90: quantile(0.9),
        latency_p99: quantile(0.99),
        latency_max: Duration::from_micros(totals.latency_us.max()),
        first_error,
    })
}

/// Validated, derived settings.
#[derive(Debug)]
struct Plan {
    base_url: Url,
    write_url: Url,
    auth: Auth,
    duration: Duration,
    timeout: Duration,
}

#[derive(Clone)]
enum Auth {
    None,
    /// The full `Authorization` header value (marked sensitive).
    Header(HeaderValue),
    Basic {
        username: String,
        password: Option<String>,
    },
}

/// Prints no secrets.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Header(_) => f.write_str("Header(***)"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}:***)"),
        }
    }
}

impl Plan {
    fn try_from_args(args: &LoadgenArgs) -> Result<Self, LoadgenError> {
        let invalid = |arg, reason: &str| LoadgenError::InvalidArgument {
            arg,
            reason: reason.into(),
        };
        if args.batch_size == 0 {
            return Err(invalid("batch-size", "must be at least 1"));
        }
        if args.connections == 0 {
            return Err(invalid("connections", "must be at least 1"));
        }
        if args.rate == Some(0) {
            return Err(invalid("rate", "must be at least 1 line/s"));
        }
        let timeout: Duration = *args.timeout;
        if timeout.is_zero() {
            return Err(invalid("timeout", "must be positive"));
        }
        // Validate the generator settings before any network traffic.
        Generator::try_new(&GeneratorSpec::from_args(args, 0)?)?;

        let bad_url = |reason: String| LoadgenError::InvalidUrl {
            url: args.url.clone(),
            reason,
        };
        let base_url = Url::parse(&args.url).map_err(|e| bad_url(e.to_string()))?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(bad_url("scheme must be http or https".into()));
        }
        if base_url.cannot_be_a_base() {
            return Err(bad_url("not a base URL".into()));
        }
        let mut write_url = endpoint(
            &base_url,
            match args.api {
                ApiVersion::V1 => "write",
                ApiVersion::V2 => "api/v2/write",
            },
        );
        {
            let mut q = write_url.query_pairs_mut();
            match args.api {
                ApiVersion::V1 => {
                    q.append_pair("db", &args.db);
                    if let Some(rp) = &args.rp {
                        q.append_pair("rp", rp);
                    }
                }
                ApiVersion::V2 => {
                    q.append_pair("org", &args.org);
                    q.append_pair("bucket", &args.db);
                }
            }
            q.append_pair("precision", "ns");
        }

        let auth = match (&args.token, &args.username) {
            (Some(token), _) => {
                let mut value = HeaderValue::from_str(&format!("Token {token}"))
                    .map_err(|_| invalid("token", "contains characters not allowed in a header"))?;
                value.set_sensitive(true);
                Auth::Header(value)
            }
            (None, Some(username)) => Auth::Basic {
                username: username.clone(),
                password: args.password.clone(),
            },
            (None, None) if args.password.is_some() => {
                return Err(invalid("password", "given without --username"));
            }
            (None, None) => Auth::None,
        };

        Ok(Self {
            base_url,
            write_url,
            auth,
            duration: *args.duration,
            timeout,
        })
    }
}

/// `base` with `path` appended to its path (keeping any prefix such as `/influx`).
fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url.set_query(None);
    url
}

fn with_auth(req: reqwest::RequestBuilder, auth: &Auth) -> reqwest::RequestBuilder {
    match auth {
        Auth::None => req,
        Auth::Header(value) => req.header(AUTHORIZATION, value.clone()),
        Auth::Basic { username, password } => req.basic_auth(username, password.as_ref()),
    }
}

async fn create_database(
    client: &reqwest::Client,
    plan: &Plan,
    db: &str,
) -> Result<(), LoadgenError> {
    let url = endpoint(&plan.base_url, "query");
    let statement = format!("CREATE DATABASE \"{}\"", db.replace('"', "\\\""));
    let fail = |status: Option<u16>, reason: String| LoadgenError::CreateDatabase {
        db: db.to_owned(),
        endpoint: url.to_string(),
        status,
        reason,
    };
    let req = with_auth(client.post(url.clone()), &plan.auth).form(&[("q", statement.as_str())]);
    let resp = req.send().await.map_err(|e| fail(None, error_chain(&e)))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| fail(Some(status.as_u16()), error_chain(&e)))?;
    if !status.is_success() {
        return Err(fail(Some(status.as_u16()), body_excerpt(&body)));
    }
    // InfluxDB answers 200 with `{"results":[{"error":"..."}]}` when the statement fails.
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) {
        let statement_error = json["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|r| r["error"].as_str());
        if let Some(e) = statement_error.or_else(|| json["error"].as_str()) {
            return Err(fail(Some(status.as_u16()), e.to_owned()));
        }
    }
    Ok(())
}

async fn print_progress(shared: Arc<Shared>, start: Instant, mut stop: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let (mut last_acked, mut last_at) = (0u64, start);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            now = tick.tick() => {
                let acked = shared.counters.lines_acked.load(Ordering::Relaxed);
                let failed = shared.counters.lines_failed.load(Ordering::Relaxed);
                let secs = (now - last_at).as_secs_f64().max(1e-9);
                eprintln!(
                    "loadgen {:>5.0}s  {:>10.0} lines/s  acked {acked}  failed {failed}",
                    (now - start).as_secs_f64(),
                    (acked - last_acked) as f64 / secs,
                );
                (last_acked, last_at) = (acked, now);
            }
        }
    }
}

/// Appends acked bodies to a file from a blocking thread, fed by a bounded channel.
#[derive(Debug)]
struct Recorder {
    path: PathBuf,
    tx: mpsc::Sender<Bytes>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Recorder {
    fn start(path: PathBuf) -> Result<Self, LoadgenError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| LoadgenError::RecordAcked {
                path: path.clone(),
                source,
            })?;
        let (tx, mut rx) = mpsc::channel::<Bytes>(32);
        let handle = tokio::task::spawn_blocking(move || {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            while let Some(body) = rx.blocking_recv() {
                out.write_all(&body)?;
            }
            out.flush()
        });
        Ok(Self { path, tx, handle })
    }

    /// Waits until every recorded body is on disk. Call after all writers finished.
    async fn finish(self) -> Result<(), LoadgenError> {
        let Self { path, tx, handle } = self;
        drop(tx);
        match handle.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(LoadgenError::RecordAcked { path, source }),
            Err(e) => Err(LoadgenError::Task {
                task: "record-acked",
                reason: e.to_string(),
            }),
        }
    }
}
