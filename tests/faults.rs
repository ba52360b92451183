//! Fault injection under steady load. Each scenario writes through fluxroute while a fault is
//! on, ends the fault, and ends with an exact comparison of the acknowledged lines against every
//! cluster's stored points:
//!
//! - a. a cluster blackholed (fault proxy between fluxroute and one `influxd`), then back;
//! - b. a cluster slower than its write `timeout`, then normal;
//! - c. connections cut mid-response (the cluster wrote the batch, fluxroute never saw the 204);
//! - d. the broker killed (kill -9) and restarted on its sqlite storage;
//! - e. the broker unreachable (fault proxy refusing connections to it), then reachable;
//! - f. fluxroute itself killed (kill -9) and restarted, on Kafka;
//! - g. one of two fluxroute instances sharing the consumer groups killed, then restarted.
//!
//! Also here: the fault proxy's own test (`support::faultproxy`, every mode against a real
//! `influxd`), and SIGTERM while the broker hangs or refuses commits (the process still exits).
//!
//! The load is a bounded writer ([`Load`]) that records every request: which lines it carried
//! and how it was answered (status, or the transport error). Every line is a distinct point
//! (`fault,host=h<n % 16> v=<n>i <base + n>`). At the end, every acknowledged (2xx) line must be
//! stored in every cluster, and a stored line that was not acknowledged must be one that was sent
//! (answered 503 or cut off by a crash after it was made durable): those are reported as "extra".
//!
//! Each scenario prints one summary line, then the table of the scenarios finished so far in this
//! process (`cargo test --test faults -- --nocapture`):
//!
//! - `acked`: lines acknowledged; `failed`: requests not acknowledged, by answer;
//! - `delivered`: distinct points each cluster holds (acknowledged plus extra);
//! - `extra`: stored points that were sent but not acknowledged (the same in every cluster);
//! - `dups`: duplicates absorbed, per cluster: points the cluster's `influxd` accepted over HTTP
//!   (`SHOW STATS`, httpd `pointsWrittenOK`) minus the distinct points it holds, i.e. replayed
//!   lines that overwrote identical points;
//! - `ingest back`: from the end of the fault until the first request sent after it (of each
//!   writer) was acknowledged;
//! - `recovery`: from the end of the fault until every cluster holds every line acknowledged
//!   before the fault ended plus the lines of the first request (of each writer) acknowledged
//!   after it: the backlog is delivered and new writes flow end to end again.
//! - `took`: the scenario's whole run, start-up included.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::broker::{Broker, Options, Storage};
use support::config::{cluster_with_timeout, Setup};
use support::faultproxy::{FaultProxy, Mode};
use support::fluxroute::Fluxroute;
use support::influxd::Influxd;
use support::process::{free_port, FluxrouteProcess};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The database every scenario writes.
const DB: &str = "faults";
/// Series per scenario (`host` tag values).
const HOSTS: u64 = 16;
/// Lines acknowledged before a fault starts.
const BEFORE_FAULT: u64 = 2_000;
/// Lines acknowledged while a fault is on, when ingest keeps working (cluster faults).
const DURING_FAULT: u64 = 4_000;
/// Lines acknowledged after the fault, beyond the recovery probe.
const AFTER_FAULT: u64 = 2_000;
/// Longest a scenario waits for delivery after its load.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// Load: a bounded writer recording every request
// ---------------------------------------------------------------------------------------------

/// What a [`Load`] writes.
#[derive(Debug, Clone)]
struct LoadSpec {
    /// fluxroute's ingest, `http://host:port`.
    url: String,
    /// Concurrent writers, each with one request in flight at most.
    connections: usize,
    /// Lines per request.
    batch: u64,
    /// Pause between a writer's requests (a tick; a slow answer delays the next tick).
    interval: Duration,
    /// Line numbers start here (two loads of one scenario use disjoint ranges).
    first_line: u64,
    /// The load stops by itself after this long, or after `max_requests` requests.
    max_duration: Duration,
    max_requests: u64,
    /// Timeout of one request.
    timeout: Duration,
}

