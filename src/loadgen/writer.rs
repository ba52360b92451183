//! The writer tasks: the shared line counter and rate limit, one request loop per connection.

use super::*;

/// A token bucket that may go into debt: a caller takes its batch's tokens at once and waits
/// out any shortfall, so concurrent callers queue behind each other and the long-run rate is
/// exact. Capacity (the burst) is one batch.
#[derive(Debug)]
pub(super) struct TokenBucket {
    pub(super) rate_per_sec: f64,
    pub(super) capacity: f64,
    pub(super) tokens: f64,
    pub(super) last: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `rate_per_sec` (> 0) up to `capacity`.
    pub(super) fn new(rate_per_sec: u64, capacity: u64, now: Instant) -> Self {
        Self {
            rate_per_sec: rate_per_sec as f64,
            capacity: capacity as f64,
            tokens: capacity as f64,
            last: now,
        }
    }

    /// Takes `n` tokens; returns how long the caller must wait before using them.
    pub(super) fn acquire(&mut self, n: u64, now: Instant) -> Duration {
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

/// State shared by the writer tasks.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) client: reqwest::Client,
    pub(super) write_url: Url,
    pub(super) auth: Auth,
    pub(super) gzip: bool,
    pub(super) generator: Generator,
    pub(super) batch_size: usize,
    pub(super) max_lines: u64,
    /// The next unallocated global line number.
    pub(super) next_line: AtomicU64,
    pub(super) deadline: Instant,
    pub(super) limiter: Option<Mutex<TokenBucket>>,
    pub(super) counters: Counters,
    pub(super) first_error: Mutex<Option<String>>,
}

impl Shared {
    /// Allocates the next batch's line numbers, or `None` once `max_lines` are handed out.
    pub(super) fn allocate(&self) -> Option<(u64, usize)> {
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
    pub(super) fn rate_wait(&self) -> Duration {
        match &self.limiter {
            None => Duration::ZERO,
            Some(bucket) => bucket
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .acquire(self.batch_size as u64, Instant::now()),
        }
    }

    pub(super) fn note_error(&self, message: impl FnOnce() -> String) {
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
pub(super) struct Counters {
    pub(super) lines_acked: AtomicU64,
    pub(super) lines_failed: AtomicU64,
    pub(super) requests_ok: AtomicU64,
    pub(super) requests_failed: AtomicU64,
    pub(super) bytes_sent: AtomicU64,
}

/// What one writer measured, merged at the end.
#[derive(Debug)]
pub(super) struct WriterTotals {
    pub(super) latency_us: Histogram<u64>,
    pub(super) status_counts: BTreeMap<u16, u64>,
    pub(super) transport_errors: u64,
}

impl WriterTotals {
    pub(super) fn new() -> Self {
        Self {
            // 1 µs to 1 h at 3 significant digits.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("constant histogram bounds are valid"),
            status_counts: BTreeMap::new(),
            transport_errors: 0,
        }
    }

    pub(super) fn merge(&mut self, other: WriterTotals) {
        // Same bounds on both sides; `add` fails only when a value does not fit.
        let _ = self.latency_us.add(&other.latency_us);
        for (status, n) in other.status_counts {
            *self.status_counts.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
    }
}

/// One connection: allocate, generate, send, count; until the deadline or `max_lines`.
pub(super) async fn write_loop(
    shared: Arc<Shared>,
    record: Option<mpsc::Sender<Bytes>>,
) -> WriterTotals {
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
pub(super) async fn send(req: reqwest::RequestBuilder) -> Result<(u16, Bytes), reqwest::Error> {
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await?;
    Ok((status, body))
}

pub(super) fn gzip(raw: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(raw);
    Bytes::from(enc.finish().unwrap_or_default())
}

pub(super) fn body_excerpt(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    text.trim().to_owned()
}

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
