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

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::broker::{Broker, Options, Storage};
use support::config::{cluster_with_timeout, Setup};
use support::faultproxy::{FaultProxy, Mode};
use support::fluxroute::Fluxroute;
use support::influxd::Influxd;
use support::process::{free_port, FluxrouteProcess};
use support::wait_until;

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

#[path = "faults/load.rs"]
mod load;
use load::{base_ns, Load, LoadResult, LoadSpec};

#[path = "faults/verify.rs"]
mod verify;
use verify::*;

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
