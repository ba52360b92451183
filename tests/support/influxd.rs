//! A real `influxd` (InfluxDB 1.x, Debian's `influxdb` package) for tests: one process per
//! [`Influxd`], its own temp dir and free loopback ports, killed on drop.
//!
//! Self-contained on purpose (std + `tempfile` only): raw HTTP/1.1 over `TcpStream` with
//! `Connection: close`, no HTTP client crate.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `influxdb` package installs the server.
pub(crate) const INFLUXD_BIN: &str = "/usr/bin/influxd";

/// How long `start` waits for `/ping` to answer 204.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Timeout of one HTTP exchange.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `influxd`; the process is killed and its directory removed on drop.
#[derive(Debug)]
pub(crate) struct Influxd {
    child: Child,
    https: bool,
    http_addr: SocketAddr,
    log_path: PathBuf,
    config_path: PathBuf,
    // Dropped last: removes data, meta, wal, config and log.
    dir: tempfile::TempDir,
}

/// An HTTP response as read off the wire.
#[derive(Debug, Clone)]
pub(crate) struct HttpResponse {
    /// Status code.
    pub(crate) status: u16,
    /// Header names (lowercased) and values, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// Body, de-chunked.
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    /// The body as text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// First value of a header (name compared case-insensitively).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Influxd {
    /// Starts `influxd` with reporting, the monitor store, continuous queries, retention,
    /// shard precreation, subscriptions and every UDP/graphite/collectd/opentsdb listener off,
    /// HTTP and RPC bound to free loopback ports, and waits (with a deadline) until `/ping`
    /// answers 204.
    ///
    /// # Errors
    /// The binary is missing (install with `apt-get install influxdb`), it exits early, or it is
    /// not ready before the deadline; the message includes the end of its log.
    pub(crate) fn start() -> Result<Influxd, String> {
        Self::start_with(&Options::default())
    }

