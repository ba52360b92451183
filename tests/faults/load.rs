//! Load for the fault suite: a bounded writer recording every request, its answer and the
//! points it carried.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{DB, HOSTS};

/// What a [`Load`] writes.
#[derive(Debug, Clone)]
pub(crate) struct LoadSpec {
    /// fluxroute's ingest, `http://host:port`.
    pub(crate) url: String,
    /// Concurrent writers, each with one request in flight at most.
    pub(crate) connections: usize,
    /// Lines per request.
    pub(crate) batch: u64,
    /// Pause between a writer's requests (a tick; a slow answer delays the next tick).
    pub(crate) interval: Duration,
    /// Line numbers start here (two loads of one scenario use disjoint ranges).
    pub(crate) first_line: u64,
    /// The load stops by itself after this long, or after `max_requests` requests.
    pub(crate) max_duration: Duration,
    pub(crate) max_requests: u64,
    /// Timeout of one request.
    pub(crate) timeout: Duration,
}

impl LoadSpec {
    /// 2 writers × 200 lines every 200 ms: about 2,000 lines/s, bounded to 60 s.
    pub(crate) fn new(url: &str) -> LoadSpec {
        LoadSpec {
            url: url.to_owned(),
            connections: 2,
            batch: 200,
            interval: Duration::from_millis(200),
            first_line: 0,
            max_duration: Duration::from_secs(60),
            max_requests: 1_000,
            timeout: Duration::from_secs(5),
        }
    }
}

/// One write request and its answer.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub(crate) first: u64,
    pub(crate) count: u64,
    pub(crate) sent: Instant,
    pub(crate) answered: Instant,
    /// The HTTP status, or the transport error.
    pub(crate) outcome: Result<u16, String>,
}

impl Sent {
    pub(crate) fn is_acked(&self) -> bool {
        matches!(self.outcome, Ok(s) if (200..300).contains(&s))
    }
}

#[derive(Debug, Default)]
pub(crate) struct LoadState {
    pub(crate) log: Mutex<Vec<Sent>>,
    pub(crate) acked_lines: AtomicU64,
    pub(crate) failed_requests: AtomicU64,
}

/// A running load.
#[derive(Debug)]
pub(crate) struct Load {
    pub(crate) base: u64,
    pub(crate) state: Arc<LoadState>,
    pub(crate) stop: CancellationToken,
    pub(crate) tasks: JoinSet<()>,
}

/// The point key of line `n` (as [`support::points::stored`] spells it).
pub(crate) fn key(base: u64, n: u64) -> String {
    format!("fault,host=h{} {}", n % HOSTS, base + n)
}

/// Timestamps start one hour ago, on a whole second.
pub(crate) fn base_ns() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (now.as_secs() - 3600) * 1_000_000_000
}

impl Load {
    pub(crate) fn start(spec: LoadSpec, base: u64) -> Load {
        let state = Arc::new(LoadState::default());
        let stop = CancellationToken::new();
        let next = Arc::new(AtomicU64::new(0));
        let client = reqwest::Client::builder()
            .timeout(spec.timeout)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let spec = Arc::new(spec);
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for _ in 0..spec.connections {
            tasks.spawn(writer(
                Arc::clone(&spec),
                base,
                Arc::clone(&state),
                stop.clone(),
                Arc::clone(&next),
                started,
                client.clone(),
            ));
        }
        Load {
            base,
            state,
            stop,
            tasks,
        }
    }

    pub(crate) fn acked_lines(&self) -> u64 {
        self.state.acked_lines.load(Ordering::SeqCst)
    }

    pub(crate) fn failed_requests(&self) -> u64 {
        self.state.failed_requests.load(Ordering::SeqCst)
    }

    /// Waits until `n` lines in all were acknowledged.
    pub(crate) async fn wait_acked(&self, n: u64, within: Duration) {
        let deadline = Instant::now() + within;
        while self.acked_lines() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} lines acknowledged after {within:?}; answers: {:?}",
                self.acked_lines(),
                self.statuses()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `n` requests in all failed (no 2xx).
    pub(crate) async fn wait_failed(&self, n: u64, within: Duration) {
        let deadline = Instant::now() + within;
        while self.failed_requests() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} requests failed after {within:?}",
                self.failed_requests()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn statuses(&self) -> BTreeMap<String, u64> {
        statuses(&self.state.log.lock().unwrap())
    }

