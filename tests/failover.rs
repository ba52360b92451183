//! Several fluxroute processes in one deployment (one topic, the same consumer groups), as across
//! machines: routers are killed with kill -9 under load, the survivors take over their
//! partitions, and every acknowledged line reaches every cluster.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use fluxroute::loadgen::run;
use support::broker::{Broker, Storage};
use support::influxd::Influxd;
use support::points::{acked, stored};
use support::process::{free_port, FluxrouteProcess};

fn config(broker: &Broker, a: &Influxd, b: &Influxd) -> String {
    config_with_partitions(broker, a, b, 4)
}

fn config_with_partitions(broker: &Broker, a: &Influxd, b: &Influxd, partitions: u32) -> String {
    format!(
        r#"
[queue]
backend = "kafka"
[queue.kafka]
brokers = ["{broker}"]
topic = "writes"
partitions = {partitions}
linger = "1ms"
[queue.kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
"max.poll.interval.ms" = "10000"
[shutdown]
grace = "5s"
[[clusters]]
name = "a"
api = "v1"
endpoints = ["{a}"]
batch_linger = "20ms"
[[clusters]]
name = "b"
api = "v1"
endpoints = ["{b}"]
batch_linger = "20ms"
[[routes]]
databases = ["*"]
clusters = ["a", "b"]
"#,
        broker = broker.bootstrap(),
        a = a.url(),
        b = b.url(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn survivor_takes_over_when_an_instance_is_killed() {
    let broker = Broker::start(Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut one = FluxrouteProcess::start(dir.path(), "one", &config(&broker, &a, &b)).await;
    let two = FluxrouteProcess::start(dir.path(), "two", &config(&broker, &a, &b)).await;

    // Load on both instances; one is killed mid-run (its in-flight requests fail: not acked).
    let heavy = [
        "--create-database",
        "--batch-size",
        "500",
        "--connections",
        "2",
        "--rate",
        "3000",
    ];
    let run_on = |url: String, file: &str| load(url, &dir.path().join(file), 6, &heavy);
    let load_one = run_on(one.url(), "one.lp");
    let load_two = run_on(two.url(), "two.lp");
    tokio::time::sleep(Duration::from_secs(2)).await;
    one.kill9();
    let (r1, r2) = (load_one.await.unwrap(), load_two.await.unwrap());
    assert_eq!(
        r2.requests_failed, 0,
        "the survivor answered every request: {r2}"
    );
    assert!(r1.lines_acked > 0, "{r1}");

    let mut want = acked(&dir.path().join("one.lp"));
    want.extend(acked(&dir.path().join("two.lp")));
    assert_eq!(want.len() as u64, r1.lines_acked + r2.lines_acked);
    for cluster in [&a, &b] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let have = stored(cluster, "metrics");
            if want.is_subset(&have) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: {} acknowledged points missing; killed log:\n{}\nsurvivor log:\n{}",
                cluster.url(),
                want.difference(&have).count(),
                one.log(),
                two.log()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Loadgen against `url` for `secs` into database `metrics` (20 hosts), recording what was
/// acknowledged in `record`; `options` adds to or overrides loadgen's defaults.
fn load(
    url: String,
    record: &std::path::Path,
    secs: u32,
    options: &[&str],
) -> tokio::task::JoinHandle<fluxroute::loadgen::Report> {
    let duration = format!("{secs}s");
    let mut args = vec![
        "loadgen",
        "--url",
        &url,
        "--db",
        "metrics",
        "--hosts",
        "20",
        "--duration",
        &duration,
        "--quiet",
        "--record-acked",
        record.to_str().unwrap(),
    ];
    args.extend_from_slice(options);
    let args = support::loadgen_args(args);
    tokio::spawn(async move { run(&args).await.unwrap() })
}

/// Three routers on one topic of 12 partitions delivering to two clusters: kill -9 one, then a
/// second (the last one holds every partition), then restart both on their ports, all under
/// load on every router. Every acknowledged line reaches both clusters.
///
/// Three producers write into the same partitions at once here, which is what once exposed the
/// test broker skipping a batch still being stored (29 of 72,000 points in 1 of 23 runs; see
/// the README's broker differences and scripts/broker/).
#[tokio::test(flavor = "multi_thread")]
async fn three_routers_two_killed_then_restarted() {
    let broker = Broker::start(Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with_partitions(&broker, &a, &b, 12);
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let mut routers = Vec::new();
    for (i, &(ingest, admin)) in ports.iter().enumerate() {
        routers.push(
            FluxrouteProcess::start_on(dir.path(), &format!("r{i}"), &cfg, ingest, admin).await,
        );
    }
    support::http_client()
        .post(format!("{}/query", routers[0].url()))
        .query(&[("q", "CREATE DATABASE metrics")])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    // The fault schedule (times, not waits for outcomes): loads run 16 s on every router; r0 is
    // killed at 3 s, r1 at 6 s, both come back at 10 s on their ports.
    let records: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("r{i}.lp")))
        .collect();
    let loads: Vec<_> = (0..3)
        .map(|i| {
            let light = [
                "--batch-size",
                "200",
                "--connections",
                "1",
                "--rate",
                "2000",
            ];
            load(routers[i].url(), &records[i], 16, &light)
        })
        .collect();
    let t0 = tokio::time::Instant::now();
    tokio::time::sleep_until(t0 + Duration::from_secs(3)).await;
    routers[0].kill9();
    tokio::time::sleep_until(t0 + Duration::from_secs(6)).await;
    routers[1].kill9();
    tokio::time::sleep_until(t0 + Duration::from_secs(10)).await;
    for i in 0..2 {
        let (ingest, admin) = ports[i];
        routers[i] =
            FluxrouteProcess::start_on(dir.path(), &format!("r{i}-again"), &cfg, ingest, admin)
                .await;
    }
    let mut reports = Vec::new();
    for l in loads {
        reports.push(l.await.unwrap());
    }
    assert_eq!(
        reports[2].requests_failed, 0,
        "the router never killed answered every request: {}",
        reports[2]
    );
    for (i, r) in reports.iter().enumerate() {
        assert!(r.lines_acked > 0, "router {i} acknowledged nothing: {r}");
    }
    let mut want = std::collections::BTreeSet::new();
    for rec in &records {
        want.extend(acked(rec));
    }
    let total: u64 = reports.iter().map(|r| r.lines_acked).sum();
    assert_eq!(want.len() as u64, total);
    for cluster in [&a, &b] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let have = stored(cluster, "metrics");
            if want.is_subset(&have) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                // Whether the same lines are missing everywhere tells a record lost in the
                // queue from one a drain skipped (one cluster).
                let missing: Vec<String> = [&a, &b]
                    .iter()
                    .map(|c| {
                        let have = stored(c, "metrics");
                        let m: Vec<&String> = want.difference(&have).collect();
                        format!(
                            "{}: {} missing, e.g. {:?}",
                            c.url(),
                            m.len(),
                            &m[..m.len().min(3)]
                        )
                    })
                    .collect();
                panic!(
                    "acknowledged points missing after 120 s: {missing:?}; router logs:\n{}",
                    routers
                        .iter()
                        .map(|r| r.log())
                        .collect::<Vec<_>>()
                        .join("\n----\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
