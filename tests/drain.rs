//! Drains against real `influxd` clusters and a real Kafka-protocol broker: replication, outages
//! (kill -9 and SIGSTOP), dead letters, 413 splits, DDL in log order, refused credentials.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use fluxroute::loadgen::{run, LoadgenArgs};
use fluxroute::queue::kafka::{dead_letter_topic, KafkaConsumerGroup, KafkaSettings};
use fluxroute::queue::{ConsumerGroup, Event};
use support::broker::{Broker, Storage};
use support::config::Setup;
use support::fluxroute::Fluxroute;
use support::influxd::{Influxd, Options};
use support::points::{acked, stored};

const TOPIC: &str = "writes";
/// Partitions of the writes topic in every test here.
const PARTITIONS: i32 = 4;

/// A cluster entry for the test config.
fn cluster(name: &str, influxd: &Influxd, extra: &str) -> String {
    support::config::cluster(name, &influxd.url(), extra)
}

fn config(broker: &Broker, clusters: &str, route_clusters: &[&str]) -> String {
    Setup::kafka(&broker.bootstrap())
        .topic(TOPIC)
        .partitions(PARTITIONS as u32)
        .section("[ingest]\nenqueue_timeout = \"5s\"")
        .cluster_toml(clusters)
        .route(&["*"], route_clusters)
        .toml()
}

async fn wait_for_points(influxd: &Influxd, db: &str, want: &BTreeSet<String>, within: Duration) {
    support::points::wait_for_points(influxd, db, want, false, within).await;
}

/// Load into database `metrics` in 500-line batches from 20 hosts.
fn loadgen(url: &str, record: &Path) -> LoadgenArgs {
    LoadgenArgs {
        batch_size: 500,
        hosts: 20,
        ..support::load(url, Some(record))
    }
}

async fn metric(fr: &Fluxroute, prefix: &str) -> Option<f64> {
    fr.metric(prefix).await
}

