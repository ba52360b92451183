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

/// A built-in measurement shape, modelled on Telegraf's input of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// `cpu,cpu=cpu-total,host=..,region=.. usage_user=..,usage_system=..,usage_idle=..`
    Cpu,
    /// `mem,host=..,region=.. used=..i,free=..i,total=..i,used_percent=..`
    Mem,
    /// `disk,device=..,fstype=ext4,host=..,path=/,region=.. free=..i,used=..i,total=..i,used_percent=..`
    Disk,
}

impl Shape {
    /// The measurement name.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Cpu => "cpu",
            Shape::Mem => "mem",
            Shape::Disk => "disk",
        }
    }

    /// Parses a comma-separated list such as `cpu,mem,disk` (duplicates are kept once).
    ///
    /// # Errors
    ///
    /// [`LoadgenError::InvalidArgument`] for an unknown name or an empty list.
    pub fn parse_list(list: &str) -> Result<Vec<Shape>, LoadgenError> {
        let mut shapes = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let shape = name.parse::<Shape>()?;
            if !shapes.contains(&shape) {
                shapes.push(shape);
            }
        }
        if shapes.is_empty() {
            return Err(LoadgenError::InvalidArgument {
                arg: "measurements",
                reason: "no measurement given (choose from cpu, mem, disk)".into(),
            });
        }
        Ok(shapes)
    }
}

impl FromStr for Shape {
    type Err = LoadgenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Shape::Cpu),
            "mem" => Ok(Shape::Mem),
            "disk" => Ok(Shape::Disk),
            other => Err(LoadgenError::InvalidArgument {
                arg: "measurements",
                reason: format!("unknown measurement {other:?} (choose from cpu, mem, disk)"),
            }),
        }
    }
}

/// What [`Generator`] produces; see [`GeneratorSpec::from_args`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorSpec {
    /// Number of hosts (≥ 1).
    pub hosts: usize,
    /// Measurement shapes (≥ 1).
    pub shapes: Vec<Shape>,
    /// Extra tag pairs per line.
    pub extra_tags: usize,
    /// Extra float fields per line.
    pub extra_fields: usize,
    /// Timestamp of every series' point 0, in ns since the Unix epoch.
    pub base_ns: u64,
}

impl GeneratorSpec {
    /// The spec described by `args`, with points starting at `base_ns`.
    ///
    /// # Errors
    ///
    /// [`LoadgenError::InvalidArgument`] for zero hosts or a bad measurement list.
    pub fn from_args(args: &LoadgenArgs, base_ns: u64) -> Result<Self, LoadgenError> {
        Ok(Self {
            hosts: args.hosts,
            shapes: Shape::parse_list(&args.measurements)?,
            extra_tags: args.extra_tags,
            extra_fields: args.extra_fields,
            base_ns,
        })
    }
}

const REGIONS: [&str; 4] = ["us-east", "us-west", "eu-west", "ap-south"];
const GIB: u64 = 1 << 30;
/// A series' timestamps advance this much per point.
const POINT_STEP_NS: u64 = 1_000;

/// One series: its `measurement,tags ` prefix and what its fields look like.
#[derive(Debug, Clone)]
struct SeriesTemplate {
    /// `measurement,k=v,...` plus the separating space; tags sorted by key.
    prefix: Box<[u8]>,
    shape: Shape,
    /// Total bytes of memory or disk (mem, disk).
    total: u64,
}

/// Generates line protocol for a fixed set of series, pure and deterministic: line `L` is always
/// the same bytes. See the module docs for why every line is a distinct point.
///
/// Series prefixes are built once; per line only field values (a SplitMix64 hash of `L`) and the
/// timestamp are formatted, with hand-rolled integer formatting. Each writer generates its next
/// body just before sending it: about 8.7 M lines/s on one core in release builds (1 M/s in debug;
/// `cargo bench --bench loadgen` measures it), far above what one `influxd` accepts.
#[derive(Debug, Clone)]
pub struct Generator {
    series: Vec<SeriesTemplate>,
    /// `,xf0=` ... `,xfN=` (field key plus separators), precomputed.
    extra_field_keys: Vec<Box<[u8]>>,
    base_ns: u64,
}

