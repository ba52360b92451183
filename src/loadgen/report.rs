//! What a run reports: throughput, latency percentiles, status counts, the first error.

use super::*;

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