async fn wait_metric(fr: &Fluxroute, prefix: &str, want: f64, within: Duration) {
    fr.wait_metric(prefix, want, within).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clusters_receive_every_point() {
    let broker = Broker::start(Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let clusters = cluster("a", &a, "") + &cluster("b", &b, "");
    let fr = Fluxroute::start(&config(&broker, &clusters, &["a", "b"])).await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("acked.lp");
    let report = run(&LoadgenArgs {
        max_lines: Some(20_000),
        duration: support::seconds(60),
        ..loadgen(&fr.url(), &record)
    })
    .await
    .unwrap();
    assert_eq!(report.lines_acked, 20_000, "{report}");
    let want = acked(&record);
    assert_eq!(want.len(), 20_000);
    wait_for_points(&a, "metrics", &want, Duration::from_secs(90)).await;
    wait_for_points(&b, "metrics", &want, Duration::from_secs(90)).await;
    wait_metric(
        &fr,
        "fluxroute_drain_lines_written_total{cluster=\"a\"}",
        20_000.0,
        Duration::from_secs(10),
    )
    .await;
    fr.stop().await.unwrap();
}

/// Shared body of the outage tests: load, take cluster b out, bring it back, compare.
async fn outage(freeze: bool) {
    let broker = Broker::start(Storage::Memory);
    let (a, mut b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let clusters = cluster("a", &a, "") + &cluster("b", &b, "");
    let fr = Fluxroute::start(&config(&broker, &clusters, &["a", "b"])).await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("acked.lp");
    let args = LoadgenArgs {
        duration: support::seconds(6),
        rate: Some(4000),
        ..loadgen(&fr.url(), &record)
    };
    let load = tokio::spawn(async move { run(&args).await.unwrap() });

    tokio::time::sleep(Duration::from_millis(1500)).await;
    if freeze {
        b.freeze();
    } else {
        b.kill();
    }
    wait_metric(
        &fr,
        "fluxroute_cluster_up{cluster=\"b\"}",
        0.0,
        Duration::from_secs(15),
    )
    .await;
    let report = load.await.unwrap();
    // Ingest never noticed: every request was acknowledged.
    assert_eq!(report.requests_failed, 0, "{report}");
    let want = acked(&record);
    assert_eq!(want.len() as u64, report.lines_acked);
    // The healthy cluster kept up while b was out.
    wait_for_points(&a, "metrics", &want, Duration::from_secs(60)).await;
    assert!(metric(&fr, "fluxroute_drain_lag_records{cluster=\"b\"}")
        .await
        .is_some());

    if freeze {
        b.thaw();
    } else {
        b.restart().unwrap();
    }
    wait_for_points(&b, "metrics", &want, Duration::from_secs(90)).await;
    wait_metric(
        &fr,
        "fluxroute_cluster_up{cluster=\"b\"}",
        1.0,
        Duration::from_secs(15),
    )
    .await;
    wait_metric(
        &fr,
        "fluxroute_drain_lag_records{cluster=\"b\"}",
        0.0,
        Duration::from_secs(30),
    )
    .await;
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_cluster_replays_exactly_what_it_missed() {
    outage(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hung_cluster_is_detected_by_timeouts_and_catches_up() {
    outage(true).await;
}

async fn write(fr: &Fluxroute, db: &str, body: &str) {
    let r = support::http_client()
        .post(format!("{}/write?db={db}", fr.url()))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
}

/// Waits until consumer group `group` has committed every record in the writes topic (each
/// partition's committed position at its high watermark).
async fn wait_committed_everything(broker: &Broker, group: &str, within: Duration) {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .create()
        .expect("a Kafka client");
    let probe = async || {
        let mut behind = Vec::new();
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition(TOPIC, p);
        }
        let committed = consumer.committed_offsets(tpl, Duration::from_secs(10));
        for p in 0..PARTITIONS {
            let high = consumer
                .fetch_watermarks(TOPIC, p, Duration::from_secs(10))
                .map_or(-1, |w| w.1);
            let at = committed
                .as_ref()
                .ok()
                .and_then(|c| c.find_partition(TOPIC, p))
                .map(|e| e.offset());
            if high != 0 && at != Some(Offset::Offset(high)) {
                behind.push((p, at, high));
            }
        }
        if behind.is_empty() {
            Ok(())
        } else {
            Err(format!("(partition, committed, high) {behind:?}"))
        }
    };
    let what = format!("group {group} committed every record");
    support::poll_until(&what, within, Duration::from_millis(200), probe).await;
}

fn kafka_settings(broker: &Broker) -> KafkaSettings {
    KafkaSettings {
        brokers: vec![broker.bootstrap()],
        topic: TOPIC.into(),
        partitions: PARTITIONS as u32,
        replication_factor: 1,
        max_record_bytes: 1_000_000,
        linger: Duration::from_millis(1),
        produce_timeout: Duration::from_secs(5),
        properties: Default::default(),
        client_metrics: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_field_type_conflict_is_dead_lettered_and_later_batches_flow() {
    let broker = Broker::start(Storage::Memory);
    let a = Influxd::start().unwrap();
    a.query("CREATE DATABASE d").unwrap();
    // The cluster's own refusal is under test: no schema views, which would answer the
    // conflict at the ingest (tests/schema.rs).
    let toml = format!(
        "{}\n[schema]\nenabled = false\n",
        config(&broker, &cluster("a", &a, ""), &["a"])
    );
    let fr = Fluxroute::start(&toml).await;
    write(&fr, "d", "m,host=x v=1i 1000\n").await;
    wait_for_points(
        &a,
        "d",
        &BTreeSet::from(["m,host=x 1000".to_owned()]),
        Duration::from_secs(30),
    )
    .await;
    write(&fr, "d", "m,host=x v=1.5 2000\n").await;
    write(&fr, "d", "m,host=x v=3i 3000\n").await;
    let want = BTreeSet::from(["m,host=x 1000".to_owned(), "m,host=x 3000".to_owned()]);
    wait_for_points(&a, "d", &want, Duration::from_secs(30)).await;

    wait_metric(
        &fr,
        "fluxroute_drain_dead_letters_total{cluster=\"a\",reason=\"field_type_conflict\"}",
        1.0,
        Duration::from_secs(30),
    )
    .await;
    // The dead letter carries the lines and the cluster's reason.
    let mut settings = kafka_settings(&broker);
    settings.topic = dead_letter_topic(TOPIC);
    let consumer = KafkaConsumerGroup::join(&settings, "dlq-reader").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let record = loop {
        assert!(tokio::time::Instant::now() < deadline, "no dead letter");
        // The topic may not be visible to a brand-new consumer at once: errors are retried.
        let evs = consumer
            .poll(10, Duration::from_millis(500))
            .await
            .unwrap_or_default();
        // Dead letters have their own headers; the writes-topic decoder reports them undecodable.
        if let Some(ev) = evs
            .into_iter()
            .find(|e| matches!(e, Event::Undecodable { .. }))
        {
            break ev;
        }
    };
    let Event::Undecodable { payload, .. } = record else {
        unreachable!()
    };
    // The whole refused batch is kept (it may hold lines the cluster took: replaying them is
    // harmless), and it holds the conflicting line.
    let text = String::from_utf8(payload.to_vec()).unwrap();
    assert!(text.lines().any(|l| l == "m,host=x v=1.5 2000"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_too_large_for_a_cluster_are_split() {
    let broker = Broker::start(Storage::Memory);
    let a = Influxd::start_with(&Options {
        max_body_size: Some(1500),
        ..Options::default()
    })
    .unwrap();
    a.query("CREATE DATABASE d").unwrap();
    let fr = Fluxroute::start(&config(&broker, &cluster("a", &a, "gzip = false"), &["a"])).await;
    let mut body = String::new();
    let mut want = BTreeSet::new();
    for i in 0..300 {
        body.push_str(&format!("big,host=h{i} value=1 {}\n", 1_000_000 + i));
        want.insert(format!("big,host=h{i} {}", 1_000_000 + i));
    }
    write(&fr, "d", &body).await;
    wait_for_points(&a, "d", &want, Duration::from_secs(60)).await;
    // Every reason class's series exists from start-up, all still at 0.
    assert_eq!(
        fr.metric_sum("fluxroute_drain_dead_letters_total").await,
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn databases_are_created_in_log_order_and_on_first_404() {
    let broker = Broker::start(Storage::Memory);
    let (a, mut b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let clusters = cluster("a", &a, "") + &cluster("b", &b, "");
    let fr = Fluxroute::start(&config(&broker, &clusters, &["a", "b"])).await;
    b.kill();
    wait_metric(
        &fr,
        "fluxroute_cluster_up{cluster=\"b\"}",
        0.0,
        Duration::from_secs(15),
    )
    .await;
    let r = support::http_client()
        .post(format!("{}/query", fr.url()))
        .form(&[("q", "CREATE DATABASE fresh")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    write(&fr, "fresh", "cpu,host=a v=1 10\n").await;
    let want = BTreeSet::from(["cpu,host=a 10".to_owned()]);
    wait_for_points(&a, "fresh", &want, Duration::from_secs(30)).await;
    b.restart().unwrap();
    wait_for_points(&b, "fresh", &want, Duration::from_secs(60)).await;

    // No CREATE DATABASE at all: the first 404 creates it.
    write(&fr, "never_created", "cpu,host=b v=2 20\n").await;
    let want = BTreeSet::from(["cpu,host=b 20".to_owned()]);
    wait_for_points(&a, "never_created", &want, Duration::from_secs(30)).await;
    wait_for_points(&b, "never_created", &want, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_pause_one_cluster_without_dead_letters() {
    let broker = Broker::start(Storage::Memory);
    let a = Influxd::start().unwrap();
    let b = Influxd::start_with(&Options {
        auth_enabled: true,
        ..Options::default()
    })
    .unwrap();
    b.query("CREATE USER admin WITH PASSWORD 'right' WITH ALL PRIVILEGES")
        .unwrap();
    let creds = |pw: &str| format!("username = \"admin\"\npassword = \"${{B_PASSWORD}}\"\n# {pw}");
    let clusters = |pw: &str| cluster("a", &a, "") + &cluster("b", &b, &creds(pw));
    let env = |pw: &str| HashMap::from([("B_PASSWORD".to_owned(), pw.to_owned())]);

    let fr = Fluxroute::start_with_env(
        &config(&broker, &clusters("wrong"), &["a", "b"]),
        &env("wrong"),
    )
    .await;
    write(&fr, "d", "cpu,host=a v=1 10\ncpu,host=b v=1 20\n").await;
    let want = BTreeSet::from(["cpu,host=a 10".to_owned(), "cpu,host=b 20".to_owned()]);
    wait_for_points(&a, "d", &want, Duration::from_secs(30)).await;
    wait_metric(
        &fr,
        "fluxroute_cluster_misconfigured{cluster=\"b\"}",
        1.0,
        Duration::from_secs(30),
    )
    .await;
    // Every reason class's series exists from start-up, all still at 0.
    assert_eq!(
        fr.metric_sum("fluxroute_drain_dead_letters_total").await,
        Some(0.0)
    );
    fr.stop().await.unwrap();

    // Fixed credentials (a restart): b gets everything it missed.
    let fr = Fluxroute::start_with_env(
        &config(&broker, &clusters("right"), &["a", "b"]),
        &env("right"),
    )
    .await;
    let backlog = async || {
        let resp = b
            .request(
                "GET",
                "/query?db=d&epoch=ns&u=admin&p=right&q=SELECT%20*%20FROM%20cpu%20GROUP%20BY%20*",
                &[],
            )
            .unwrap();
        let text = resp.text();
        if text.contains("\"host\":\"a\"") && text.contains("\"host\":\"b\"") {
            Ok(())
        } else {
            Err(text)
        }
    };
    let (within, every) = (Duration::from_secs(60), Duration::from_millis(250));
    support::poll_until("b received the backlog", within, every, backlog).await;
    fr.stop().await.unwrap();
}

fn lines(prefix: &str, range: std::ops::Range<i64>) -> (String, BTreeSet<String>) {
    let mut body = String::new();
    let mut set = BTreeSet::new();
    for i in range {
        body.push_str(&format!(
            "{prefix},host=h{} v={i} {}\n",
            i % 7,
            1_000_000 + i
        ));
        set.insert(format!("{prefix},host=h{} {}", i % 7, 1_000_000 + i));
    }
    (body, set)
}

#[tokio::test(flavor = "multi_thread")]
async fn standby_takes_a_down_clusters_writes_until_it_recovers() {
    let broker = Broker::start(Storage::Memory);
    let (mut a, s) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let clusters =
        cluster("a", &a, "standby = \"s\"\nreroute_after = \"1s\"") + &cluster("s", &s, "");
    let fr = Fluxroute::start(&config(&broker, &clusters, &["a"])).await;

    let (body1, set1) = lines("before", 0..200);
    write(&fr, "d", &body1).await;
    wait_for_points(&a, "d", &set1, Duration::from_secs(30)).await;
    // The reroute starts from a's committed positions: the standby takes nothing from before the
    // outage only once a has committed every record it delivered (a commit still in flight when
    // a goes down is redelivered, to the standby: at least once).
    wait_committed_everything(
        &broker,
        &fluxroute::drain::group_name("a"),
        Duration::from_secs(30),
    )
    .await;

    a.kill();
    wait_metric(
        &fr,
        "fluxroute_cluster_reroute_active{cluster=\"a\"}",
        1.0,
        Duration::from_secs(20),
    )
    .await;
    let (body2, set2) = lines("during", 0..300);
    write(&fr, "d", &body2).await;
    // The standby gets the down cluster's writes (and nothing from before the outage).
    wait_for_points(&s, "d", &set2, Duration::from_secs(30)).await;

    a.restart().unwrap();
    let everything: BTreeSet<String> = set1.union(&set2).cloned().collect();
    wait_for_points(&a, "d", &everything, Duration::from_secs(60)).await;
    wait_metric(
        &fr,
        "fluxroute_cluster_reroute_active{cluster=\"a\"}",
        0.0,
        Duration::from_secs(20),
    )
    .await;

    // Rerouting stopped: new writes go to the primary only.
    let (body3, set3) = lines("after", 0..50);
    write(&fr, "d", &body3).await;
    let all: BTreeSet<String> = everything.union(&set3).cloned().collect();
    wait_for_points(&a, "d", &all, Duration::from_secs(30)).await;
    assert_eq!(stored(&s, "d"), set2);
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn rebalancing_under_load_loses_nothing() {
    let broker = Broker::start(Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let clusters = cluster("a", &a, "") + &cluster("b", &b, "");
    let cfg = config(&broker, &clusters, &["a", "b"]);
    let one = Fluxroute::start(&cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("acked.lp");
    let args = LoadgenArgs {
        duration: support::seconds(5),
        rate: Some(4000),
        ..loadgen(&one.url(), &record)
    };
    let load = tokio::spawn(async move { run(&args).await.unwrap() });
    // A second instance joins (partitions are split: the first one's drains get Revoked with
    // work in flight), then leaves again (they get everything back).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let two = Fluxroute::start(&cfg).await;
    tokio::time::sleep(Duration::from_millis(1800)).await;
    two.stop().await.unwrap();
    let report = load.await.unwrap();
    assert_eq!(report.requests_failed, 0, "{report}");
    let want = acked(&record);
    for cluster in [&a, &b] {
        wait_for_points(cluster, "metrics", &want, Duration::from_secs(90)).await;
    }
    wait_metric(
        &one,
        "fluxroute_drain_lag_records{cluster=\"a\"}",
        0.0,
        Duration::from_secs(30),
    )
    .await;
    one.stop().await.unwrap();
}

/// The drain's own status of cluster `name` from `/admin/v1/status`.
async fn drain_status(fr: &Fluxroute, name: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&fr.admin_text("/admin/v1/status").await).unwrap();
    v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["drain"].clone())
        .unwrap()
}

/// Waits (30 s at most) until the drain status of cluster `name` satisfies `ok`.
async fn wait_drain(
    fr: &Fluxroute,
    name: &str,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) {
    let probe = async || {
        let status = drain_status(fr, name).await;
        if ok(&status) {
            Ok(())
        } else {
            Err(status)
        }
    };
    let (within, every) = (Duration::from_secs(30), Duration::from_millis(100));
    support::poll_until(what, within, every, probe).await;
}

async fn admin_post(fr: &Fluxroute, path: &str) {
    let r = support::http_client()
        .post(format!("{}{path}", fr.admin_url()))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "{path}: {}",
        r.text().await.unwrap()
    );
}

/// A replay asked for a time after records the cluster has not received yet (here: while an
/// operator paused it) never skips them: the drain reads on from its committed position.
#[tokio::test(flavor = "multi_thread")]
async fn a_replay_never_skips_records_not_delivered_yet() {
    let broker = Broker::start(Storage::Memory);
    let a = Influxd::start().unwrap();
    a.query("CREATE DATABASE d").unwrap();
    let fr = Fluxroute::start(&config(&broker, &cluster("a", &a, ""), &["a"])).await;
    let first: String = (0..50).map(|i| format!("m v={i} {i}\n")).collect();
    write(&fr, "d", &first).await;
    support::wait_until(
        "the first writes stored",
        Duration::from_secs(30),
        async || stored(&a, "d").len() >= 50,
    )
    .await;
    admin_post(&fr, "/admin/v1/clusters/a/pause").await;
    wait_drain(&fr, "a", "reading paused", |d| d["reading_paused"] == true).await;
    let second: String = (50..100).map(|i| format!("m v={i} {i}\n")).collect();
    write(&fr, "d", &second).await;
    // A time after every record: the seek by time lands at the ends, past the 50 points.
    let since =
        humantime::format_rfc3339_millis(std::time::SystemTime::now() + Duration::from_secs(5));
    admin_post(&fr, &format!("/admin/v1/clusters/a/replay?since={since}")).await;
    wait_drain(&fr, "a", "replay finished", |d| d["replaying"] == false).await;
    admin_post(&fr, "/admin/v1/clusters/a/resume").await;
    let got = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = stored(&a, "d");
            if got.len() >= 100 || tokio::time::Instant::now() >= deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(got.len(), 100, "points lost by the replay: {got:?}");
    fr.stop().await.unwrap();
}
