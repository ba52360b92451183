//! The admin API and `fluxroute ctl` against a running fluxroute with real clusters and broker:
//! auth, errors, pause/resume under load, replay, forced reroute, and actions shared by two
//! instances through the control topic.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::time::Duration;

use fluxroute::loadgen::LoadgenArgs;
use reqwest::StatusCode;
use support::broker::{Broker, Storage};
use support::config::Setup;
use support::fluxroute::Fluxroute;
use support::influxd::Influxd;
use support::points::{stored, wait_for_points};

const TOKEN: &str = "admin-token-1";

fn config(broker: &Broker, a: &Influxd, b: &Influxd, extra_b: &str) -> String {
    Setup::kafka(&broker.bootstrap())
        .section("[admin]\ntoken = \"${ADMIN_TOKEN}\"")
        .cluster("a", &a.url())
        .cluster_with("b", &b.url(), extra_b)
        .route(&["*"], &["a"])
        .toml()
}

fn env() -> HashMap<String, String> {
    HashMap::from([("ADMIN_TOKEN".to_owned(), TOKEN.to_owned())])
}

async fn admin(
    fr: &Fluxroute,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut req = support::http_client().request(method, format!("{}{path}", fr.admin_url()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

fn ctl(fr: &Fluxroute, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fluxroute"))
        .arg("ctl")
        .args(["--url", &fr.admin_url()])
        .args(args)
        .env("FLUXROUTE_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn write(fr: &Fluxroute, prefix: &str, range: std::ops::Range<i64>) -> BTreeSet<String> {
    let mut body = String::new();
    let mut set = BTreeSet::new();
    for i in range {
        body.push_str(&format!(
            "{prefix},host=h{} v={i} {}\n",
            i % 5,
            1_000_000 + i
        ));
        set.insert(format!("{prefix},host=h{} {}", i % 5, 1_000_000 + i));
    }
    let r = support::http_client()
        .post(format!("{}/write?db=d", fr.url()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    set
}

async fn wait_status(
    fr: &Fluxroute,
    cluster: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
    what: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = admin(fr, reqwest::Method::GET, "/admin/v1/status", Some(TOKEN)).await;
        let c = v["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == cluster)
            .cloned()
            .unwrap();
        if pred(&c) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_api_auth_errors_and_openapi() {
    let broker = Broker::start(Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let fr = Fluxroute::start_with_env(&config(&broker, &a, &b, ""), &env()).await;
    use reqwest::Method;

    for (path, token) in [
        ("/admin/v1/status", None),
        ("/admin/v1/status", Some("wrong")),
        ("/admin/v1/config", None),
    ] {
        let (s, v) = admin(&fr, Method::GET, path, token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(v["error"], "missing or invalid bearer token");
    }
    let (s, _) = admin(&fr, Method::GET, "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);

    let (s, v) = admin(&fr, Method::GET, "/admin/v1/status", Some(TOKEN)).await;
    assert_eq!(s, StatusCode::OK);
    // The same type `fluxroute ctl` reads.
    let report: fluxroute::admin::report::StatusReport =
        serde_json::from_value(v.clone()).expect("the status is a StatusReport");
    assert!(report.clusters.iter().all(|c| c.drain.is_some()), "{v}");
    assert_eq!(v["queue"]["backend"], "kafka");
    assert_eq!(v["queue"]["healthy"], true);
    let names: Vec<&str> = v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);

    let (s, v) = admin(&fr, Method::GET, "/admin/v1/config", Some(TOKEN)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["admin"]["token"], "***", "{v}");

    let (s, v) = admin(
        &fr,
        Method::POST,
        "/admin/v1/clusters/nope/pause",
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "unknown cluster \"nope\"");
    let (s, v) = admin(
        &fr,
        Method::POST,
        "/admin/v1/clusters/a/replay?since=yesterday",
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("RFC 3339"), "{v}");
    let (s, _) = admin(
        &fr,
        Method::POST,
        "/admin/v1/clusters/a/replay",
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = admin(
        &fr,
        Method::POST,
        "/admin/v1/clusters/a/reroute?enabled=maybe",
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = admin(
        &fr,
        Method::POST,
        "/admin/v1/clusters/b/reroute?enabled=true",
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "b has no standby: {v}");
    let (s, v) = admin(&fr, Method::GET, "/admin/v1/clusters/a/pause", Some(TOKEN)).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(v["error"], "method not allowed");

    let (s, v) = admin(&fr, Method::GET, "/admin/v1/openapi.json", Some(TOKEN)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["openapi"], "3.0.3");
    assert!(v["paths"]["/admin/v1/clusters/{name}/replay"]["post"].is_object());
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_resume_replay_and_reroute_through_ctl() {
    let broker = Broker::start(Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    // a has standby b for the forced reroute below.
    let cfg = config(&broker, &a, &b, "").replace(
        "name = \"a\"\napi = \"v1\"",
        "name = \"a\"\nstandby = \"b\"\napi = \"v1\"",
    );
    let fr = Fluxroute::start_with_env(&cfg, &env()).await;

    let first = write(&fr, "m", 0..100).await;
    wait_for_points(&a, "d", &first, false, Duration::from_secs(30)).await;

    // Pause: the queue buffers, nothing reaches a; resume: it catches up with no loss.
    let (ok, out, err) = ctl(&fr, &["pause", "a"]);
    assert!(ok, "{err}");
    assert!(out.contains("paused=true"), "{out}");
    wait_status(&fr, "a", |c| c["state"] == "paused", "a paused").await;
    // The drain's own typed state says so too: paused by the operator, reading stopped.
    wait_status(
        &fr,
        "a",
        |c| c["drain"]["operator_paused"] == true && c["drain"]["reading_paused"] == true,
        "a's drain paused",
    )
    .await;
    let during = write(&fr, "m", 100..300).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = admin(&fr, reqwest::Method::GET, "/admin/v1/status", Some(TOKEN)).await;
        if v["clusters"][0]["lag_records"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lag never showed the buffered writes: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stored(&a, "d"), first, "nothing delivered while paused");
    let (ok, out, _) = ctl(&fr, &["status"]);
    assert!(
        ok && out.contains("paused") && out.contains("CLUSTER"),
        "{out}"
    );
    // Reads still go to a, the only cluster holding the data, marked stale while it is paused.
    assert!(out.contains("reads of *: a (stale, "), "{out}");
    let (ok, _, err) = ctl(&fr, &["resume", "a"]);
    assert!(ok, "{err}");
    let all: BTreeSet<String> = first.union(&during).cloned().collect();
    wait_for_points(&a, "d", &all, false, Duration::from_secs(30)).await;

    // Replay since a time before everything: every point is written again, the set unchanged.
    let before_replay = metric(&fr, "fluxroute_drain_lines_written_total{cluster=\"a\"}").await;
    let (ok, out, err) = ctl(&fr, &["replay", "a", "--since", "2020-01-01T00:00:00Z"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("replay=since 2020-01-01T00:00:00.000Z"),
        "{out}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = metric(&fr, "fluxroute_drain_lines_written_total{cluster=\"a\"}").await;
        if now >= before_replay + 300.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replay wrote {} of 300 lines",
            now - before_replay
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stored(&a, "d"), all, "replays overwrite: same points");

    // Forced reroute: a's writes also go to its standby b while forced on, even though a is up.
    let (ok, out, err) = ctl(&fr, &["reroute", "a", "--enabled", "true"]);
    assert!(ok, "{err}");
    assert!(out.contains("reroute=on"), "{out}");
    wait_status(
        &fr,
        "a",
        |c| c["reroute"]["active"] == true,
        "reroute active",
    )
    .await;
    let rerouted = write(&fr, "r", 0..50).await;
    wait_for_points(&b, "d", &rerouted, true, Duration::from_secs(30)).await;
    let (ok, _, err) = ctl(&fr, &["reroute", "a", "--enabled", "auto"]);
    assert!(ok, "{err}");
    wait_status(
        &fr,
        "a",
        |c| c["reroute"]["active"] == false,
        "reroute stopped",
    )
    .await;

    // JSON output and the config verb; errors give a non-zero exit and a message.
    let (ok, out, _) = ctl(&fr, &["--json", "status"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["clusters"][0]["name"], "a");
    let (ok, out, _) = ctl(&fr, &["config"]);
    assert!(ok && out.contains("\"clusters\""), "{out}");
    let (ok, _, err) = ctl(&fr, &["pause", "nope"]);
    assert!(!ok);
    assert!(err.contains("unknown cluster"), "{err}");
    let (ok, _, err) = ctl(&fr, &["replay", "a", "--since", "not-a-time"]);
    assert!(!ok && err.contains("400"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_fluxroute"))
        .args([
            "ctl",
            "--url",
            &fr.admin_url(),
            "--token",
            "wrong",
            "status",
        ])
        .env_remove("FLUXROUTE_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    let out = Command::new(env!("CARGO_BIN_EXE_fluxroute"))
        .args(["ctl", "--url", "http://127.0.0.1:1", "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reaching the admin API"));
    fr.stop().await.unwrap();
}

async fn metric(fr: &Fluxroute, prefix: &str) -> f64 {
    fr.metric(prefix).await.unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_given_to_one_instance_stops_the_drain_on_the_other() {
    let broker = Broker::start(Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let cfg = config(&broker, &a, &b, "");
    let one = Fluxroute::start_with_env(&cfg, &env()).await;
    let two = Fluxroute::start_with_env(&cfg, &env()).await;
    let (s, _) = admin(
        &one,
        reqwest::Method::POST,
        "/admin/v1/clusters/a/pause",
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // The other instance learns it from the control topic.
    wait_status(
        &two,
        "a",
        |c| c["paused"] == true,
        "pause reached instance two",
    )
    .await;
    let before = stored(&a, "d");
    let buffered = write(&two, "p", 0..40).await;
    let buffered2 = write(&one, "q", 0..40).await;
    // Give both drains time to (not) deliver: wait until the lag shows the records are buffered.
    wait_status(
        &one,
        "a",
        |c| c["lag_records"].as_i64().unwrap_or(0) > 0,
        "lag on one",
    )
    .await;
    assert_eq!(
        stored(&a, "d"),
        before,
        "no instance delivered while paused"
    );
    let (s, _) = admin(
        &two,
        reqwest::Method::POST,
        "/admin/v1/clusters/a/resume",
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let want: BTreeSet<String> = buffered.union(&buffered2).cloned().collect();
    wait_for_points(&a, "d", &want, false, Duration::from_secs(60)).await;

    // The state survives a restart: pause, restart an instance, it starts paused.
    let (s, _) = admin(
        &one,
        reqwest::Method::POST,
        "/admin/v1/clusters/b/pause",
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    two.stop().await.unwrap();
    let three = Fluxroute::start_with_env(&cfg, &env()).await;
    wait_status(
        &three,
        "b",
        |c| c["paused"] == true,
        "pause survived the restart",
    )
    .await;
}

/// `cfg` without schema views: the dead-letter cycles need the cluster to refuse a field type
/// conflict that the views would answer at the ingest (tests/schema.rs).
fn without_views(cfg: &str) -> String {
    format!("{cfg}\n[schema]\nenabled = false\n")
}

async fn dead_letter_cycle(fr: &Fluxroute, a: &Influxd) {
    let first = write(fr, "m", 0..5).await;
    wait_for_points(a, "d", &first, false, Duration::from_secs(30)).await;
    // A field type conflict: v was a float, now a string.
    let r = support::http_client()
        .post(format!("{}/write?db=d", fr.url()))
        .body("m,host=h9 v=\"text\" 2000000\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let (ok, out, err) = ctl(fr, &["dead-letters", "list", "--cluster", "a"]);
        assert!(ok, "{err}");
        if out.contains("field_type_conflict") {
            break out;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dead letter listed: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(listed.contains("ID") && listed.contains(" d "), "{listed}");
    let (s, v) = admin(
        fr,
        reqwest::Method::GET,
        "/admin/v1/dead-letters?reason=field_type_conflict",
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let letters = v["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{v}");
    assert!(letters[0]["lines"]
        .as_str()
        .unwrap()
        .contains("v=\"text\" 2000000"));
    let (_, v) = admin(
        fr,
        reqwest::Method::GET,
        "/admin/v1/dead-letters?reason=parse",
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        v["dead_letters"].as_array().unwrap().len(),
        0,
        "filter by reason"
    );
    let (s, _) = admin(
        fr,
        reqwest::Method::GET,
        "/admin/v1/dead-letters?limit=lots",
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Fix the cause (the measurement is dropped), replay: the line arrives; purge: list empty.
    let r = a
        .request("POST", "/query?db=d&q=DROP%20MEASUREMENT%20m", &[])
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let (ok, out, err) = ctl(fr, &["dead-letters", "replay", "--cluster", "a"]);
    assert!(ok, "{err}");
    assert!(out.contains("replayed 1 dead letters"), "{out}");
    let want = BTreeSet::from(["m,host=h9 2000000".to_owned()]);
    wait_for_points(a, "d", &want, true, Duration::from_secs(30)).await;
    let (ok, out, err) = ctl(fr, &["dead-letters", "purge"]);
    assert!(ok, "{err}: {out}");
    let (_, v) = admin(
        fr,
        reqwest::Method::GET,
        "/admin/v1/dead-letters",
        Some(TOKEN),
    )
    .await;
    assert_eq!(v["dead_letters"].as_array().unwrap().len(), 0, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_list_replay_purge_on_kafka() {
    let broker = Broker::start(Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let cfg = without_views(&config(&broker, &a, &b, ""));
    let fr = Fluxroute::start_with_env(&cfg, &env()).await;
    dead_letter_cycle(&fr, &a).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_list_replay_purge_on_the_embedded_queue() {
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let broker = Broker::start(Storage::Memory);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&broker, &a, &b, "").replace(
        "[queue]\nbackend = \"kafka\"",
        &format!(
            "[queue]\nbackend = \"embedded\"\n[queue.embedded]\ndir = \"{}\"",
            dir.path().join("q").display()
        ),
    );
    let fr = Fluxroute::start_with_env(&without_views(&cfg), &env()).await;
    dead_letter_cycle(&fr, &a).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_adds_a_cluster_without_losing_writes() {
    let broker = Broker::start(Storage::Memory);
    let (a, b, c) = (
        Influxd::start().unwrap(),
        Influxd::start().unwrap(),
        Influxd::start().unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fluxroute.toml");
    let two =
        config(&broker, &a, &b, "").replace("clusters = [\"a\"]", "clusters = [\"a\", \"b\"]");
    std::fs::write(&path, &two).unwrap();
    let fr = Fluxroute::start_from_file(&path, &env()).await;

    let record = dir.path().join("acked.lp");
    let args = LoadgenArgs {
        rate: Some(3000),
        duration: support::seconds(4),
        ..support::load(&fr.url(), Some(&record))
    };
    let load = tokio::spawn(async move { fluxroute::loadgen::run(&args).await.unwrap() });
    // The reload comes once both drains deliver, i.e. hold their partitions. (A member that
    // leaves its group while its first JoinGroup is pending leaves the test broker's group
    // unable to complete a rebalance: README, broker differences.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while [&a, &b].iter().any(|c| stored(c, "metrics").is_empty()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the drains delivered nothing within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A broken file is refused with its problems; the running configuration stays.
    std::fs::write(&path, "[[clusters]]\nname = \"x\"\napi = \"v7\"\n").unwrap();
    let (ok, _, err) = ctl(&fr, &["reload"]);
    assert!(!ok);
    assert!(
        err.contains("invalid") && err.contains("fluxroute.toml:3"),
        "{err}"
    );

    // A third cluster and a route to it, while writes flow.
    let three = format!(
        "{two}\n[[clusters]]\nname = \"c\"\napi = \"v1\"\nendpoints = [\"{}\"]\nbatch_linger = \"20ms\"\n[[routes]]\ndatabases = [\"metrics\"]\nclusters = [\"c\"]\n",
        c.url()
    );
    std::fs::write(&path, three).unwrap();
    let (ok, out, err) = ctl(&fr, &["reload"]);
    assert!(ok, "{err}");
    assert!(out.contains("\"c\""), "{out}");
    let report = load.await.unwrap();
    assert_eq!(
        report.requests_failed, 0,
        "ingest kept answering across the reload: {report}"
    );
    let want = support::points::acked(&record);
    for cluster in [&a, &b] {
        wait_for_points(cluster, "metrics", &want, false, Duration::from_secs(60)).await;
    }
    // The new cluster's group starts at the beginning of the queue: it gets everything.
    wait_for_points(&c, "metrics", &want, false, Duration::from_secs(60)).await;
    let (_, v) = admin(&fr, reqwest::Method::GET, "/admin/v1/status", Some(TOKEN)).await;
    assert_eq!(v["clusters"].as_array().unwrap().len(), 3, "{v}");
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_configuration() {
    let broker = Broker::start(Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let body = config(&broker, &a, &b, "").replace("[admin]\ntoken = \"${ADMIN_TOKEN}\"\n", "");
    let fr = support::process::FluxrouteProcess::start(dir.path(), "fr", &body).await;
    let status = || async {
        support::http_client()
            .get(format!("{}/admin/v1/status", fr.admin_url()))
            .send()
            .await
            .unwrap()
            .json_value()
            .await
    };
    assert_eq!(status().await["clusters"].as_array().unwrap().len(), 2);
    // Drop cluster b: rewrite the file the process was started with, then SIGHUP.
    let path = dir.path().join("fr.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = text.find("[[clusters]]\nname = \"b\"").unwrap();
    let rest = &text[cut..];
    let end = rest.find("[[routes]]").unwrap();
    std::fs::write(&path, format!("{}{}", &text[..cut], &rest[end..])).unwrap();
    let pid = fr.pid();
    assert!(Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if status().await["clusters"].as_array().unwrap().len() == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "SIGHUP did not reload:\n{}",
            fr.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

trait JsonValue {
    async fn json_value(self) -> serde_json::Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> serde_json::Value {
        serde_json::from_str(&self.text().await.unwrap()).unwrap()
    }
}
