//! Several fluxroute processes in one deployment (one topic, the same consumer groups), as across
//! machines: routers are killed with kill -9 under load, the survivors take over their
//! partitions, and every acknowledged line reaches every cluster.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use fluxroute::loadgen::{run, LoadgenArgs};
use support::broker::{Broker, Storage};
use support::config::Setup;
use support::influxd::Influxd;
use support::points::{acked, stored};
use support::process::{free_port, FluxrouteProcess};

fn config(broker: &Broker, a: &Influxd, b: &Influxd) -> String {
    config_with_partitions(broker, a, b, 4)
}

fn config_with_partitions(broker: &Broker, a: &Influxd, b: &Influxd, partitions: u32) -> String {
    Setup::kafka(&broker.bootstrap())
        .partitions(partitions)
        .cluster("a", &a.url())
        .cluster("b", &b.url())
        .route(&["*"], &["a", "b"])
        .toml()
}

#[tokio::test(flavor = "multi_thread")]
async fn survivor_takes_over_when_an_instance_is_killed() {
    let broker = Broker::start(Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut one = FluxrouteProcess::start(dir.path(), "one", &config(&broker, &a, &b)).await;
    let two = FluxrouteProcess::start(dir.path(), "two", &config(&broker, &a, &b)).await;

    // Load on both instances; one is killed mid-run (its in-flight requests fail: not acked).
    let run_on = |url: String, file: &str| {
        load(LoadgenArgs {
            batch_size: 500,
            rate: Some(3000),
            duration: support::seconds(6),
            ..support::load(&url, Some(&dir.path().join(file)))
        })
    };
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

/// Runs `args` beside the test; 20 hosts.
fn load(args: LoadgenArgs) -> tokio::task::JoinHandle<fluxroute::loadgen::Report> {
    let args = LoadgenArgs { hosts: 20, ..args };
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
            load(LoadgenArgs {
                connections: 1,
                rate: Some(2000),
                duration: support::seconds(16),
                create_database: false,
                ..support::load(&routers[i].url(), Some(&records[i]))
            })
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
