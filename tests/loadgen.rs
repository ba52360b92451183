//! `fluxroute loadgen` against a real `influxd` and through fluxroute into the broker.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use fluxroute::loadgen::run;
use support::broker::{Broker, Storage};
use support::fluxroute::Fluxroute;
use support::influxd::Influxd;

fn client() -> reqwest::Client {
    support::http_client()
}

/// `SELECT count(*)` for one measurement: every point has every field, so any field's count is
/// the number of points.
async fn count_points(url: &str, db: &str, measurement: &str) -> u64 {
    let q = format!("SELECT count(*) FROM {measurement}");
    let bytes = client()
        .get(format!("{url}/query"))
        .query(&[("db", db), ("q", &q)])
        .send()
        .await
        .expect("query influxd")
        .bytes()
        .await
        .expect("read query response");
    let body: serde_json::Value = serde_json::from_slice(&bytes).expect("query response is JSON");
    let series = &body["results"][0]["series"];
    if series.is_null() {
        return 0;
    }
    let values = series[0]["values"][0]
        .as_array()
        .unwrap_or_else(|| panic!("no values: {body}"));
    // values[0] is the time column; the rest are per-field counts, all equal.
    let counts: Vec<u64> = values[1..]
        .iter()
        .map(|v| v.as_u64().expect("count is an integer"))
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "{measurement}: {body}"
    );
    counts[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_points_are_exactly_what_influxd_holds() {
    let influxd = Influxd::start().expect("influxd");
    let recorded = influxd.dir().join("acked.lp");
    let url = format!("http://{}", influxd.http_addr());
    let args = support::loadgen_args([
        "loadgen",
        "--url",
        &url,
        "--db",
        "lg",
        "--create-database",
        "--max-lines",
        "20000",
        "--batch-size",
        "1000",
        "--connections",
        "2",
        "--hosts",
        "50",
        "--duration",
        "60s",
        "--quiet",
        "--record-acked",
        recorded.to_str().unwrap(),
    ]);

    let report = run(&args).await.unwrap();
    println!("{report}");
    assert_eq!(report.lines_acked, 20_000, "{report}");
    assert_eq!(report.lines_failed, 0, "{report}");
    assert_eq!(report.requests_ok, 20);
    assert_eq!(report.status_counts.get(&204), Some(&20));
    assert!(report.latency_p50 > Duration::ZERO);

    let mut total = 0;
    for measurement in ["cpu", "mem", "disk"] {
        let n = count_points(&url, "lg", measurement).await;
        println!("{measurement}: {n} points");
        total += n;
    }
    assert_eq!(total, report.lines_acked);

    let text = std::fs::read_to_string(&recorded).unwrap();
    assert_eq!(text.lines().count() as u64, report.lines_acked);
    let distinct: std::collections::HashSet<(&str, &str)> = text
        .lines()
        .map(|l| (l.split_once(' ').unwrap().0, l.rsplit_once(' ').unwrap().1))
        .collect();
    assert_eq!(distinct.len() as u64, report.lines_acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_counted_not_retried() {
    let influxd = Influxd::start().expect("influxd");
    let url = format!("http://{}", influxd.http_addr());
    // No --create-database: influxd answers 404 "database not found".
    let args = support::loadgen_args([
        "loadgen",
        "--url",
        &url,
        "--db",
        "missing",
        "--max-lines",
        "300",
        "--batch-size",
        "100",
        "--connections",
        "1",
        "--gzip",
        "--quiet",
    ]);
    let report = run(&args).await.unwrap();
    assert_eq!(report.lines_acked, 0, "{report}");
    assert_eq!(report.lines_failed, 300, "{report}");
    assert_eq!(report.requests_failed, 3);
    assert_eq!(report.status_counts.get(&404), Some(&3), "{report}");
    let err = report.first_error.unwrap();
    assert!(err.contains("database not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_writes_through_fluxroute_v1_and_v2() {
    let broker = Broker::start(Storage::Memory);
    let fr = Fluxroute::start(&support::config::kafka_ingest_only(
        &broker.bootstrap(),
        2,
        &["lg"],
    ))
    .await;
    for api in ["v1", "v2"] {
        let args = support::loadgen_args([
            "loadgen",
            "--url",
            &fr.url(),
            "--api",
            api,
            "--db",
            "lg",
            "--max-lines",
            "5000",
            "--batch-size",
            "500",
            "--connections",
            "2",
            "--duration",
            "60s",
            "--quiet",
            "--gzip",
        ]);
        let report = run(&args).await.unwrap();
        assert_eq!(report.lines_acked, 5000, "{api}: {report}");
        assert_eq!(report.requests_failed, 0, "{api}: {report}");
    }
    let metrics = fr.admin_text("/metrics").await;
    assert!(
        metrics.contains("fluxroute_ingest_lines_total{outcome=\"accepted\"} 10000"),
        "{metrics}"
    );
}
