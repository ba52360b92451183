//! Reads through fluxroute against real `influxd` clusters: answers identical to influxd's own
//! (plain, chunked, errors), real clients (the `influx` CLI, the Python `influxdb` client, curl),
//! schema changes through the log to every cluster (renamed, and one that is down), and the
//! choice of cluster by health and freshness: failover on SIGSTOP and kill, a paused cluster
//! as a last resort marked stale, a rerouted cluster read from its standby, and reads moving
//! back once a recovered cluster has caught up.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use support::config::Setup;
use support::fluxroute::Fluxroute;
use support::influxd::Influxd;

/// One answer of `/query`.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    cluster: Option<String>,
    stale: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The single value of a `SELECT count(v) …` answer.
    fn count(&self) -> i64 {
        self.json()["results"][0]["series"][0]["values"][0][1]
            .as_i64()
            .unwrap_or_else(|| panic!("no count in {}", self.body))
    }
}

/// A read, sent as GET with every parameter in the URL (as the direct requests compared).
async fn query(fr: &Fluxroute, params: &[(&str, &str)]) -> Answer {
    answer(
        support::http_client()
            .get(format!("{}/query", fr.url()))
            .query(params),
    )
    .await
}

/// A schema change, sent as POST with a form body (as influxd wants them).
async fn post_query(fr: &Fluxroute, params: &[(&str, &str)]) -> Answer {
    answer(
        support::http_client()
            .post(format!("{}/query", fr.url()))
            .form(params),
    )
    .await
}

async fn answer(req: reqwest::RequestBuilder) -> Answer {
    let resp = req.send().await.unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (status, cluster, stale) = (
        resp.status(),
        header("X-Fluxroute-Cluster"),
        header("X-Fluxroute-Stale"),
    );
    Answer {
        status,
        cluster,
        stale,
        body: resp.text().await.unwrap(),
    }
}

/// Asks `q` of `db` until `done` holds for the answer (each answer must be a 200).
async fn query_until(
    fr: &Fluxroute,
    db: &str,
    q: &str,
    within: Duration,
    done: impl Fn(&Answer) -> bool,
) -> Answer {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let a = query(fr, &[("db", db), ("q", q)]).await;
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        if done(&a) {
            return a;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer as wanted within {within:?}; last: {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A day ago, in ns (points inside any retention policy the tests create), the same for a run.
fn base_ns() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        i64::try_from(now - 86_400).unwrap() * 1_000_000_000
    })
}

