//! fluxroute on the embedded queue, end to end with real `influxd` clusters: kill -9 under load
//! (repeatedly) loses no acknowledged line, and an exhausted disk budget answers 503 without
//! losing anything, then recovers.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use fluxroute::loadgen::{run, LoadgenArgs};
use support::config::Setup;
use support::fluxroute::Fluxroute;
use support::influxd::Influxd;
use support::points::{acked, stored, wait_for_points};
use support::process::FluxrouteProcess;

fn config(queue_dir: &Path, a: &Influxd, b: &Influxd, extra_queue: &str) -> String {
    Setup::embedded(queue_dir)
        .partitions(4)
        .queue_line(extra_queue)
        .cluster("a", &a.url())
        .cluster("b", &b.url())
        .route(&["*"], &["a", "b"])
        .toml()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_under_load_loses_no_acknowledged_line() {
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir.path().join("queue"), &a, &b, "");
    let mut want = BTreeSet::new();
    let (ingest, admin) = (support::process::free_port(), support::process::free_port());
    for round in 0..5 {
        let mut fr = FluxrouteProcess::start_on(dir.path(), "fr", &cfg, ingest, admin).await;
        let record = dir.path().join(format!("acked-{round}.lp"));
        let args = LoadgenArgs {
            connections: 4,
            duration: support::seconds(3),
            ..support::load(&fr.url(), Some(&record))
        };
        let load = tokio::spawn(async move { run(&args).await.unwrap() });
        // Kill at a different moment each round, while requests are in flight.
        tokio::time::sleep(Duration::from_millis(700 + 300 * round)).await;
        fr.kill9();
        let report = load.await.unwrap();
        assert!(report.lines_acked > 0, "round {round}: {report}");
        let round_acked = acked(&record);
        assert_eq!(
            round_acked.len() as u64,
            report.lines_acked,
            "round {round}"
        );
        want.extend(round_acked);
    }
    // The store opens after every kill; the last start delivers whatever is left.
    let fr = FluxrouteProcess::start_on(dir.path(), "fr", &cfg, ingest, admin).await;
    for cluster in [&a, &b] {
        // Lines enqueued but not acknowledged before a kill may also arrive: a superset is fine.
        wait_for_points(cluster, "metrics", &want, true, Duration::from_secs(120)).await;
    }
    drop(fr);
}

#[tokio::test(flavor = "multi_thread")]
async fn exhausted_disk_budget_answers_503_and_recovers() {
    let (a, mut b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let budget =
        "[queue.embedded.retention]\npolicy = \"keep-until-delivered\"\nmax_bytes = 200000";
    let fr = Fluxroute::start(&config(&dir.path().join("queue"), &a, &b, budget)).await;
    let http = support::http_client();
    // With b down, nothing is committed by both groups: the log only grows.
    b.kill();
    let mut accepted = BTreeSet::new();
    let mut refused = 0;
    // Values that do not compress (the ingest stores records gzip-compressed).
    let mut noise = 0x9e37_79b9_7f4a_7c15u64;
    let mut hex = move || {
        (0..3)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                format!("{noise:016x}")
            })
            .collect::<String>()
    };
    for i in 0..2000 {
        let mut body = String::new();
        let mut lines = Vec::new();
        for j in 0..20 {
            let t = 1_000_000 + i * 100 + j;
            body.push_str(&format!("budget,host=h{j} value=\"{}\" {t}\n", hex()));
            lines.push(format!("budget,host=h{j} {t}"));
        }
        let r = http
            .post(format!("{}/write?db=d", fr.url()))
            .body(body)
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            204 => accepted.extend(lines),
            503 => {
                assert!(r.headers().contains_key("Retry-After"));
                refused += 1;
                if refused >= 3 {
                    break;
                }
            }
            s => panic!("unexpected {s}: {}", r.text().await.unwrap()),
        }
    }
    assert!(refused >= 3, "the budget never filled");
    assert!(!accepted.is_empty());
    // Space returns once b is back and both groups commit: writes go through again.
    b.restart().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = http
            .post(format!("{}/write?db=d", fr.url()))
            .body("budget,host=late value=\"ok\" 5\n")
            .send()
            .await
            .unwrap();
        if r.status() == 204 {
            accepted.insert("budget,host=late 5".to_owned());
            break;
        }
        assert_eq!(r.status(), 503);
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes never resumed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for cluster in [&a, &b] {
        wait_for_points(cluster, "d", &accepted, false, Duration::from_secs(60)).await;
    }
    assert_eq!(stored(&a, "d"), accepted);
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_queue_metrics_are_exported_and_documented() {
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let budget = "[queue.embedded.retention]\nmax_bytes = 5000000";
    let fr = Fluxroute::start(&config(&dir.path().join("queue"), &a, &b, budget)).await;
    let http = support::http_client();
    let r = http
        .post(format!("{}/write?db=d", fr.url()))
        .body("m,host=a v=1 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let text = fr.admin_text("/metrics").await;
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let section = &doc[doc
        .find("## Embedded queue catalogue")
        .expect("embedded section")..];
    for family in [
        "fluxroute_queue_stored_bytes",
        "fluxroute_queue_records",
        "fluxroute_queue_oldest_record_age_seconds",
        "fluxroute_queue_retention_dropped_records_total",
        "fluxroute_queue_budget_bytes",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} not exported:\n{text}"
        );
        assert!(
            section.contains(&format!("| `{family}` |")),
            "{family} not documented"
        );
    }
    assert!(
        text.contains("fluxroute_queue_budget_bytes 5000000"),
        "{text}"
    );
    assert!(text.contains("fluxroute_build_info{version="), "{text}");
    fr.stop().await.unwrap();
}