impl Generator {
    /// Precomputes every series' prefix.
    ///
    /// # Errors
    ///
    /// [`LoadgenError::InvalidArgument`] if `hosts` or `shapes` is empty.
    pub fn try_new(spec: &GeneratorSpec) -> Result<Self, LoadgenError> {
        if spec.hosts == 0 {
            return Err(LoadgenError::InvalidArgument {
                arg: "hosts",
                reason: "must be at least 1".into(),
            });
        }
        if spec.shapes.is_empty() {
            return Err(LoadgenError::InvalidArgument {
                arg: "measurements",
                reason: "no measurement given".into(),
            });
        }
        let mut series = Vec::with_capacity(spec.hosts * spec.shapes.len());
        for host in 0..spec.hosts {
            for &shape in &spec.shapes {
                series.push(series_template(shape, host, spec.extra_tags));
            }
        }
        let extra_field_keys = (0..spec.extra_fields)
            .map(|k| format!(",xf{k}=").into_bytes().into_boxed_slice())
            .collect();
        Ok(Self {
            series,
            extra_field_keys,
            base_ns: spec.base_ns,
        })
    }

    /// Number of distinct series (hosts × shapes).
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Timestamp (ns) of global line number `line`.
    pub fn timestamp_ns(&self, line: u64) -> u64 {
        let point = line / self.series.len() as u64;
        self.base_ns + point * POINT_STEP_NS
    }

    /// Appends lines `first .. first + count`, each ending in `\n`, to `out`.
    pub fn write_lines(&self, first: u64, count: usize, out: &mut Vec<u8>) {
        out.reserve(count * self.estimated_line_len());
        for line in first..first + count as u64 {
            self.write_line(line, out);
        }
    }

    /// Upper-bound-ish estimate of one line's length, for buffer sizing.
    pub fn estimated_line_len(&self) -> usize {
        let prefix = self.series.first().map_or(0, |s| s.prefix.len());
        prefix + 120 + self.extra_field_keys.len() * 12
    }

    fn write_line(&self, line: u64, out: &mut Vec<u8>) {
        let template = &self.series[(line % self.series.len() as u64) as usize];
        let h = splitmix64(line);
        out.extend_from_slice(&template.prefix);
        match template.shape {
            Shape::Cpu => {
                // Tenths of a percent, summing to 100%.
                let user = h % 700;
                let system = (h >> 20) % 200;
                let idle = 1000 - user - system;
                out.extend_from_slice(b"usage_user=");
                push_fixed(out, user, 1);
                out.extend_from_slice(b",usage_system=");
                push_fixed(out, system, 1);
                out.extend_from_slice(b",usage_idle=");
                push_fixed(out, idle, 1);
            }
            Shape::Mem => {
                let (used, free) = used_free(template.total, h);
                out.extend_from_slice(b"used=");
                push_u64(out, used);
                out.extend_from_slice(b"i,free=");
                push_u64(out, free);
                out.extend_from_slice(b"i,total=");
                push_u64(out, template.total);
                out.extend_from_slice(b"i,used_percent=");
                push_fixed(out, used * 10_000 / template.total, 2);
            }
            Shape::Disk => {
                let (used, free) = used_free(template.total, h);
                out.extend_from_slice(b"free=");
                push_u64(out, free);
                out.extend_from_slice(b"i,used=");
                push_u64(out, used);
                out.extend_from_slice(b"i,total=");
                push_u64(out, template.total);
                out.extend_from_slice(b"i,used_percent=");
                push_fixed(out, used * 10_000 / template.total, 2);
            }
        }
        for (k, key) in self.extra_field_keys.iter().enumerate() {
            out.extend_from_slice(key);
            push_fixed(out, h.rotate_left(7 * k as u32 + 3) % 10_000, 1);
        }
        out.push(b' ');
        push_u64(out, self.timestamp_ns(line));
        out.push(b'\n');
    }
}

fn series_template(shape: Shape, host: usize, extra_tags: usize) -> SeriesTemplate {
    let mut tags: Vec<(String, String)> = vec![
        ("host".into(), format!("host{host:03}")),
        ("region".into(), REGIONS[host % REGIONS.len()].into()),
    ];
    let total = match shape {
        Shape::Cpu => {
            tags.push(("cpu".into(), "cpu-total".into()));
            0
        }
        // 8, 16, 32 or 64 GiB of memory.
        Shape::Mem => (8 * GIB) << (host % 4),
        Shape::Disk => {
            tags.push(("path".into(), "/".into()));
            tags.push(("fstype".into(), "ext4".into()));
            tags.push(("device".into(), "nvme0n1p1".into()));
            // 250 or 500 GiB disks.
            (250 * GIB) << (host % 2)
        }
    };
    for k in 0..extra_tags {
        tags.push((format!("xt{k}"), format!("v{}", host % (k + 2))));
    }
    tags.sort();
    let mut prefix = shape.name().to_owned();
    for (k, v) in &tags {
        prefix.push(',');
        prefix.push_str(k);
        prefix.push('=');
        prefix.push_str(v);
    }
    prefix.push(' ');
    SeriesTemplate {
        prefix: prefix.into_bytes().into_boxed_slice(),
        shape,
        total,
    }
}