/// Writes `n` points of measurement `m` (timestamps from `first`) through fluxroute.
async fn write(fr: &Fluxroute, db: &str, m: &str, first: i64, n: i64) -> BTreeSet<String> {
    let lines: Vec<String> = (first..first + n)
        .map(|i| format!("{m},host=h{} v={i} {}", i % 7, base_ns() + i))
        .collect();
    let resp = support::http_client()
        .post(format!("{}/write?db={db}", fr.url()))
        .body(lines.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    lines
        .iter()
        .map(|l| {
            let (head, ts) = l.rsplit_once(' ').unwrap();
            let series = head.split_once(' ').unwrap().0;
            format!("{series} {ts}")
        })
        .collect()
}

async fn wait_stored(influxd: &Influxd, db: &str, want: &BTreeSet<String>) {
    support::points::wait_for_points(influxd, db, want, true, Duration::from_secs(30)).await;
}

fn cluster(name: &str, influxd: &Influxd, extra: &str) -> String {
    support::config::cluster(name, &influxd.url(), extra)
}

fn run(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (./scripts/test installs it)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_answer_as_influxd_does_for_real_clients() {
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let toml = Setup::embedded(dir.path())
        .cluster_toml(&(cluster("a", &a, "") + &cluster("b", &b, "")))
        .route(&["metrics"], &["a", "b"])
        .toml();
    let fr = Fluxroute::start(&toml).await;
    let want = write(&fr, "metrics", "m", 0, 100).await;
    wait_stored(&a, "metrics", &want).await;
    wait_stored(&b, "metrics", &want).await;

    // The same answer as the first cluster's own, byte for byte: plain, chunked, errors.
    for params in [
        vec![("db", "metrics"), ("q", "SELECT count(v) FROM m")],
        vec![
            ("db", "metrics"),
            (
                "q",
                "SELECT * FROM m WHERE host = 'h3' LIMIT 4; SHOW TAG VALUES WITH KEY = host",
            ),
            ("epoch", "ms"),
        ],
        vec![
            ("db", "metrics"),
            ("q", "SELECT * FROM m"),
            ("chunked", "true"),
            ("chunk_size", "15"),
        ],
        vec![
            ("db", "metrics"),
            ("q", "SELECT mean(v) FROM m GROUP BY host"),
            ("pretty", "true"),
        ],
        vec![("q", "SHOW DATABASES")],
        vec![("db", "metrics"), ("q", "SELECT FROM m")],
        vec![("db", "metrics"), ("q", "SELECT count(v) FROM nowhere")],
    ] {
        let through = query(&fr, &params).await;
        let path = format!(
            "/query?{}",
            params
                .iter()
                .map(|(k, v)| format!("{k}={}", support::influxd::url_encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        );
        let direct = a.request("GET", &path, &[]).unwrap();
        assert_eq!(through.status.as_u16(), direct.status, "{params:?}");
        assert_eq!(through.body, direct.text(), "{params:?}");
        assert_eq!(through.cluster.as_deref(), Some("a"), "{params:?}");
        assert_eq!(through.stale, None, "{params:?}");
    }
    let chunked = query(
        &fr,
        &[
            ("db", "metrics"),
            ("q", "SELECT * FROM m"),
            ("chunked", "true"),
            ("chunk_size", "15"),
        ],
    )
    .await;
    assert_eq!(
        chunked.body.lines().count(),
        7,
        "100 points in chunks of 15"
    );

    // A database no cluster holds: influxd's answer for a database it does not have.
    let none = query(&fr, &[("db", "nodb"), ("q", "SELECT * FROM m")]).await;
    let direct = a.select("nodb", "SELECT * FROM m").unwrap();
    assert_eq!(
        (none.status.as_u16(), none.body.trim()),
        (200, direct.text().trim())
    );

    // Flux goes to a cluster that serves it: influxd 1.6 does not, and its answer comes back.
    let flux = r#"from(bucket: "metrics/autogen") |> range(start: -1h)"#;
    let through = support::http_client()
        .post(format!("{}/api/v2/query", fr.url()))
        .header("Content-Type", "application/vnd.flux")
        .body(flux)
        .send()
        .await
        .unwrap();
    let direct = a.request("POST", "/api/v2/query", flux.as_bytes()).unwrap();
    assert_eq!(through.status().as_u16(), direct.status);
    assert_eq!(
        through.headers()["X-Fluxroute-Cluster"].to_str().unwrap(),
        "a"
    );
    assert_eq!(through.text().await.unwrap(), direct.text());

    // Schema changes answered as influxd answers them: with GET (deprecated, a warning), and
    // without the database a statement needs (an error in its results; later ones not run).
    for (method, q) in [
        ("GET", "CREATE DATABASE fresh"),
        ("POST", "DROP MEASUREMENT m"),
    ] {
        let path = format!("/query?q={}", support::influxd::url_encode(q));
        let through = support::http_client()
            .request(method.parse().unwrap(), format!("{}{path}", fr.url()))
            .send()
            .await
            .unwrap();
        let direct = a.request(method, &path, &[]).unwrap();
        assert_eq!(through.status().as_u16(), direct.status, "{q}");
        assert_eq!(through.text().await.unwrap(), direct.text(), "{method} {q}");
    }

    // What fluxroute refuses, with a clear error.
    for (q, says) in [
        (
            "SELECT * FROM m; DROP MEASUREMENT m",
            "may not mix reads and schema changes",
        ),
        ("SELECT * INTO copy FROM m", "SELECT ... INTO"),
        (
            "CREATE USER x WITH PASSWORD 'y'",
            "not supported through fluxroute",
        ),
    ] {
        let r = query(&fr, &[("db", "metrics"), ("q", q)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert!(
            r.json()["error"].as_str().unwrap().contains(says),
            "{q}: {}",
            r.body
        );
    }

    // Real clients, unmodified.
    let port = fr.ingest.port().to_string();
    let out = run(
        "influx",
        &[
            "-host",
            "127.0.0.1",
            "-port",
            &port,
            "-database",
            "metrics",
            "-format",
            "json",
            "-execute",
            "SELECT count(v) FROM m",
        ],
    );
    assert!(out.contains("[0,100]"), "{out}");
    let out = run(
        "influx",
        &[
            "-host",
            "127.0.0.1",
            "-port",
            &port,
            "-execute",
            "SHOW DATABASES",
        ],
    );
    assert!(out.lines().any(|l| l.trim() == "metrics"), "{out}");
    let script = format!(
        "from influxdb import InfluxDBClient\n\
         c = InfluxDBClient('127.0.0.1', {port}, database='metrics')\n\
         print(list(c.query('SELECT count(v) FROM m').get_points())[0]['count'])\n\
         print(sum(len(list(r.get_points())) for r in c.query('SELECT * FROM m', chunked=True, chunk_size=10)))\n"
    );
    let out = run("/usr/bin/python3", &["-c", &script]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["100", "100"],
        "{out}"
    );
    let out = run(
        "curl",
        &[
            "-sS",
            "-G",
            &format!("{}/query", fr.url()),
            "--data-urlencode",
            "db=metrics",
            "--data-urlencode",
            "q=SELECT count(v) FROM m",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 100, "{out}");
    assert!(
        fr.metric("fluxroute_queries_total{cluster=\"a\",outcome=\"ok\"}")
            .await
            .unwrap()
            >= 10.0
    );
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_changes_reach_every_cluster_in_log_order_even_one_that_is_down() {
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let toml = Setup::embedded(dir.path())
        .cluster_toml(&(cluster("a", &a, "") + &cluster("b", &b, "")))
        .toml()
        + "[[routes]]\ndatabases = [\"app\"]\nclusters = [\"a\", \"b\"]\nrename = { b = \"app_b\" }\n";
    let fr = Fluxroute::start(&toml).await;
    b.freeze();
    fr.wait_metric(
        "fluxroute_cluster_up{cluster=\"b\"}",
        0.0,
        Duration::from_secs(15),
    )
    .await;
    for q in [
        "CREATE DATABASE app WITH DURATION 30d NAME month",
        "CREATE RETENTION POLICY week ON app DURATION 7d REPLICATION 1",
    ] {
        let r = post_query(&fr, &[("q", q)]).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
        assert_eq!(
            r.json(),
            serde_json::json!({"results":[{"statement_id":0}]})
        );
    }
    let gone = write(&fr, "app", "gone", 0, 10).await;
    let kept = write(&fr, "app", "kept", 0, 10).await;
    let r = post_query(
        &fr,
        &[
            ("db", "app"),
            (
                "q",
                "DROP MEASUREMENT gone; ALTER RETENTION POLICY week ON app DURATION 14d",
            ),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.json(),
        serde_json::json!({"results":[{"statement_id":0},{"statement_id":1}]})
    );
    b.thaw();

    for (influxd, db) in [(&a, "app"), (&b, "app_b")] {
        wait_stored(influxd, db, &kept).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let stored = support::points::stored(influxd, db);
            let rps = influxd
                .query(&format!("SHOW RETENTION POLICIES ON {db}"))
                .unwrap()
                .text();
            if gone.is_disjoint(&stored) && rps.contains("[\"week\",\"336h0m0s\"") {
                assert!(
                    rps.contains("[\"month\",\"720h0m0s\",\"24h0m0s\",1,true]"),
                    "{rps}"
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{db}: schema changes not applied: {rps}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_fail_over_and_come_back_once_the_cluster_caught_up() {
    let (mut a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let toml = Setup::embedded(dir.path())
        .section("[query]\nmax_lag = \"0s\"\ntimeout = \"1s\"")
        .cluster_toml(&(cluster("a", &a, "") + &cluster("b", &b, "")))
        .route(&["metrics"], &["a", "b"])
        .toml();
    let fr = Fluxroute::start(&toml).await;
    let q = "SELECT count(v) FROM m";
    let first = write(&fr, "metrics", "m", 0, 50).await;
    wait_stored(&a, "metrics", &first).await;
    wait_stored(&b, "metrics", &first).await;
    query_until(&fr, "metrics", q, Duration::from_secs(10), |r| {
        r.cluster.as_deref() == Some("a") && r.count() == 50
    })
    .await;

    // Frozen: the next reads are answered by b, fresh, without waiting for anything.
    a.freeze();
    let r = query_until(&fr, "metrics", q, Duration::from_secs(10), |r| {
        r.cluster.as_deref() == Some("b") && r.stale.is_none()
    })
    .await;
    assert_eq!(r.count(), 50);
    let second = write(&fr, "metrics", "m", 50, 50).await;
    wait_stored(&b, "metrics", &second).await;
    let r = query_until(&fr, "metrics", q, Duration::from_secs(10), |r| {
        r.stale.is_none()
    })
    .await;
    assert_eq!((r.cluster.as_deref(), r.count()), (Some("b"), 100));

    // b paused too: a paused cluster answers only as a last resort, and says it may be stale.
    let admin = support::http_client();
    let pause = admin
        .post(format!("{}/admin/v1/clusters/b/pause", fr.admin_url()))
        .send()
        .await
        .unwrap();
    assert!(pause.status().is_success());
    let r = query_until(&fr, "metrics", q, Duration::from_secs(10), |r| {
        r.stale.is_some()
    })
    .await;
    assert_eq!(r.cluster.as_deref(), Some("b"));
    let resume = admin
        .post(format!("{}/admin/v1/clusters/b/resume", fr.admin_url()))
        .send()
        .await
        .unwrap();
    assert!(resume.status().is_success());

    // Back: a is read again only once it has caught up, and then it has everything.
    a.thaw();
    let r = query_until(&fr, "metrics", q, Duration::from_secs(60), |r| {
        r.cluster.as_deref() == Some("a") && r.stale.is_none()
    })
    .await;
    assert_eq!(r.count(), 100, "a fresh answer holds every point: {r:?}");

    // Killed: connection refused moves the read on at once.
    a.kill();
    let r = query_until(&fr, "metrics", q, Duration::from_secs(10), |r| {
        r.cluster.as_deref() == Some("b")
    })
    .await;
    assert_eq!(r.count(), 100);
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerouted_cluster_is_read_from_its_standby() {
    let (a, s) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let toml = Setup::embedded(dir.path())
        .section("[query]\nmax_lag = \"0s\"\ntimeout = \"1s\"")
        .cluster_toml(
            &(cluster("a", &a, "standby = \"s\"\nreroute_after = \"1s\"") + &cluster("s", &s, "")),
        )
        .route(&["metrics"], &["a"])
        .toml();
    let fr = Fluxroute::start(&toml).await;
    let q = "SELECT count(v) FROM m";
    let before = write(&fr, "metrics", "m", 0, 30).await;
    wait_stored(&a, "metrics", &before).await;
    a.freeze();
    fr.wait_metric(
        "fluxroute_cluster_reroute_active{cluster=\"a\"}",
        1.0,
        Duration::from_secs(20),
    )
    .await;
    let during = write(&fr, "metrics", "m", 30, 20).await;
    wait_stored(&s, "metrics", &during).await;
    let r = query_until(&fr, "metrics", q, Duration::from_secs(10), |r| {
        r.cluster.as_deref() == Some("s")
    })
    .await;
    assert_eq!((r.count(), r.stale.as_deref()), (20, None));
    a.thaw();
    let r = query_until(&fr, "metrics", q, Duration::from_secs(60), |r| {
        r.cluster.as_deref() == Some("a") && r.stale.is_none()
    })
    .await;
    assert_eq!(
        r.count(),
        50,
        "a replayed what it missed before its reads came back"
    );
    fr.stop().await.unwrap();
}

/// Writes one line through `fr` and returns the answer's `X-Fluxroute-Position`.
async fn write_positioned(fr: &Fluxroute, db: &str, line: &str) -> String {
    let resp = support::http_client()
        .post(format!("{}/write?db={db}", fr.url()))
        .body(line.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    resp.headers()
        .get("X-Fluxroute-Position")
        .expect("a write's answer carries its position")
        .to_str()
        .unwrap()
        .to_owned()
}

async fn query_after(fr: &Fluxroute, db: &str, q: &str, after: &str) -> Answer {
    let resp = support::http_client()
        .get(format!("{}/query", fr.url()))
        .query(&[("db", db), ("q", q)])
        .header("X-Fluxroute-After", after)
        .send()
        .await
        .unwrap();
    Answer {
        status: resp.status(),
        cluster: resp
            .headers()
            .get("X-Fluxroute-Cluster")
            .map(|v| v.to_str().unwrap().to_owned()),
        stale: None,
        body: resp.text().await.unwrap(),
    }
}

/// Waits until the drains of the `index`-th cluster stopped reading on every router (an
/// operator pause travels on the control topic).
async fn wait_paused(routers: &[&Fluxroute], index: usize) {
    for fr in routers {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let s: serde_json::Value =
                serde_json::from_str(&fr.admin_text("/admin/v1/status").await).unwrap();
            let drain = &s["clusters"][index]["drain"];
            if drain["operator_paused"] == true && drain["in_flight"] == 0 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "not paused: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_after_a_position_sees_that_write_across_routers_on_kafka() {
    let broker = support::broker::Broker::start(support::broker::Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let toml = Setup::kafka(&broker.bootstrap())
        // A read waits up to this for a cluster to pass its position: long enough for a drain
        // on a loaded machine (the reads below answer as soon as a has the write); the one
        // read that must time out (both clusters paused) waits it out once.
        .section("[query]\nafter_timeout = \"10s\"")
        .cluster_toml(&(cluster("b", &b, "") + &cluster("a", &a, "")))
        .route(&["metrics"], &["b", "a"])
        .toml();
    let (one, two) = (Fluxroute::start(&toml).await, Fluxroute::start(&toml).await);
    // Both routers' drains share each cluster's group; wait until both clusters take writes.
    let first = write(&one, "metrics", "warm", 0, 4).await;
    wait_stored(&a, "metrics", &first).await;
    wait_stored(&b, "metrics", &first).await;

    // b is paused by an operator (through router one; the control topic tells router two):
    // reads after a write must come from a, and must see the write, every time.
    let paused = support::http_client()
        .post(format!("{}/admin/v1/clusters/b/pause", one.admin_url()))
        .send()
        .await
        .unwrap();
    assert!(paused.status().is_success());
    wait_paused(&[&one, &two], 0).await;
    for i in 0..20 {
        let line = format!("ryw,i=x{i} v={i} {}", base_ns() + i);
        let position = write_positioned(&one, "metrics", &line).await;
        let r = query_after(&two, "metrics", "SELECT count(v) FROM ryw", &position).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.cluster.as_deref(),
            Some("a"),
            "b has not passed {position}"
        );
        assert_eq!(r.count(), i + 1, "read after {position} misses the write");
    }

    // No cluster passes a position while both are paused: 503 once after_timeout is over.
    let paused = support::http_client()
        .post(format!("{}/admin/v1/clusters/a/pause", two.admin_url()))
        .send()
        .await
        .unwrap();
    assert!(paused.status().is_success());
    wait_paused(&[&one, &two], 1).await;
    let position = write_positioned(&two, "metrics", &format!("ryw v=0 {}", base_ns() + 99)).await;
    let r = query_after(&one, "metrics", "SELECT count(v) FROM ryw", &position).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.body.contains("no cluster has applied"), "{}", r.body);
    let bad = query_after(&one, "metrics", "SELECT 1", "nonsense").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    one.stop().await.unwrap();
    two.stop().await.unwrap();
}
