//! Two fluxroute processes in one deployment (same consumer groups): kill -9 one under load; the
//! survivor takes over its partitions and every acknowledged line reaches every cluster.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use fluxroute::loadgen::run;
use support::broker::{Broker, Storage};
use support::influxd::Influxd;
use support::points::{acked, stored};
use support::process::FluxrouteProcess;

fn config(broker: &Broker, a: &Influxd, b: &Influxd) -> String {
    format!(
        r#"
[queue]
backend = "kafka"
[queue.kafka]
brokers = ["{broker}"]
topic = "writes"
partitions = 4
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
    let run_on = |url: String, file: &str| {
        let record = dir.path().join(file);
        let args = support::loadgen_args([
            "loadgen",
            "--url",
            &url,
            "--db",
            "metrics",
            "--create-database",
            "--batch-size",
            "500",
            "--connections",
            "2",
            "--hosts",
            "20",
            "--rate",
            "3000",
            "--duration",
            "6s",
            "--quiet",
            "--record-acked",
            record.to_str().unwrap(),
        ]);
        tokio::spawn(async move { run(&args).await.unwrap() })
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