/// Used and free bytes: between 25% and 75% used.
fn used_free(total: u64, h: u64) -> (u64, u64) {
    let used = total / 4 + h % (total / 2);
    (used, total - used)
}

/// A cheap, well-mixed hash of the line number (SplitMix64's finalizer).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Writes `scaled / 10^decimals` with exactly `decimals` digits after the point.
fn push_fixed(out: &mut Vec<u8>, scaled: u64, decimals: u32) {
    let div = 10u64.pow(decimals);
    push_u64(out, scaled / div);
    out.push(b'.');
    let mut frac = scaled % div;
    let mut digits = [b'0'; 8];
    for d in (0..decimals as usize).rev() {
        digits[d] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    out.extend_from_slice(&digits[..decimals as usize]);
}

// ---------------------------------------------------------------------------------------------
// Rate limiter (pure)
// ---------------------------------------------------------------------------------------------

/// A token bucket that may go into debt: a caller takes its batch's tokens at once and waits
/// out any shortfall, so concurrent callers queue behind each other and the long-run rate is
/// exact. Capacity (the burst) is one batch.
#[derive(Debug)]
struct TokenBucket {
    rate_per_sec: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `rate_per_sec` (> 0) up to `capacity`.
    fn new(rate_per_sec: u64, capacity: u64, now: Instant) -> Self {
        Self {
            rate_per_sec: rate_per_sec as f64,
            capacity: capacity as f64,
            tokens: capacity as f64,
            last: now,
        }
    }

    /// Takes `n` tokens; returns how long the caller must wait before using them.
    fn acquire(&mut self, n: u64, now: Instant) -> Duration {
        if now > self.last {
            let refill = (now - self.last).as_secs_f64() * self.rate_per_sec;
            self.tokens = (self.tokens + refill).min(self.capacity);
            self.last = now;
        }
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate_per_sec)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

/// The outcome of one [`run`].
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Lines in batches answered 2xx.
    pub lines_acked: u64,
    /// Lines in batches answered otherwise, timed out or lost to a connection error.
    pub lines_failed: u64,
    /// Requests answered 2xx.
    pub requests_ok: u64,
    /// Requests not answered 2xx (including transport errors).
    pub requests_failed: u64,
    /// Requests that got no complete HTTP response (timeout, connection or body error).
    pub transport_errors: u64,
    /// Responses by HTTP status (2xx included).
    pub status_counts: BTreeMap<u16, u64>,
    /// Request body bytes sent (after gzip, if on), acked or not.
    pub bytes_sent: u64,
    /// From the first request until the last in-flight request finished.
    pub elapsed: Duration,
    /// `lines_acked / elapsed`.
    pub lines_per_sec: f64,
    /// `bytes_sent / elapsed`.
    pub bytes_per_sec: f64,
    /// Median ack latency (request start to 2xx response fully read).
    pub latency_p50: Duration,
    /// 90th percentile ack latency.
    pub latency_p90: Duration,
    /// 99th percentile ack latency.
    pub latency_p99: Duration,
    /// Largest ack latency.
    pub latency_max: Duration,
    /// The first failure seen, e.g. `HTTP 404: {"error":"database not found: \"x\""}`.
    pub first_error: Option<String>,
}

impl Report {
    /// The report as a JSON object; durations in seconds (`elapsed_secs`) and milliseconds
    /// (`latency_ms`), status codes as string keys.
    pub fn to_json(&self) -> serde_json::Value {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let statuses: serde_json::Map<String, serde_json::Value> = self
            .status_counts
            .iter()
            .map(|(s, n)| (s.to_string(), (*n).into()))
            .collect();
        serde_json::json!({
            "lines_acked": self.lines_acked,
            "lines_failed": self.lines_failed,
            "requests_ok": self.requests_ok,
            "requests_failed": self.requests_failed,
            "transport_errors": self.transport_errors,
            "status_counts": statuses,
            "bytes_sent": self.bytes_sent,
            "elapsed_secs": self.elapsed.as_secs_f64(),
            "lines_per_sec": self.lines_per_sec,
            "bytes_per_sec": self.bytes_per_sec,
            "latency_ms": {
                "p50": ms(self.latency_p50),
                "p90": ms(self.latency_p90),
                "p99": ms(self.latency_p99),
                "max": ms(self.latency_max),
            },
            "first_error": self.first_error,
        })
    }
}

/// A human-readable table.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |b: f64| b / (1024.0 * 1024.0);
        writeln!(f, "elapsed        {:.2?}", self.elapsed)?;
        writeln!(
            f,
            "lines acked    {} ({:.0} lines/s)",
            self.lines_acked, self.lines_per_sec
        )?;
        writeln!(f, "lines failed   {}", self.lines_failed)?;
        writeln!(
            f,
            "requests       {} ok, {} failed ({} transport errors)",
            self.requests_ok, self.requests_failed, self.transport_errors
        )?;
        let statuses: Vec<String> = self
            .status_counts
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        writeln!(f, "statuses       {}", statuses.join(", "))?;
        writeln!(
            f,
            "bytes sent     {:.1} MiB ({:.1} MiB/s)",
            mib(self.bytes_sent as f64),
            mib(self.bytes_per_sec)
        )?;
        write!(
            f,
            "ack latency    p50 {:.2?}  p90 {:.2?}  p99 {:.2?}  max {:.2?}",
            self.latency_p50, self.latency_p90, self.latency_p99, self.latency_max
        )?;
        if let Some(e) = &self.first_error {
            write!(f, "\nfirst error    {e}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Running
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

/// State shared by the writer tasks.
#[derive(Debug)]
struct Shared {
    client: reqwest::Client,
    write_url: Url,
    auth: Auth,
    gzip: bool,
    generator: Generator,
    batch_size: usize,
    max_lines: u64,
    /// The next unallocated global line number.
    next_line: AtomicU64,
    deadline: Instant,
    limiter: Option<Mutex<TokenBucket>>,
    counters: Counters,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    /// Allocates the next batch's line numbers, or `None` once `max_lines` are handed out.
    fn allocate(&self) -> Option<(u64, usize)> {
        let first = self
            .next_line
            .fetch_add(self.batch_size as u64, Ordering::Relaxed);
        if first >= self.max_lines {
            return None;
        }
        let count = (self.max_lines - first).min(self.batch_size as u64) as usize;
        Some((first, count))
    }

    /// How long to wait before sending the next batch (zero without `--rate`).
    fn rate_wait(&self) -> Duration {
        match &self.limiter {
            None => Duration::ZERO,
            Some(bucket) => bucket
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .acquire(self.batch_size as u64, Instant::now()),
        }
    }

    fn note_error(&self, message: impl FnOnce() -> String) {
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if first.is_none() {
            *first = Some(message());
        }
    }
}

/// Live totals, read by the progress line.
#[derive(Debug, Default)]
struct Counters {
    lines_acked: AtomicU64,
    lines_failed: AtomicU64,
    requests_ok: AtomicU64,
    requests_failed: AtomicU64,
    bytes_sent: AtomicU64,
}

/// What one writer measured, merged at the end.
#[derive(Debug)]
struct WriterTotals {
    latency_us: Histogram<u64>,
    status_counts: BTreeMap<u16, u64>,
    transport_errors: u64,
}

impl WriterTotals {
    fn new() -> Self {
        Self {
            // 1 µs to 1 h at 3 significant digits.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("constant histogram bounds are valid"),
            status_counts: BTreeMap::new(),
            transport_errors: 0,
        }
    }

    fn merge(&mut self, other: WriterTotals) {
        // Same bounds on both sides; `add` fails only when a value does not fit.
        let _ = self.latency_us.add(&other.latency_us);
        for (status, n) in other.status_counts {
            *self.status_counts.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
    }
}

/// One connection: allocate, generate, send, count; until the deadline or `max_lines`.
async fn write_loop(shared: Arc<Shared>, record: Option<mpsc::Sender<Bytes>>) -> WriterTotals {
    let mut totals = WriterTotals::new();
    let line_len = shared.generator.estimated_line_len();
    loop {
        if Instant::now() >= shared.deadline {
            break;
        }
        let wait = shared.rate_wait();
        if !wait.is_zero() {
            if Instant::now() + wait >= shared.deadline {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        let Some((first, count)) = shared.allocate() else {
            break;
        };
        let mut buf = Vec::with_capacity(count * line_len);
        shared.generator.write_lines(first, count, &mut buf);
        let raw = Bytes::from(buf);
        let body = if shared.gzip { gzip(&raw) } else { raw.clone() };
        let body_len = body.len() as u64;

        let mut req = shared
            .client
            .post(shared.write_url.clone())
            .header(CONTENT_TYPE, "text/plain; charset=utf-8");
        if shared.gzip {
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        let req = with_auth(req, &shared.auth).body(body);

        let started = Instant::now();
        let outcome = send(req).await;
        let latency = started.elapsed();

        let c = &shared.counters;
        c.bytes_sent.fetch_add(body_len, Ordering::Relaxed);
        match outcome {
            Ok((status, response)) => {
                *totals.status_counts.entry(status).or_default() += 1;
                if (200..300).contains(&status) {
                    totals
                        .latency_us
                        .saturating_record(latency.as_micros().max(1) as u64);
                    if let Some(tx) = &record {
                        // A closed channel means the recorder failed; `run` reports its error.
                        let _ = tx.send(raw).await;
                    }
                    c.lines_acked.fetch_add(count as u64, Ordering::Relaxed);
                    c.requests_ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    shared.note_error(|| format!("HTTP {status}: {}", body_excerpt(&response)));
                    c.lines_failed.fetch_add(count as u64, Ordering::Relaxed);
                    c.requests_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                totals.transport_errors += 1;
                tracing::debug!(error = %error_chain(&e), "loadgen write failed");
                shared.note_error(|| error_chain(&e));
                c.lines_failed.fetch_add(count as u64, Ordering::Relaxed);
                c.requests_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    totals
}

/// Sends and reads the whole response.
async fn send(req: reqwest::RequestBuilder) -> Result<(u16, Bytes), reqwest::Error> {
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await?;
    Ok((status, body))
}

fn gzip(raw: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(raw);
    Bytes::from(enc.finish().unwrap_or_default())
}

fn body_excerpt(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    text.trim().to_owned()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn spec(hosts: usize, shapes: &[Shape]) -> GeneratorSpec {
        GeneratorSpec {
            hosts,
            shapes: shapes.to_vec(),
            extra_tags: 0,
            extra_fields: 0,
            base_ns: 1_700_000_000_000_000_000,
        }
    }

    fn lines(gen: &Generator, first: u64, count: usize) -> String {
        let mut out = Vec::new();
        gen.write_lines(first, count, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_look_like_telegraf() {
        let gen = Generator::try_new(&spec(50, &[Shape::Cpu, Shape::Mem, Shape::Disk])).unwrap();
        let text = lines(&gen, 3 * 42, 3);
        let got: Vec<&str> = text.lines().collect();
        assert!(
            got[0].starts_with("cpu,cpu=cpu-total,host=host042,region=eu-west usage_user="),
            "{}",
            got[0]
        );
        assert!(
            got[1].starts_with("mem,host=host042,region=eu-west used="),
            "{}",
            got[1]
        );
        assert!(
            got[2].starts_with(
                "disk,device=nvme0n1p1,fstype=ext4,host=host042,path=/,region=eu-west free="
            ),
            "{}",
            got[2]
        );
        assert!(got[0].contains(",usage_system=") && got[0].contains(",usage_idle="));
        assert!(got[1].contains("i,free=") && got[1].contains("i,used_percent="));
        assert!(got[2].contains("i,used=") && got[2].contains("i,used_percent="));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn lines_parse_and_tags_are_sorted() {
        let mut s = spec(7, &[Shape::Cpu, Shape::Mem, Shape::Disk]);
        s.extra_tags = 12;
        s.extra_fields = 3;
        let gen = Generator::try_new(&s).unwrap();
        let text = lines(&gen, 0, 500);
        let mut n = 0;
        for parsed in influxdb_line_protocol::parse_lines(&text) {
            let line = parsed.unwrap();
            n += 1;
            let tags: Vec<String> = line
                .series
                .tag_set
                .as_ref()
                .unwrap()
                .iter()
                .map(|(k, _)| k.to_string())
                .collect();
            let mut sorted = tags.clone();
            sorted.sort();
            assert_eq!(tags, sorted);
            assert!(tags.len() >= 2 + 12);
            assert!(line.timestamp.is_some());
            assert_eq!(line.field_set.len() - 3, {
                match line.series.measurement.as_str() {
                    "cpu" => 3,
                    "mem" | "disk" => 4,
                    other => panic!("unexpected measurement {other}"),
                }
            });
            for (_, v) in &line.field_set {
                match v {
                    influxdb_line_protocol::FieldValue::F64(f) => {
                        assert!((0.0..=1000.0).contains(f));
                    }
                    influxdb_line_protocol::FieldValue::I64(i) => assert!(*i > 0),
                    other => panic!("unexpected field {other:?}"),
                }
            }
            if line.series.measurement.as_str() == "cpu" {
                let sum: f64 = ["usage_user", "usage_system", "usage_idle"]
                    .iter()
                    .map(|k| match line.field_value(k) {
                        Some(influxdb_line_protocol::FieldValue::F64(f)) => *f,
                        other => panic!("{k}: {other:?}"),
                    })
                    .sum();
                assert!((sum - 100.0).abs() < 1e-6, "{sum}");
            }
        }
        assert_eq!(n, 500);
    }

    #[test]
    fn every_line_is_a_distinct_point_across_batches() {
        let gen = Generator::try_new(&spec(3, &[Shape::Cpu, Shape::Disk])).unwrap();
        // Batches of 7 taken in any order (as concurrent connections would) still cover
        // distinct (series, timestamp) pairs.
        let mut seen = HashSet::new();
        for batch in [5u64, 0, 3, 1, 4, 2] {
            let text = lines(&gen, batch * 7, 7);
            assert_eq!(text.lines().count(), 7);
            for line in text.lines() {
                let (series, rest) = line.split_once(' ').unwrap();
                let ts = rest.rsplit_once(' ').unwrap().1;
                assert!(seen.insert((series.to_owned(), ts.to_owned())), "{line}");
            }
        }
        assert_eq!(seen.len(), 42);
        // Each series advances 1 µs per point.
        assert_eq!(gen.timestamp_ns(6) - gen.timestamp_ns(0), 1_000);
        assert_eq!(gen.timestamp_ns(5), gen.timestamp_ns(0));
    }

    #[test]
    fn generation_is_deterministic_and_batch_sizes_exact() {
        let gen = Generator::try_new(&spec(10, &[Shape::Mem])).unwrap();
        assert_eq!(lines(&gen, 100, 50), lines(&gen, 100, 50));
        let whole = lines(&gen, 0, 30);
        let parts = lines(&gen, 0, 10) + &lines(&gen, 10, 20);
        assert_eq!(whole, parts);
        assert_eq!(lines(&gen, 0, 0), "");
    }

    #[test]
    fn fixed_point_formatting() {
        let fmt = |v, d| {
            let mut out = Vec::new();
            push_fixed(&mut out, v, d);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(fmt(0, 1), "0.0");
        assert_eq!(fmt(845, 1), "84.5");
        assert_eq!(fmt(1000, 1), "100.0");
        assert_eq!(fmt(5, 2), "0.05");
        assert_eq!(fmt(12_345, 2), "123.45");
        let mut out = Vec::new();
        push_u64(&mut out, u64::MAX);
        assert_eq!(out, u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn measurement_list_parsing() {
        assert_eq!(
            Shape::parse_list("disk, cpu,disk").unwrap(),
            vec![Shape::Disk, Shape::Cpu]
        );
        assert!(Shape::parse_list("cpu,net").is_err());
        assert!(Shape::parse_list(" , ").is_err());
    }

    #[test]
    fn allocation_stops_exactly_at_max_lines() {
        let args = test_args(&["--max-lines", "25", "--batch-size", "10"]);
        let plan = Plan::try_from_args(&args).unwrap();
        let shared = Shared {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .build()
                .unwrap(),
            write_url: plan.write_url,
            auth: Auth::None,
            gzip: false,
            generator: Generator::try_new(&spec(1, &[Shape::Cpu])).unwrap(),
            batch_size: 10,
            max_lines: 25,
            next_line: AtomicU64::new(0),
            deadline: Instant::now(),
            limiter: None,
            counters: Counters::default(),
            first_error: Mutex::new(None),
        };
        assert_eq!(shared.allocate(), Some((0, 10)));
        assert_eq!(shared.allocate(), Some((10, 10)));
        assert_eq!(shared.allocate(), Some((20, 5)));
        assert_eq!(shared.allocate(), None);
        assert_eq!(shared.allocate(), None);
    }

    #[test]
    fn token_bucket_paces_batches() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000, 100, t0);
        // A full bucket: the first batch goes at once, the next ones queue 100 ms apart.
        assert_eq!(bucket.acquire(100, t0), Duration::ZERO);
        assert_eq!(bucket.acquire(100, t0), Duration::from_millis(100));
        assert_eq!(bucket.acquire(100, t0), Duration::from_millis(200));
        // At 300 ms the debt is repaid and the fourth batch is on schedule, the fifth is not.
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!(bucket.acquire(100, t1), Duration::ZERO);
        assert_eq!(bucket.acquire(100, t1), Duration::from_millis(100));
        // Idle time refills at most one batch (the burst).
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(bucket.acquire(100, t2), Duration::ZERO);
        assert!(bucket.acquire(100, t2) > Duration::ZERO);
    }

    #[test]
    fn token_bucket_long_run_rate() {
        // 10 batches of 500 at 5000 lines/s: the last may go at 0.9 s.
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(5000, 500, t0);
        let waits: Vec<Duration> = (0..10).map(|_| bucket.acquire(500, t0)).collect();
        let last = waits[9].as_secs_f64();
        assert!((last - 0.9).abs() < 1e-9, "{last}");
    }

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: LoadgenArgs,
    }

    fn test_args(extra: &[&str]) -> LoadgenArgs {
        use clap::Parser as _;
        let argv = std::iter::once("loadgen").chain(extra.iter().copied());
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn urls_and_auth() {
        let v1 = Plan::try_from_args(&test_args(&[
            "--url",
            "http://h:1/prefix/",
            "--db",
            "my db",
            "--rp",
            "r1",
            "--username",
            "u",
            "--password",
            "p",
        ]))
        .unwrap();
        assert_eq!(
            v1.write_url.as_str(),
            "http://h:1/prefix/write?db=my+db&rp=r1&precision=ns"
        );
        assert!(matches!(v1.auth, Auth::Basic { .. }));
        assert_eq!(
            endpoint(&v1.base_url, "query").as_str(),
            "http://h:1/prefix/query"
        );

        let v2 = Plan::try_from_args(&test_args(&[
            "--api", "v2", "--org", "o", "--db", "b", "--token", "secret",
        ]))
        .unwrap();
        assert_eq!(
            v2.write_url.as_str(),
            "http://127.0.0.1:8086/api/v2/write?org=o&bucket=b&precision=ns"
        );
        match &v2.auth {
            Auth::Header(h) => assert_eq!(h.to_str().unwrap(), "Token secret"),
            other => panic!("{other:?}"),
        }
        assert!(!format!("{:?}", test_args(&["--token", "secret"])).contains("secret"));
    }

    #[test]
    fn bad_arguments_are_rejected() {
        for argv in [
            &["--batch-size", "0"][..],
            &["--connections", "0"],
            &["--rate", "0"],
            &["--hosts", "0"],
            &["--measurements", "cpu,gpu"],
            &["--url", "ftp://x"],
            &["--url", "not a url"],
            &["--password", "p"],
        ] {
            assert!(
                Plan::try_from_args(&test_args(argv)).is_err(),
                "{argv:?} accepted"
            );
        }
    }

    #[test]
    fn report_renders() {
        let report = Report {
            lines_acked: 10,
            lines_failed: 5,
            requests_ok: 2,
            requests_failed: 1,
            transport_errors: 0,
            status_counts: BTreeMap::from([(204, 2), (500, 1)]),
            bytes_sent: 2048,
            elapsed: Duration::from_secs(2),
            lines_per_sec: 5.0,
            bytes_per_sec: 1024.0,
            latency_p50: Duration::from_millis(3),
            latency_p90: Duration::from_millis(4),
            latency_p99: Duration::from_millis(5),
            latency_max: Duration::from_millis(6),
            first_error: Some("HTTP 500: boom".into()),
        };
        let json = report.to_json();
        assert_eq!(json["status_counts"]["500"], 1);
        assert_eq!(json["latency_ms"]["p99"], 5.0);
        let text = report.to_string();
        assert!(text.contains("204: 2, 500: 1"), "{text}");
        assert!(text.contains("HTTP 500: boom"), "{text}");
    }
}