    /// As [`Influxd::start`], with `options`.
    ///
    /// # Errors
    /// As [`Influxd::start`].
    pub(crate) fn start_with(options: &Options) -> Result<Influxd, String> {
        if !Path::new(INFLUXD_BIN).exists() {
            return Err(format!(
                "{INFLUXD_BIN} not found: install InfluxDB 1.x with `apt-get install influxdb` \
                 (scripts/test does this)"
            ));
        }
        // A port picked free can be taken by someone else before influxd binds it: retry.
        let mut last_err = String::new();
        for _ in 0..3 {
            match Self::start_once(options) {
                Ok(influxd) => return Ok(influxd),
                Err((err, retry)) => {
                    last_err = err;
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last_err)
    }

    fn start_once(options: &Options) -> Result<Influxd, (String, bool)> {
        let dir = tempfile::Builder::new()
            .prefix("influxd-")
            .tempdir()
            .map_err(|e| (format!("temp dir: {e}"), false))?;
        let (http_port, rpc_port) =
            free_ports().map_err(|e| (format!("free ports: {e}"), false))?;
        let http_addr: SocketAddr = ([127, 0, 0, 1], http_port).into();
        let root = dir.path();
        let config = format!(
            r#"reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{meta}"
  logging-enabled = false

[data]
  dir = "{data}"
  wal-dir = "{wal}"
  index-version = "inmem"
  query-log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = {auth}
  max-body-size = {max_body}
{https}
  log-enabled = false
  pprof-enabled = false

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
"#,
            meta = root.join("meta").display(),
            data = root.join("data").display(),
            wal = root.join("wal").display(),
            auth = options.auth_enabled,
            max_body = options.max_body_size.unwrap_or(25_000_000),
            https = options.https.as_ref().map_or_else(String::new, |(cert, key)| format!(
                "  https-enabled = true\n  https-certificate = \"{}\"\n  https-private-key = \"{}\"",
                cert.display(),
                key.display()
            )),
        );
        let config_path = root.join("influxdb.conf");
        std::fs::write(&config_path, config).map_err(|e| (format!("write config: {e}"), false))?;
        let log_path = root.join("influxd.log");
        let child = spawn(&config_path, &log_path).map_err(|e| (e, false))?;
        let mut influxd = Influxd {
            child,
            https: options.https.is_some(),
            http_addr,
            log_path,
            config_path,
            dir,
        };
        influxd.wait_ready()?;
        Ok(influxd)
    }

    /// Waits for `/ping` 204; `Err((message, port taken?))`.
    fn wait_ready(&mut self) -> Result<(), (String, bool)> {
        let influxd = self;
        let http_addr = influxd.http_addr;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(Some(status)) = influxd.child.try_wait() {
                let log = influxd.log_tail();
                let retry = log.contains("address already in use");
                return Err((
                    format!("influxd exited early ({status}); log:\n{log}"),
                    retry,
                ));
            }
            if influxd.https {
                // No TLS client here: listening is the readiness signal.
                if std::net::TcpStream::connect_timeout(&http_addr, Duration::from_millis(200))
                    .is_ok()
                {
                    return Ok(());
                }
            } else if let Ok(resp) = influxd.request("GET", "/ping", &[]) {
                if resp.status == 204 {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                let log = influxd.log_tail();
                return Err((
                    format!(
                        "influxd not ready on {http_addr} after {START_DEADLINE:?}; log:\n{log}"
                    ),
                    false,
                ));
            }
            // Poll interval of a deadline-bounded wait for the condition above.
            std::thread::park_timeout(Duration::from_millis(25));
        }
    }

    /// kill -9 the process (data stays in its dir).
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the process again on the same ports and data (after [`Influxd::kill`]).
    ///
    /// # Errors
    /// As [`Influxd::start`].
    pub(crate) fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            self.child = spawn(&self.config_path, &self.log_path)?;
            match self.wait_ready() {
                Ok(()) => return Ok(()),
                // The old process's port may linger for a moment.
                Err((_, true)) if Instant::now() < deadline => {
                    std::thread::park_timeout(Duration::from_millis(200));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// SIGSTOP (hang: connections accepted by the kernel, nothing answers).
    pub(crate) fn freeze(&self) {
        signal(self.child.id(), "-STOP");
    }

    /// SIGCONT after [`Influxd::freeze`].
    pub(crate) fn thaw(&self) {
        signal(self.child.id(), "-CONT");
    }

    /// `http://<addr>`.
    pub(crate) fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.http_addr)
    }

    /// The HTTP API's address.
    pub(crate) fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The process's temp dir (config, data, log).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last 4 KiB of influxd's log.
    pub(crate) fn log_tail(&self) -> String {
        let log = std::fs::read(&self.log_path).unwrap_or_default();
        let from = log.len().saturating_sub(4096);
        String::from_utf8_lossy(&log[from..]).into_owned()
    }

    /// One HTTP/1.1 request (`Connection: close`) to influxd.
    ///
    /// # Errors
    /// Connection or I/O failure, or an unparseable response.
    pub(crate) fn request(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<HttpResponse, String> {
        http_request(self.http_addr, method, path_and_query, &[], body)
    }

    /// `POST /query?q=<q>` (URL-encoded), e.g. `CREATE DATABASE diff`.
    ///
    /// # Errors
    /// As [`Influxd::request`], or a non-200 answer.
    pub(crate) fn query(&self, q: &str) -> Result<HttpResponse, String> {
        let resp = self.request("POST", &format!("/query?q={}", url_encode(q)), &[])?;
        if resp.status != 200 {
            return Err(format!("query {q:?}: {} {}", resp.status, resp.text()));
        }
        Ok(resp)
    }

    /// `GET /query?db=<db>&epoch=ns&q=<q>`.
    ///
    /// # Errors
    /// As [`Influxd::request`], or a non-200 answer.
    pub(crate) fn select(&self, db: &str, q: &str) -> Result<HttpResponse, String> {
        let path = format!("/query?db={}&epoch=ns&q={}", url_encode(db), url_encode(q));
        let resp = self.request("GET", &path, &[])?;
        if resp.status != 200 {
            return Err(format!("select {q:?}: {} {}", resp.status, resp.text()));
        }
        Ok(resp)
    }

    /// `POST /write?db=<db>[&precision=<p>]` with `body` as is.
    ///
    /// # Errors
    /// As [`Influxd::request`] (any HTTP status is returned as a response).
    pub(crate) fn write(
        &self,
        db: &str,
        precision: &str,
        body: &[u8],
    ) -> Result<HttpResponse, String> {
        let mut path = format!("/write?db={}", url_encode(db));
        if !precision.is_empty() {
            let _ = write!(path, "&precision={}", url_encode(precision));
        }
        self.request("POST", &path, body)
    }
}

/// Options of a test `influxd`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// `[http] max-body-size` (default 25,000,000).
    pub(crate) max_body_size: Option<usize>,
    /// `[http] auth-enabled`.
    pub(crate) auth_enabled: bool,
    /// `[http] https-enabled` with this certificate and key (PEM files): influxd then speaks
    /// only HTTPS, and the raw-HTTP helpers ([`Influxd::request`], `select`...) do not work.
    pub(crate) https: Option<(PathBuf, PathBuf)>,
}

fn spawn(config_path: &Path, log_path: &Path) -> Result<Child, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|e| format!("log file: {e}"))?;
    let log_err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
    Command::new(INFLUXD_BIN)
        .arg("-config")
        .arg(config_path)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("spawn {INFLUXD_BIN}: {e}"))
}

/// Sends `sig` (`-STOP`, `-CONT`...) to process `pid` with `kill`.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

impl Drop for Influxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two distinct free loopback ports (bound together, then released).
fn free_ports() -> std::io::Result<(u16, u16)> {
    let a = TcpListener::bind("127.0.0.1:0")?;
    let b = TcpListener::bind("127.0.0.1:0")?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

/// Percent-encodes everything but unreserved characters.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// One raw HTTP/1.1 exchange with `Connection: close`.
///
/// # Errors
/// Connection or I/O failure, or an unparseable response.
pub(crate) fn http_request(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse, String> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| format!("timeouts: {e}"))?;
    let mut req = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    let mut wire = req.into_bytes();
    wire.extend_from_slice(body);
    stream
        .write_all(&wire)
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header end in {:?}", String::from_utf8_lossy(raw)))?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[head_end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line")?;
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("chunk size {size_text:?}: {e}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