impl LoadSpec {
    /// 2 writers × 200 lines every 200 ms: about 2,000 lines/s, bounded to 60 s.
    fn new(url: &str) -> LoadSpec {
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
struct Sent {
    first: u64,
    count: u64,
    sent: Instant,
    answered: Instant,
    /// The HTTP status, or the transport error.
    outcome: Result<u16, String>,
}

impl Sent {
    fn is_acked(&self) -> bool {
        matches!(self.outcome, Ok(s) if (200..300).contains(&s))
    }
}

#[derive(Debug, Default)]
struct LoadState {
    log: Mutex<Vec<Sent>>,
    acked_lines: AtomicU64,
    failed_requests: AtomicU64,
}

/// A running load.
#[derive(Debug)]
struct Load {
    base: u64,
    state: Arc<LoadState>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

/// The point key of line `n` (as [`support::points::stored`] spells it).
fn key(base: u64, n: u64) -> String {
    format!("fault,host=h{} {}", n % HOSTS, base + n)
}

/// Timestamps start one hour ago, on a whole second.
fn base_ns() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (now.as_secs() - 3600) * 1_000_000_000
}

impl Load {
    fn start(spec: LoadSpec, base: u64) -> Load {
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

    fn acked_lines(&self) -> u64 {
        self.state.acked_lines.load(Ordering::SeqCst)
    }

    fn failed_requests(&self) -> u64 {
        self.state.failed_requests.load(Ordering::SeqCst)
    }

    /// Waits until `n` lines in all were acknowledged.
    async fn wait_acked(&self, n: u64, within: Duration) {
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
    async fn wait_failed(&self, n: u64, within: Duration) {
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

    fn statuses(&self) -> BTreeMap<String, u64> {
        statuses(&self.state.log.lock().unwrap())
    }

    /// The lines of requests acknowledged at or before `t`.
    fn acked_by(&self, t: Instant) -> BTreeSet<String> {
        let log = self.state.log.lock().unwrap();
        keys(
            self.base,
            log.iter().filter(|s| s.is_acked() && s.answered <= t),
        )
    }

    /// The lines of the first request sent after `t` that was acknowledged, and when it was.
    fn first_acked_after(&self, t: Instant) -> Option<(BTreeSet<String>, Instant)> {
        let log = self.state.log.lock().unwrap();
        log.iter()
            .filter(|s| s.is_acked() && s.sent >= t)
            .min_by_key(|s| s.sent)
            .map(|s| (keys(self.base, std::iter::once(s)), s.answered))
    }

    /// Stops starting requests, waits for those in flight, and returns the record.
    async fn stop(mut self) -> LoadResult {
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

async fn writer(
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

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let _ = write!(s, ": {c}");
        cur = c.source();
    }
    s
}

fn keys<'a>(base: u64, sent: impl Iterator<Item = &'a Sent>) -> BTreeSet<String> {
    sent.flat_map(|s| (s.first..s.first + s.count).map(move |n| key(base, n)))
        .collect()
}

/// Answers by kind: the status (`"204"`, `"503"`) or `"transport"`.
fn statuses(log: &[Sent]) -> BTreeMap<String, u64> {
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
struct LoadResult {
    base: u64,
    log: Vec<Sent>,
}

impl LoadResult {
    fn merge(mut self, other: LoadResult) -> LoadResult {
        assert_eq!(self.base, other.base, "loads of one scenario share a base");
        self.log.extend(other.log);
        self
    }

    fn acked(&self) -> BTreeSet<String> {
        keys(self.base, self.log.iter().filter(|s| s.is_acked()))
    }

    fn unacked(&self) -> BTreeSet<String> {
        keys(self.base, self.log.iter().filter(|s| !s.is_acked()))
    }

    fn acked_lines(&self) -> u64 {
        self.log
            .iter()
            .filter(|s| s.is_acked())
            .map(|s| s.count)
            .sum()
    }

    fn failed(&self) -> Vec<&Sent> {
        self.log.iter().filter(|s| !s.is_acked()).collect()
    }

    fn statuses(&self) -> BTreeMap<String, u64> {
        statuses(&self.log)
    }
}

// ---------------------------------------------------------------------------------------------
// Clusters: stored points, duplicates, recovery, the final comparison
// ---------------------------------------------------------------------------------------------

/// A named cluster (one `influxd`).
type Cluster<'a> = (&'a str, &'a Influxd);

/// The points `influxd` holds in [`DB`] (a blocking query, kept off the runtime's workers).
fn stored(influxd: &Influxd) -> BTreeSet<String> {
    tokio::task::block_in_place(|| support::points::stored(influxd, DB))
}

/// Points `influxd` accepted over HTTP since it started (`SHOW STATS`, httpd `pointsWrittenOK`),
/// counting every replay.
fn points_received(influxd: &Influxd) -> u64 {
    let resp = tokio::task::block_in_place(|| influxd.query("SHOW STATS FOR 'httpd'")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    let series = &v["results"][0]["series"][0];
    let columns = series["columns"].as_array().unwrap();
    let i = columns
        .iter()
        .position(|c| c == "pointsWrittenOK")
        .unwrap_or_else(|| panic!("no pointsWrittenOK in {v}"));
    series["values"][0][i].as_u64().unwrap()
}

/// How long a scenario took to recover after its fault ended.
#[derive(Debug, Clone, Copy)]
struct Recovery {
    /// Until the first request (of the slowest load) sent after the fault was acknowledged.
    ingest: Duration,
    /// Until every cluster held every line acknowledged before the fault ended plus those of
    /// that first request of each load.
    delivered: Duration,
}

/// Measures [`Recovery`] from `fault_end`, polling the clusters.
async fn recovery(
    loads: &[&Load],
    clusters: &[Cluster<'_>],
    fault_end: Instant,
) -> Result<Recovery, String> {
    recovery_without(loads, &[], clusters, fault_end).await
}

/// [`recovery`] where the loads in `gone` lost their server for good: what they had
/// acknowledged before `fault_end` must be delivered too, but they are not expected to get a
/// request acknowledged after it.
async fn recovery_without(
    loads: &[&Load],
    gone: &[&Load],
    clusters: &[Cluster<'_>],
    fault_end: Instant,
) -> Result<Recovery, String> {
    let mut target = BTreeSet::new();
    for l in loads.iter().chain(gone) {
        target.extend(l.acked_by(fault_end));
    }
    let deadline = Instant::now() + DELIVERY_DEADLINE;
    let mut probes: Vec<Option<Instant>> = vec![None; loads.len()];
    loop {
        for (probe, l) in probes.iter_mut().zip(loads) {
            if probe.is_none() {
                if let Some((lines, answered)) = l.first_acked_after(fault_end) {
                    target.extend(lines);
                    *probe = Some(answered);
                }
            }
        }
        if probes.iter().all(Option::is_some)
            && clusters.iter().all(|(_, c)| target.is_subset(&stored(c)))
        {
            let ingest = probes.iter().flatten().max().copied().unwrap_or(fault_end);
            return Ok(Recovery {
                ingest: ingest.saturating_duration_since(fault_end),
                delivered: fault_end.elapsed(),
            });
        }
        if Instant::now() >= deadline {
            let missing: Vec<String> = clusters
                .iter()
                .map(|(n, c)| format!("{n}: {}", target.difference(&stored(c)).count()))
                .collect();
            return Err(format!(
                "not recovered {DELIVERY_DEADLINE:?} after the fault: acknowledged after it per \
                 load {:?}, answers {:?}, lines missing per cluster {missing:?}",
                probes.iter().map(Option::is_some).collect::<Vec<_>>(),
                loads.iter().map(|l| l.statuses()).collect::<Vec<_>>()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What [`verify`] found.
#[derive(Debug)]
struct Verified {
    /// Distinct points per cluster.
    delivered: Vec<usize>,
    /// Stored points sent but not acknowledged (the same set in every cluster).
    extra: usize,
    /// Points each `influxd` accepted beyond its distinct points (replays absorbed).
    dups: Vec<u64>,
}

/// The exact comparison: every acknowledged line is stored in every cluster; the clusters end up
/// holding the same points; a stored line that was not acknowledged was sent (answered with an
/// error or cut off).
async fn verify(scenario: &str, result: &LoadResult, clusters: &[Cluster<'_>]) -> Verified {
    let acked = result.acked();
    let unacked = result.unacked();
    assert_eq!(
        acked.len() as u64,
        result.acked_lines(),
        "{scenario}: every line is a distinct point"
    );
    assert!(!acked.is_empty(), "{scenario}: nothing acknowledged");
    let deadline = Instant::now() + DELIVERY_DEADLINE;
    for (name, c) in clusters {
        loop {
            let have = stored(c);
            let missing: Vec<&String> = acked.difference(&have).collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{scenario}: cluster {name} misses {} of {} acknowledged lines after \
                 {DELIVERY_DEADLINE:?}, e.g. {:?}; influxd log:\n{}",
                missing.len(),
                acked.len(),
                missing.iter().take(3).collect::<Vec<_>>(),
                c.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    // Lines made durable but not acknowledged (a 503 after the queue took them, a crash before
    // the answer) reach every cluster too: wait until all clusters hold the same points.
    let sets = loop {
        let sets: Vec<BTreeSet<String>> = clusters.iter().map(|(_, c)| stored(c)).collect();
        if sets.windows(2).all(|w| w[0] == w[1]) {
            break sets;
        }
        assert!(
            Instant::now() < deadline,
            "{scenario}: clusters hold different points: {:?}",
            sets.iter().map(BTreeSet::len).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut dups = Vec::new();
    for ((name, c), have) in clusters.iter().zip(&sets) {
        let stray: Vec<&String> = have
            .iter()
            .filter(|k| !acked.contains(*k) && !unacked.contains(*k))
            .collect();
        assert!(
            stray.is_empty(),
            "{scenario}: cluster {name} holds {} points nobody sent, e.g. {:?}",
            stray.len(),
            stray.iter().take(3).collect::<Vec<_>>()
        );
        let received = points_received(c);
        assert!(
            received >= have.len() as u64,
            "{scenario}: {name} accepted {received} points but holds {}",
            have.len()
        );
        dups.push(received - have.len() as u64);
    }
    Verified {
        delivered: sets.iter().map(BTreeSet::len).collect(),
        extra: sets[0].len() - acked.len(),
        dups,
    }
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Row {
    scenario: &'static str,
    acked: u64,
    failed: String,
    delivered: String,
    extra: usize,
    dups: String,
    recovery: Recovery,
    took: Duration,
}

static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

fn summarize(
    scenario: &'static str,
    result: &LoadResult,
    clusters: &[Cluster<'_>],
    v: &Verified,
    recovery: Recovery,
    started: Instant,
) {
    let failed: Vec<String> = result
        .statuses()
        .into_iter()
        .filter(|(k, _)| !k.starts_with('2'))
        .map(|(k, n)| format!("{n}×{k}"))
        .collect();
    let per = |f: &dyn Fn(usize) -> String| {
        clusters
            .iter()
            .enumerate()
            .map(|(i, (n, _))| format!("{n}={}", f(i)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let row = Row {
        scenario,
        acked: result.acked_lines(),
        failed: if failed.is_empty() {
            "0".into()
        } else {
            failed.join(",")
        },
        delivered: per(&|i| v.delivered[i].to_string()),
        extra: v.extra,
        dups: per(&|i| v.dups[i].to_string()),
        recovery,
        took: started.elapsed(),
    };
    println!(
        "SUMMARY {scenario}: acked {} lines, failed requests {}, delivered {}, extra {}, \
         duplicates absorbed {}, ingest back after {} ms, recovery {} ms, missing 0",
        row.acked,
        row.failed,
        row.delivered,
        row.extra,
        row.dups,
        row.recovery.ingest.as_millis(),
        row.recovery.delivered.as_millis()
    );
    let mut rows = ROWS.lock().unwrap();
    rows.push(row);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<32} {:>7} {:<16} {:<18} {:>5} {:<16} {:>11} {:>9} {:>7}",
        "scenario",
        "acked",
        "failed requests",
        "delivered",
        "extra",
        "dups",
        "ingest back",
        "recovery",
        "took"
    );
    for r in rows.iter() {
        let _ = writeln!(
            t,
            "{:<32} {:>7} {:<16} {:<18} {:>5} {:<16} {:>9}ms {:>7}ms {:>6.1}s",
            r.scenario,
            r.acked,
            r.failed,
            r.delivered,
            r.extra,
            r.dups,
            r.recovery.ingest.as_millis(),
            r.recovery.delivered.as_millis(),
            r.took.as_secs_f64()
        );
    }
    println!("fault scenarios finished so far (missing acknowledged lines: 0 in each):\n{t}");
}

// ---------------------------------------------------------------------------------------------
// Configs and small helpers
// ---------------------------------------------------------------------------------------------

fn embedded_config(queue: &Path, clusters: &str) -> String {
    Setup::embedded(queue)
        .partitions(4)
        .cluster_toml(clusters)
        .route(&["*"], &["a", "b"])
        .toml()
}

/// Kafka at `bootstrap`, reconnecting within a second (no `[ingest]`: a child process's config
/// gets its listen lines prepended).
fn kafka_setup(bootstrap: &str, clusters: &str) -> Setup {
    Setup::kafka(bootstrap)
        .partitions(4)
        .property("\"reconnect.backoff.max.ms\" = \"1000\"")
        .cluster_toml(clusters)
        .route(&["*"], &["a", "b"])
}

fn kafka_sections(bootstrap: &str, clusters: &str) -> String {
    kafka_setup(bootstrap, clusters).toml()
}

/// In-process fluxroute on Kafka: writes wait at most `enqueue_timeout` for the broker.
fn kafka_config(bootstrap: &str, clusters: &str, enqueue_timeout: &str) -> String {
    kafka_setup(bootstrap, clusters)
        .section(&format!(
            "[ingest]\nenqueue_timeout = \"{enqueue_timeout}\"\nretry_after = \"1s\""
        ))
        .toml()
}

fn two_clusters(a: &str, b: &str, timeout: &str) -> String {
    cluster_with_timeout("a", a, timeout, "") + &cluster_with_timeout("b", b, timeout, "")
}

/// `CREATE DATABASE` through fluxroute's `/query` (retried while the queue is not ready).
async fn create_database(url: &str) {
    let http = support::http_client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .post(format!("{url}/query"))
            .form(&[("q", format!("CREATE DATABASE {DB}"))])
            .send()
            .await;
        match r {
            Ok(r) if r.status() == 200 => return,
            other => assert!(
                Instant::now() < deadline,
                "CREATE DATABASE failed: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the first `/metrics` sample of `admin_url` starting with `prefix`.
async fn metric(admin_url: &str, prefix: &str) -> Option<f64> {
    let text = support::http_client()
        .get(format!("{admin_url}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    support::sample(&text, prefix)
}

/// Waits until `cond` holds, polling every 50 ms.
async fn wait_until(what: &str, within: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The proxy itself
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_proxy_modes_against_influxd() {
    let influxd = Influxd::start().unwrap();
    influxd.query("CREATE DATABASE p").unwrap();
    let proxy = FaultProxy::start(influxd.http_addr()).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let ping = || http.get(format!("{}/ping", proxy.url())).send();
    let write = |line: String| {
        http.post(format!("{}/write?db=p&precision=ns", proxy.url()))
            .body(line)
            .send()
    };

    // Pass: answers come back, bytes are counted both ways.
    assert_eq!(ping().await.unwrap().status(), 204);
    assert_eq!(write("m,k=pass v=1 1".into()).await.unwrap().status(), 204);
    let s = proxy.stats();
    assert!(s.connections >= 1 && s.open >= 1, "{s:?}");
    assert!(s.bytes_to_upstream > 0 && s.bytes_to_client > 0, "{s:?}");

    // Refuse: the open (pooled) connection is dropped, new ones are reset at once.
    proxy.set_mode(Mode::Refuse);
    wait_until(
        "the idle connection dropped",
        Duration::from_secs(5),
        async || proxy.stats().dropped >= 1,
    )
    .await;
    for _ in 0..2 {
        let t = Instant::now();
        let e = ping().await.unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(2), "{e}");
    }
    let s = proxy.stats();
    assert!(s.refused >= 1, "{s:?}");

    // Latency: each chunk waits, both ways.
    proxy.set_mode(Mode::Latency(Duration::from_millis(300)));
    let t = Instant::now();
    assert_eq!(ping().await.unwrap().status(), 204);
    assert!(
        t.elapsed() >= Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );

    // Bandwidth: 8 kB at 8 kB/s takes about a second.
    proxy.set_mode(Mode::Bandwidth(8_000));
    let mut body = String::new();
    let mut i = 0;
    while body.len() < 8_000 {
        let _ = writeln!(body, "m,k=bw v={i} {}", 1000 + i);
        i += 1;
    }
    let t = Instant::now();
    assert_eq!(write(body).await.unwrap().status(), 204);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    // CutResponse: the write reaches influxd, its answer is cut after 12 bytes.
    proxy.set_mode(Mode::CutResponse { after_bytes: 12 });
    let before = proxy.stats();
    let e = write("m,k=cut v=1 2".into()).await.unwrap_err();
    let s = proxy.stats();
    assert_eq!(s.cut, before.cut + 1, "{e}: {s:?}");
    assert_eq!(s.bytes_to_client, before.bytes_to_client + 12, "{s:?}");
    let have = support::points::stored(&influxd, "p");
    assert!(have.contains("m,k=cut 2"), "{have:?}");

    // Blackhole: a pooled connection from Pass and new ones are read, never answered.
    proxy.set_mode(Mode::Pass);
    assert_eq!(ping().await.unwrap().status(), 204);
    proxy.set_mode(Mode::Blackhole);
    let before = proxy.stats();
    let short = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let e = short
        .post(format!("{}/write?db=p&precision=ns", proxy.url()))
        .body("m,k=hole v=1 3")
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    let e = http
        .get(format!("{}/ping", proxy.url()))
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    let s = proxy.stats();
    assert!(s.bytes_discarded > before.bytes_discarded, "{s:?}");
    assert_eq!(s.bytes_to_upstream, before.bytes_to_upstream, "{s:?}");
    let have = support::points::stored(&influxd, "p");
    assert!(!have.contains("m,k=hole 3"), "{have:?}");

    // Back to Pass: new connections work again.
    proxy.set_mode(Mode::Pass);
    assert_eq!(ping().await.unwrap().status(), 204);
    println!("proxy stats: {:?}", proxy.stats());
}

// ---------------------------------------------------------------------------------------------
// a–c: one cluster behind a fault proxy, embedded queue
// ---------------------------------------------------------------------------------------------

/// Cluster `b` sits behind a fault proxy; `mode` is on while the load runs. Ingest must not
/// notice; `a` keeps up; `b` gets everything after the fault.
async fn cluster_fault(scenario: &'static str, mode: Mode, timeout: &str) {
    let started = Instant::now();
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let proxy = FaultProxy::start(b.http_addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = embedded_config(
        &dir.path().join("queue"),
        &two_clusters(&a.url(), &proxy.url(), timeout),
    );
    let fr = Fluxroute::start(&cfg).await;
    create_database(&fr.url()).await;
    let load = Load::start(LoadSpec::new(&fr.url()), base_ns());
    load.wait_acked(BEFORE_FAULT, Duration::from_secs(30)).await;

    proxy.set_mode(mode);
    let admin = fr.admin_url();
    // The fault lasts until the drain has felt it, and while DURING_FAULT more lines come in.
    match mode {
        Mode::CutResponse { .. } => {
            wait_until("a cut write retried", Duration::from_secs(30), async || {
                proxy.stats().cut >= 2
                    && metric(
                        &admin,
                        "fluxroute_drain_retries_total{cluster=\"b\",reason=\"transport\"}",
                    )
                    .await
                    .unwrap_or(0.0)
                        >= 1.0
            })
            .await;
        }
        _ => {
            wait_until("cluster b down", Duration::from_secs(30), async || {
                metric(&admin, "fluxroute_cluster_up{cluster=\"b\"}").await == Some(0.0)
            })
            .await;
        }
    }
    let at = load.acked_lines();
    load.wait_acked(at + DURING_FAULT, Duration::from_secs(30))
        .await;
    // Meanwhile a keeps up (one cluster's fault slows no other), and b has a backlog.
    let so_far = load.acked_by(Instant::now());
    wait_until(
        "a keeps up during the fault",
        Duration::from_secs(30),
        async || so_far.is_subset(&stored(&a)),
    )
    .await;
    let behind = so_far.difference(&stored(&b)).count();
    assert!(behind > 0, "{scenario}: b missed nothing during the fault");
    println!("{scenario}: b was {behind} lines behind a when the fault ended");
    proxy.set_mode(Mode::Pass);
    let fault_end = Instant::now();

    let recovered = recovery(&[&load], &[("a", &a), ("b", &b)], fault_end)
        .await
        .unwrap();
    let at = load.acked_lines();
    load.wait_acked(at + AFTER_FAULT, Duration::from_secs(30))
        .await;
    let result = load.stop().await;
    assert_eq!(
        result.failed().len(),
        0,
        "{scenario}: a cluster fault reached ingest: {:?}",
        result.statuses()
    );
    let v = verify(scenario, &result, &[("a", &a), ("b", &b)]).await;
    // One instance, no restart: fluxroute counts each line written once per cluster; replays of
    // unanswered writes are only visible at influxd.
    for (i, c) in ["a", "b"].iter().enumerate() {
        let prefix = format!("fluxroute_drain_lines_written_total{{cluster=\"{c}\"}}");
        wait_until(
            &format!("{scenario}: {prefix} = {}", v.delivered[i]),
            Duration::from_secs(10),
            async || metric(&admin, &prefix).await == Some(v.delivered[i] as f64),
        )
        .await;
    }
    assert_eq!(
        v.dups[0], 0,
        "{scenario}: cluster a saw no fault, no replay"
    );
    let s = proxy.stats();
    match mode {
        Mode::Blackhole => assert!(s.bytes_discarded > 0, "{s:?}"),
        Mode::CutResponse { .. } => {
            assert!(s.cut > 0, "{s:?}");
            assert!(v.dups[1] > 0, "{scenario}: a cut batch is written again");
        }
        _ => {}
    }
    println!("{scenario}: proxy {s:?}");
    summarize(
        scenario,
        &result,
        &[("a", &a), ("b", &b)],
        &v,
        recovered,
        started,
    );
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blackholed_cluster_gets_everything_after() {
    cluster_fault("a. cluster blackholed", Mode::Blackhole, "1s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn b_slow_cluster_gets_everything_after() {
    cluster_fault(
        "b. cluster slower than timeout",
        Mode::Latency(Duration::from_millis(1500)),
        "1s",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c_cut_responses_are_retried_not_lost() {
    cluster_fault(
        "c. response cut mid-way",
        Mode::CutResponse { after_bytes: 12 },
        "1s",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// d–e: the broker
// ---------------------------------------------------------------------------------------------

/// Every failed request of `result` was answered 503 within `enqueue_timeout` plus slack.
fn assert_only_503(scenario: &str, result: &LoadResult, enqueue_timeout: Duration) {
    let failed = result.failed();
    assert!(
        !failed.is_empty(),
        "{scenario}: the fault never reached ingest"
    );
    for s in failed {
        assert_eq!(s.outcome, Ok(503), "{scenario}: {s:?}");
        let took = s.answered - s.sent;
        assert!(
            took <= enqueue_timeout + Duration::from_millis(1500),
            "{scenario}: 503 after {took:?}"
        );
    }
}

/// A real restart: kill -9, then a new broker process on the same sqlite file and port, after
/// an outage longer than the producer's `produce_timeout` (2 s). Writes meanwhile get 503 after
/// `enqueue_timeout` (1 s); their records time out in the producer, so librdkafka's idempotent
/// producer bumps its epoch (sequences restart at 0) when the broker is back, as it does against
/// Kafka after any timed-out batch. Records of 503 answers that did reach the broker show up as
/// "extra".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn d_broker_restart_on_sqlite_loses_nothing() {
    let scenario = "d. broker kill -9 + restart";
    let started = Instant::now();
    let mut broker = Broker::start(Storage::Sqlite);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let clusters = [("a", &a), ("b", &b)];
    let cfg = kafka_config(
        &broker.bootstrap(),
        &two_clusters(&a.url(), &b.url(), "2s"),
        "1s",
    )
    .replace(
        "linger = \"1ms\"",
        "linger = \"1ms\"\nproduce_timeout = \"2s\"",
    );
    let fr = Fluxroute::start(&cfg).await;
    create_database(&fr.url()).await;
    let load = Load::start(LoadSpec::new(&fr.url()), base_ns());
    load.wait_acked(BEFORE_FAULT, Duration::from_secs(30)).await;

    broker.kill();
    let killed = Instant::now();
    load.wait_failed(3, Duration::from_secs(30)).await;
    // The outage lasts three times `produce_timeout` (this is the fault's length, not a wait for
    // an outcome): every record handed to the producer before or during it has timed out.
    tokio::time::sleep_until((killed + Duration::from_secs(6)).into()).await;
    broker.restart();
    let fault_end = Instant::now();

    let recovered = recovery(&[&load], &clusters, fault_end)
        .await
        .unwrap_or_else(|e| panic!("{scenario}: {e}\nbroker log:\n{}", broker.log()));
    let at = load.acked_lines();
    load.wait_acked(at + AFTER_FAULT, Duration::from_secs(30))
        .await;
    let result = load.stop().await;
    assert_only_503(scenario, &result, Duration::from_secs(1));
    let v = verify(scenario, &result, &clusters).await;
    summarize(scenario, &result, &clusters, &v, recovered, started);
    fr.stop().await.unwrap();
}

/// The broker is fine but unreachable: the proxy resets every connection to it. Ingest answers
/// 503 after `enqueue_timeout`; the records of those requests are delivered once the broker is
/// reachable again ("extra"). Recovery is dominated by the consumer groups: their session
/// times out (6 s) during the outage and the test broker holds each JoinGroup for 3 s (`session.timeout.ms` / 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e_unreachable_broker_gives_503_then_recovers() {
    let scenario = "e. broker unreachable";
    let started = Instant::now();
    // Clients reach the broker only through the proxy: it is the address the broker advertises.
    let proxy = FaultProxy::bind().await;
    let broker = Broker::start_with(
        Storage::Memory,
        Options {
            advertised: Some(proxy.addr().to_string()),
            ..Options::default()
        },
    );
    proxy.set_upstream(broker.addr());
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let clusters = [("a", &a), ("b", &b)];
    let cfg = kafka_config(
        &proxy.addr().to_string(),
        &two_clusters(&a.url(), &b.url(), "2s"),
        "1s",
    );
    let fr = Fluxroute::start(&cfg).await;
    create_database(&fr.url()).await;
    let load = Load::start(LoadSpec::new(&fr.url()), base_ns());
    load.wait_acked(BEFORE_FAULT, Duration::from_secs(30)).await;

    proxy.set_mode(Mode::Refuse);
    load.wait_failed(5, Duration::from_secs(30)).await;
    let health = support::http_client()
        .get(format!("{}/health", fr.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        503,
        "{scenario}: /health while unreachable"
    );
    proxy.set_mode(Mode::Pass);
    let fault_end = Instant::now();

    let recovered = recovery(&[&load], &clusters, fault_end)
        .await
        .unwrap_or_else(|e| panic!("{scenario}: {e}\nbroker log:\n{}", broker.log()));
    let at = load.acked_lines();
    load.wait_acked(at + AFTER_FAULT, Duration::from_secs(30))
        .await;
    let result = load.stop().await;
    assert_only_503(scenario, &result, Duration::from_secs(1));
    let s = proxy.stats();
    assert!(s.refused > 0 && s.dropped > 0, "{s:?}");
    println!("{scenario}: proxy {s:?}");
    let v = verify(scenario, &result, &clusters).await;
    summarize(scenario, &result, &clusters, &v, recovered, started);
    fr.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// f–g: fluxroute itself
// ---------------------------------------------------------------------------------------------

/// Every failed request of `result` got no answer (the process was gone).
fn assert_only_transport_errors(scenario: &str, result: &LoadResult) {
    let failed = result.failed();
    assert!(
        !failed.is_empty(),
        "{scenario}: the kill never reached ingest"
    );
    for s in failed {
        assert!(s.outcome.is_err(), "{scenario}: {s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f_fluxroute_kill_9_and_restart_on_kafka() {
    let scenario = "f. fluxroute kill -9 + restart";
    let started = Instant::now();
    let broker = Broker::start(Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let clusters = [("a", &a), ("b", &b)];
    let dir = tempfile::tempdir().unwrap();
    let cfg = kafka_sections(&broker.bootstrap(), &two_clusters(&a.url(), &b.url(), "2s"));
    let (ingest, admin) = (free_port(), free_port());
    let mut fr = FluxrouteProcess::start_on(dir.path(), "fr", &cfg, ingest, admin).await;
    create_database(&fr.url()).await;
    let load = Load::start(LoadSpec::new(&fr.url()), base_ns());
    load.wait_acked(BEFORE_FAULT, Duration::from_secs(30)).await;

    fr.kill9();
    load.wait_failed(3, Duration::from_secs(30)).await;
    let fr = FluxrouteProcess::start_on(dir.path(), "fr", &cfg, ingest, admin).await;
    let fault_end = Instant::now();

    let recovered = recovery(&[&load], &clusters, fault_end)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{scenario}: {e}\nfluxroute log:\n{}\nbroker log:\n{}",
                fr.log(),
                broker.log()
            )
        });
    let at = load.acked_lines();
    load.wait_acked(at + AFTER_FAULT, Duration::from_secs(30))
        .await;
    let result = load.stop().await;
    assert_only_transport_errors(scenario, &result);
    let v = verify(scenario, &result, &clusters).await;
    summarize(scenario, &result, &clusters, &v, recovered, started);
}

/// Two instances share the consumer groups; one is killed with kill -9 and not restarted. The
/// group coordinator expires the dead member after `session.timeout.ms` (6 s) and the survivor
/// takes every partition, delivering what the dead instance had acknowledged; the survivor
/// answers every request meanwhile. Recovery counts from the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn g_one_of_two_instances_killed() {
    let scenario = "g. 1 of 2 instances kill -9";
    let started = Instant::now();
    let broker = Broker::start(Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let clusters = [("a", &a), ("b", &b)];
    let dir = tempfile::tempdir().unwrap();
    let cfg = kafka_sections(&broker.bootstrap(), &two_clusters(&a.url(), &b.url(), "2s"));
    let mut one = FluxrouteProcess::start(dir.path(), "one", &cfg).await;
    let two = FluxrouteProcess::start(dir.path(), "two", &cfg).await;
    create_database(&one.url()).await;
    let base = base_ns();
    let half = |url: &str, first_line: u64| LoadSpec {
        interval: Duration::from_millis(400),
        first_line,
        ..LoadSpec::new(url)
    };
    let load_one = Load::start(half(&one.url(), 0), base);
    let load_two = Load::start(half(&two.url(), 100_000_000), base);
    load_one
        .wait_acked(BEFORE_FAULT / 2, Duration::from_secs(30))
        .await;
    load_two
        .wait_acked(BEFORE_FAULT / 2, Duration::from_secs(30))
        .await;

    one.kill9();
    let killed = Instant::now();
    load_one.wait_failed(3, Duration::from_secs(30)).await;

    let recovered = recovery_without(&[&load_two], &[&load_one], &clusters, killed)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{scenario}: {e}\nkilled instance's log:\n{}\nsurvivor's log:\n{}\nbroker log:\n{}",
                one.log(),
                two.log(),
                broker.log()
            )
        });
    let at = load_two.acked_lines();
    load_two
        .wait_acked(at + AFTER_FAULT / 2, Duration::from_secs(30))
        .await;
    let (r_one, r_two) = (load_one.stop().await, load_two.stop().await);
    assert!(
        r_two.failed().is_empty(),
        "{scenario}: the survivor answered every request: {:?}",
        r_two.statuses()
    );
    assert_only_transport_errors(scenario, &r_one);
    let result = r_one.merge(r_two);
    let v = verify(scenario, &result, &clusters).await;
    summarize(scenario, &result, &clusters, &v, recovered, started);
}

// ---------------------------------------------------------------------------------------------
// Shutdown while the broker does not answer
// ---------------------------------------------------------------------------------------------

/// SIGTERM while the broker hangs (SIGSTOP: connections stay open, nothing answers) and a drain
/// has progress to commit, so its offset commit waits for a group coordinator that never
/// answers: fluxroute exits within its shutdown bound (grace 5 s, plus the 5 s drains get on top
/// of it, plus 1 s for blocking calls) instead of waiting for the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_exits_while_the_broker_hangs() {
    let broker = Broker::start(Storage::Memory);
    let a = Influxd::start().unwrap();
    // The cluster answers slowly, so its write completes after the broker is frozen and the
    // drain then has an offset to commit.
    let proxy = FaultProxy::start(a.http_addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let clusters = cluster_with_timeout("a", &proxy.url(), "10s", "")
        + &cluster_with_timeout("b", &a.url(), "10s", "");
    let cfg = kafka_sections(&broker.bootstrap(), &clusters);
    let mut fr = FluxrouteProcess::start(dir.path(), "fr", &cfg).await;
    create_database(&fr.url()).await;
    let base = base_ns();
    let load = Load::start(
        LoadSpec {
            max_requests: 4,
            ..LoadSpec::new(&fr.url())
        },
        base,
    );
    load.wait_acked(400, Duration::from_secs(30)).await;
    let result = load.stop().await;
    let acked = result.acked();
    // Both clusters got the first lines: the drains are running.
    for c in [&a] {
        wait_until(
            "first lines delivered",
            Duration::from_secs(60),
            async || acked.is_subset(&stored(c)),
        )
        .await;
    }
    proxy.set_mode(Mode::Latency(Duration::from_millis(1500)));
    let more = Load::start(
        LoadSpec {
            max_requests: 2,
            first_line: 1_000_000,
            ..LoadSpec::new(&fr.url())
        },
        base,
    );
    more.wait_acked(200, Duration::from_secs(30)).await;
    let sent_before = proxy.stats().bytes_to_upstream;
    // Wait until the slow write to a is under way, then freeze the broker.
    wait_until(
        "a write to a in flight",
        Duration::from_secs(30),
        async || proxy.stats().bytes_to_upstream > sent_before,
    )
    .await;
    broker.freeze();
    let more = more.stop().await;
    let want = more.acked();
    wait_until("the slow write done", Duration::from_secs(30), async || {
        want.is_subset(&stored(&a))
    })
    .await;
    let t = Instant::now();
    fr.terminate();
    let status = fr.wait_exit(Duration::from_secs(30)).await;
    let took = t.elapsed();
    broker.thaw();
    assert!(
        status.is_some(),
        "fluxroute still running {took:?} after SIGTERM; log:\n{}",
        fr.log()
    );
    println!("exited after {took:?} with {status:?}");
    assert!(took < Duration::from_secs(14), "shutdown took {took:?}");
    // The case was exercised: a request of a drain to the group coordinator (its last offset
    // commit, or leaving the group) got no answer from the frozen broker — given up after its
    // timeout by fluxroute or by librdkafka, or outliving the drains' shutdown bound.
    let log = fr.log();
    assert!(
        log.contains("drains still running after the grace period")
            || (log.contains("committing offsets") && log.contains("no answer within"))
            || (log.contains("REQTMOUT") && log.contains("GroupCoordinator")),
        "no drain request to the group coordinator went unanswered; log:\n{log}"
    );
}