    /// The lines of requests acknowledged at or before `t`.
    pub(crate) fn acked_by(&self, t: Instant) -> BTreeSet<String> {
        let log = self.state.log.lock().unwrap();
        keys(
            self.base,
            log.iter().filter(|s| s.is_acked() && s.answered <= t),
        )
    }

    /// The lines of the first request sent after `t` that was acknowledged, and when it was.
    pub(crate) fn first_acked_after(&self, t: Instant) -> Option<(BTreeSet<String>, Instant)> {
        let log = self.state.log.lock().unwrap();
        log.iter()
            .filter(|s| s.is_acked() && s.sent >= t)
            .min_by_key(|s| s.sent)
            .map(|s| (keys(self.base, std::iter::once(s)), s.answered))
    }

    /// Stops starting requests, waits for those in flight, and returns the record.
    pub(crate) async fn stop(mut self) -> LoadResult {
        self.stop.cancel();
        while let Some(r) = self.tasks.join_next().await {
            r.unwrap();
        }
        let log = std::mem::take(&mut *self.state.log.lock().unwrap());
        LoadResult {
            base: self.base,
            log,
        }
    }
}

pub(crate) async fn writer(
    spec: Arc<LoadSpec>,
    base: u64,
    state: Arc<LoadState>,
    stop: CancellationToken,
    next: Arc<AtomicU64>,
    started: Instant,
    client: reqwest::Client,
) {
    let url = format!("{}/write?db={DB}&precision=ns", spec.url);
    let mut tick = tokio::time::interval(spec.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= spec.max_requests || started.elapsed() >= spec.max_duration {
            return;
        }
        let first = spec.first_line + i * spec.batch;
        let mut body = String::with_capacity(spec.batch as usize * 40);
        for n in first..first + spec.batch {
            let _ = writeln!(body, "fault,host=h{} v={n}i {}", n % HOSTS, base + n);
        }
        let sent = Instant::now();
        let outcome = match client.post(&url).body(body).send().await {
            Ok(r) => Ok(r.status().as_u16()),
            Err(e) => Err(error_chain(&e)),
        };
        let s = Sent {
            first,
            count: spec.batch,
            sent,
            answered: Instant::now(),
            outcome,
        };
        if s.is_acked() {
            state.acked_lines.fetch_add(s.count, Ordering::SeqCst);
        } else {
            state.failed_requests.fetch_add(1, Ordering::SeqCst);
        }
        state.log.lock().unwrap().push(s);
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let _ = write!(s, ": {c}");
        cur = c.source();
    }
    s
}

pub(crate) fn keys<'a>(base: u64, sent: impl Iterator<Item = &'a Sent>) -> BTreeSet<String> {
    sent.flat_map(|s| (s.first..s.first + s.count).map(move |n| key(base, n)))
        .collect()
}

/// Answers by kind: the status (`"204"`, `"503"`) or `"transport"`.
pub(crate) fn statuses(log: &[Sent]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for s in log {
        let k = match &s.outcome {
            Ok(status) => status.to_string(),
            Err(_) => "transport".to_owned(),
        };
        *out.entry(k).or_insert(0) += 1;
    }
    out
}

/// Every request of one or more loads of a scenario.
#[derive(Debug, Default)]
pub(crate) struct LoadResult {
    pub(crate) base: u64,
    pub(crate) log: Vec<Sent>,
}

impl LoadResult {
    pub(crate) fn merge(mut self, other: LoadResult) -> LoadResult {
        assert_eq!(self.base, other.base, "loads of one scenario share a base");
        self.log.extend(other.log);
        self
    }

    pub(crate) fn acked(&self) -> BTreeSet<String> {
        keys(self.base, self.log.iter().filter(|s| s.is_acked()))
    }

    pub(crate) fn unacked(&self) -> BTreeSet<String> {
        keys(self.base, self.log.iter().filter(|s| !s.is_acked()))
    }

    pub(crate) fn acked_lines(&self) -> u64 {
        self.log
            .iter()
            .filter(|s| s.is_acked())
            .map(|s| s.count)
            .sum()
    }

    pub(crate) fn failed(&self) -> Vec<&Sent> {
        self.log.iter().filter(|s| !s.is_acked()).collect()
    }

    pub(crate) fn statuses(&self) -> BTreeMap<String, u64> {
        statuses(&self.log)
    }
}
