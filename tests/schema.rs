//! Schema views against real `influxd` 1.6.7: a write to a database no cluster has (and none
//! creates), to a retention policy no cluster has, and with points beyond the retention policy
//! gets influxd's own answer from fluxroute at once (status, body, `X-Influxdb-Error`), with
//! influxd itself as the oracle, and the same points stored; a cluster that is down, or views
//! turned off, take writes as without views.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fluxroute::admin::report::{SchemaReport, StatusReport};
use support::config::{cluster, Setup};
use support::fluxroute::Fluxroute;
use support::influxd::Influxd;

/// An answer: status, `X-Influxdb-Error`, `X-Fluxroute-Dropped`, body.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    error: Option<String>,
    dropped: Option<String>,
    content_type: Option<String>,
    body: String,
}

async fn post(base: &str, path: &str, body: &str) -> Answer {
    let resp = support::http_client()
        .post(format!("{base}{path}"))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: resp.status().as_u16(),
        error: header("X-Influxdb-Error"),
        dropped: header("X-Fluxroute-Dropped"),
        content_type: header("Content-Type"),
        body: resp.text().await.unwrap(),
    }
}

/// fluxroute's answer must be influxd's: status, body, error header, content type (of an
/// error: influxd also sends one with a 204, fluxroute does not).
fn assert_same(fluxroute: &Answer, influxd: &Answer) {
    let content_type = |a: &Answer| a.content_type.clone().filter(|_| a.status != 204);
    assert_eq!(
        (
            fluxroute.status,
            &fluxroute.body,
            &fluxroute.error,
            content_type(fluxroute)
        ),
        (
            influxd.status,
            &influxd.body,
            &influxd.error,
            content_type(influxd)
        ),
        "fluxroute {fluxroute:?} vs influxd {influxd:?}"
    );
}

fn now_s() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

async fn status(fr: &Fluxroute) -> StatusReport {
    serde_json::from_str(&fr.admin_text("/admin/v1/status").await).unwrap()
}

/// Waits until `cluster`'s schema view satisfies `ok`.
async fn wait_schema(fr: &Fluxroute, cluster: &str, ok: impl Fn(&SchemaReport) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let report = status(fr).await;
        let schema = report
            .clusters
            .iter()
            .find(|c| c.name == cluster)
            .and_then(|c| c.schema.clone());
        if schema.as_ref().is_some_and(&ok) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "schema view of {cluster} never as wanted: {schema:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `v` values of measurement `m` in `db` (`rp` when given) on `influxd`, sorted.
fn values(influxd: &Influxd, db: &str, rp: &str, m: &str) -> Vec<i64> {
    let from = if rp.is_empty() {
        format!("\"{m}\"")
    } else {
        format!("\"{rp}\".\"{m}\"")
    };
    let resp = influxd
        .select(db, &format!("SELECT v FROM {from}"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    let mut out: Vec<i64> = v["results"][0]["series"][0]["values"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r[1].as_i64()).collect())
        .unwrap_or_default();
    out.sort_unstable();
    out
}

/// Waits until `values` is `want`.
async fn wait_values(influxd: &Influxd, db: &str, rp: &str, m: &str, want: &[i64]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = values(influxd, db, rp, m);
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{db}.{rp}.{m} holds {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `cluster`'s drain dead-lettered a write for `reason`.
async fn wait_dead_letter(fr: &Fluxroute, cluster: &str, reason: &str) {
    let series =
        format!("fluxroute_drain_dead_letters_total{{cluster=\"{cluster}\",reason=\"{reason}\"}}");
    fr.wait_metric(&series, 1.0, Duration::from_secs(30)).await;
}

const FAST_REFRESH: &str = "[schema]\nrefresh_interval = \"1s\"";

/// fluxroute on the embedded queue in a temp dir, `[schema]` as given, with `clusters` (name,
/// influxd, extra lines) and one route from `databases` to all of them.
async fn start(
    schema: &str,
    clusters: &[(&str, &Influxd, &str)],
    databases: &[&str],
) -> (Fluxroute, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::embedded(dir.path());
    if !schema.is_empty() {
        setup = setup.section(schema);
    }
    for (name, influxd, extra) in clusters {
        setup = setup.cluster_toml(&cluster(name, &influxd.url(), extra));
    }
    let names: Vec<&str> = clusters.iter().map(|c| c.0).collect();
    let toml = setup.route(databases, &names).toml();
    (Fluxroute::start(&toml).await, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_no_cluster_has_is_refused_as_influxd_refuses_it() {
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    a.query("CREATE DATABASE seen").unwrap();
    b.query("CREATE DATABASE seen").unwrap();
    let (fr, _dir) = start(
        FAST_REFRESH,
        &[
            ("a", &a, "create_databases = false"),
            ("b", &b, "create_databases = false"),
        ],
        &["*"],
    )
    .await;
    for c in ["a", "b"] {
        wait_schema(&fr, c, |s| s.known && s.databases == 1).await;
    }

    // Exactly influxd's 404, also for a body that does not parse (influxd looks first).
    for body in ["m v=1", "bad"] {
        let ours = post(&fr.url(), "/write?db=nope", body).await;
        let theirs = post(&a.url(), "/write?db=nope", body).await;
        assert_eq!(theirs.status, 404);
        assert_eq!(
            theirs.body,
            "{\"error\":\"database not found: \\\"nope\\\"\"}\n"
        );
        assert_same(&ours, &theirs);
    }
    let v2 = post(&fr.url(), "/api/v2/write?bucket=nope", "m v=1").await;
    assert_eq!(v2.status, 404);
    let v2: serde_json::Value = serde_json::from_str(&v2.body).unwrap();
    assert_eq!(v2["message"], "database not found: \"nope\"");
    // A database the clusters have is written.
    assert_eq!(post(&fr.url(), "/write?db=seen", "m v=1").await.status, 204);
    wait_values(&a, "seen", "", "m", &[1]).await;

    // Created directly on one cluster: known at the next refresh, then taken.
    a.query("CREATE DATABASE later").unwrap();
    wait_schema(&fr, "a", |s| s.databases == 2).await;
    assert_eq!(
        post(&fr.url(), "/write?db=later", "m v=2").await.status,
        204
    );
    wait_values(&a, "later", "", "m", &[2]).await;

    // Created through fluxroute: taken at once, before any cluster applied it.
    let created = post(&fr.url(), "/query?q=CREATE+DATABASE+made", "").await;
    assert_eq!(created.status, 200, "{created:?}");
    assert_eq!(post(&fr.url(), "/write?db=made", "m v=3").await.status, 204);
    wait_values(&a, "made", "", "m", &[3]).await;
    wait_values(&b, "made", "", "m", &[3]).await;
    // And dropped through fluxroute: refused at once.
    let dropped = post(&fr.url(), "/query?q=DROP+DATABASE+made", "").await;
    assert_eq!(dropped.status, 200, "{dropped:?}");
    assert_eq!(post(&fr.url(), "/write?db=made", "m v=4").await.status, 404);

    let refused = fr
        .metric("fluxroute_schema_answers_total{answer=\"database_not_found\"}")
        .await;
    assert!(refused >= Some(4.0), "{refused:?}");
    let held = fr.metric("fluxroute_schema_databases{cluster=\"a\"}").await;
    assert!(held >= Some(2.0), "{held:?}");
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_creates_databases_takes_the_write() {
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let (fr, _dir) = start(
        "",
        &[("a", &a, "create_databases = false"), ("b", &b, "")],
        &["*"],
    )
    .await;
    for c in ["a", "b"] {
        wait_schema(&fr, c, |s| s.known).await;
    }
    assert_eq!(
        post(&fr.url(), "/write?db=fresh", "m v=1").await.status,
        204
    );
    // b creates it; a refuses it later (a dead letter), as without views.
    wait_values(&b, "fresh", "", "m", &[1]).await;
    wait_dead_letter(&fr, "a", "database_not_found").await;
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_policy_no_cluster_has_is_refused_as_influxd_refuses_it() {
    let a = Influxd::start().unwrap();
    a.query("CREATE DATABASE d").unwrap();
    a.query("CREATE DATABASE oracle").unwrap();
    let (fr, _dir) = start(FAST_REFRESH, &[("a", &a, "")], &["d"]).await;
    wait_schema(&fr, "a", |s| s.known && s.retention_policies == 2).await;

    let now = now_s();
    // A good body, an empty one (influxd still looks the policy up), one partly bad: 500; a
    // body without a good line: the parse error. Nothing is stored.
    for body in [
        format!("m v=1 {now}"),
        String::new(),
        format!("bad\nm v=1 {now}"),
        "bad".to_owned(),
    ] {
        let ours = post(&fr.url(), "/write?db=d&rp=zz&precision=s", &body).await;
        let theirs = post(&a.url(), "/write?db=oracle&rp=zz&precision=s", &body).await;
        assert_same(&ours, &theirs);
    }
    let theirs = post(&a.url(), "/write?db=oracle&rp=zz", "m v=1").await;
    assert_eq!(theirs.status, 500);
    assert_eq!(
        theirs.body,
        "{\"error\":\"retention policy not found: zz\"}\n"
    );
    let v2 = post(&fr.url(), "/api/v2/write?bucket=d/zz", "m v=1").await;
    assert_eq!(v2.status, 500);
    let refused = fr
        .metric("fluxroute_schema_answers_total{answer=\"retention_policy_not_found\"}")
        .await;
    assert_eq!(refused, Some(4.0));

    // Created through fluxroute: taken at once and stored in it.
    let created = post(
        &fr.url(),
        "/query?q=CREATE+RETENTION+POLICY+zz+ON+d+DURATION+2h+REPLICATION+1",
        "",
    )
    .await;
    assert_eq!(created.status, 200, "{created:?}");
    let taken = post(
        &fr.url(),
        "/write?db=d&rp=zz&precision=s",
        &format!("m v=7 {now}"),
    )
    .await;
    assert_eq!(taken.status, 204, "{taken:?}");
    wait_values(&a, "d", "zz", "m", &[7]).await;
    assert!(values(&a, "d", "", "m").is_empty());
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_beyond_retention_are_dropped_as_influxd_drops_them() {
    let a = Influxd::start().unwrap();
    for db in ["r", "oracle"] {
        a.query(&format!("CREATE DATABASE {db}")).unwrap();
        a.query(&format!(
            "CREATE RETENTION POLICY short ON {db} DURATION 1h REPLICATION 1 DEFAULT"
        ))
        .unwrap();
    }
    let (fr, _dir) = start("", &[("a", &a, "")], &["r"]).await;
    wait_schema(&fr, "a", |s| s.known && s.retention_policies == 4).await;

    let now = now_s();
    let (old, older) = (now - 86_400, now - 2 * 86_400);
    let cases = [
        // One old point among good ones: dropped and counted, the others stored.
        (format!("m v=1 {old}\nm v=2 {now}"), "", vec![2]),
        // All old: nothing stored, same answer.
        (format!("m v=3 {old}\nm v=4 {older}"), "", vec![2]),
        // A parse error is not mentioned then; the good point is stored.
        (
            format!("m v=5 {old}\nbad\nm v=6 {}", now + 1),
            "",
            vec![2, 6],
        ),
        // A `time` tag drop among the kept points wins, with its own count.
        (
            format!("m v=7 {old}\nm,time=1 v=8 {}\nm v=9 {}", now + 2, now + 3),
            "",
            vec![2, 6, 9],
        ),
        // The policy named explicitly keeps forever: nothing dropped.
        (format!("m v=10 {old}"), "autogen", vec![2, 6, 9]),
    ];
    for (body, rp, want) in cases {
        let path = |db: &str| format!("/write?db={db}&rp={rp}&precision=s");
        let ours = post(&fr.url(), &path("r"), &body).await;
        let theirs = post(&a.url(), &path("oracle"), &body).await;
        assert_same(&ours, &theirs);
        wait_values(&a, "r", "short", "m", &want).await;
        assert_eq!(values(&a, "oracle", "short", "m"), want);
    }
    // The first case's answer, word for word, and every dropped line counted.
    let last = post(
        &fr.url(),
        "/write?db=r&precision=s",
        &format!("m v=11 {old}\nbad\nm v=12 {}", now + 4),
    )
    .await;
    assert_eq!(last.status, 400);
    assert_eq!(
        last.body,
        "{\"error\":\"partial write: points beyond retention policy dropped=1\"}\n"
    );
    assert_eq!(last.dropped.as_deref(), Some("2"));
    wait_values(&a, "r", "short", "m", &[2, 6, 9, 12]).await;
    let answers = fr
        .metric("fluxroute_schema_answers_total{answer=\"beyond_retention\"}")
        .await;
    assert_eq!(answers, Some(5.0));
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_is_down_takes_writes_as_today() {
    let a = Influxd::start().unwrap();
    let (fr, _dir) = start(
        FAST_REFRESH,
        &[("a", &a, "create_databases = false")],
        &["*"],
    )
    .await;
    wait_schema(&fr, "a", |s| s.known).await;
    assert_eq!(post(&fr.url(), "/write?db=nope", "m v=1").await.status, 404);

    a.freeze();
    wait_schema(&fr, "a", |s| !s.known).await;
    let taken = post(&fr.url(), "/write?db=nope", "m v=1").await;
    assert_eq!(taken.status, 204, "{taken:?}");
    a.thaw();
    // Back up: the cluster refuses the write (a dead letter, as without views) and the view
    // is known again.
    wait_dead_letter(&fr, "a", "database_not_found").await;
    wait_schema(&fr, "a", |s| s.known).await;
    assert_eq!(post(&fr.url(), "/write?db=nope", "m v=1").await.status, 404);
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_turned_off_take_every_write() {
    let a = Influxd::start().unwrap();
    let (fr, _dir) = start(
        "[schema]\nenabled = false",
        &[("a", &a, "create_databases = false")],
        &["*"],
    )
    .await;
    let report = status(&fr).await;
    assert_eq!(report.clusters[0].schema, None);
    assert_eq!(post(&fr.url(), "/write?db=nope", "m v=1").await.status, 204);
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_type_conflicts_with_stored_fields_are_answered_as_influxd_answers_them() {
    let a = Influxd::start().unwrap();
    let now = now_s();
    for db in ["f", "oracle"] {
        a.query(&format!("CREATE DATABASE {db}")).unwrap();
        let first = post(
            &a.url(),
            &format!("/write?db={db}&precision=s"),
            &format!("m v=1,s=\"x\" {now}"),
        )
        .await;
        assert_eq!(first.status, 204, "{first:?}");
    }
    let (fr, _dir) = start(FAST_REFRESH, &[("a", &a, "")], &["f"]).await;
    wait_schema(&fr, "a", |s| {
        s.known && s.fields == 4 && s.measurements == 2
    })
    .await;

    let t = |i: i64| now + i;
    let cases = [
        // Only a conflicting point: still influxd's partial write, nothing stored.
        (format!("m v=2i {}", t(1)), vec![1]),
        // Mixed with good points: those are stored.
        (
            format!(
                "m v=3 {}\nm v=4i {}\nm v=5 {}\nm v=6i {}",
                t(3),
                t(4),
                t(5),
                t(6)
            ),
            vec![1, 3, 5],
        ),
        // New fields conflicting among themselves too: influxd's retry decides.
        (
            format!(
                "m v=9i {}\nm v=10 {}\nm w=1 {}\nm w=2i {}",
                t(9),
                t(10),
                t(11),
                t(12)
            ),
            vec![1, 3, 5, 10],
        ),
        // A `time` tag's reason wins; a parse error is not mentioned.
        (
            format!("m s=1 {}\nm v=14 {}\nm,time=x v=1 {}", t(13), t(14), t(15)),
            vec![1, 3, 5, 10, 14],
        ),
        (
            format!("m v=16i {}\nbad\nm v=17 {}", t(16), t(17)),
            vec![1, 3, 5, 10, 14, 17],
        ),
        // The retry's new fields conflict again: the plain answer, nothing written.
        (
            format!(
                "m v=2i {}\nm a=1 {}\nm a=1i {}\nm b=1,v=30 {}\nm b=t {}",
                t(26),
                t(27),
                t(28),
                t(29),
                t(30)
            ),
            vec![1, 3, 5, 10, 14, 17],
        ),
    ];
    for (body, want) in cases {
        let path = |db: &str| format!("/write?db={db}&precision=s");
        let ours = post(&fr.url(), &path("f"), &body).await;
        let theirs = post(&a.url(), &path("oracle"), &body).await;
        assert_eq!(theirs.status, 400, "{theirs:?}");
        assert_same(&ours, &theirs);
        wait_values(&a, "f", "", "m", &want).await;
        assert_eq!(values(&a, "oracle", "", "m"), want);
    }
    // Word for word, with every dropped line counted.
    let last = post(
        &fr.url(),
        "/write?db=f&precision=s",
        &format!("m v=18i {}\nbad\nm v=19 {}", t(18), t(19)),
    )
    .await;
    assert_eq!(
        last.body,
        "{\"error\":\"partial write: field type conflict: input field \\\"v\\\" on measurement \
         \\\"m\\\" is type integer, already exists as type float dropped=1\"}\n"
    );
    assert_eq!(last.dropped.as_deref(), Some("2"));
    let answers = fr
        .metric("fluxroute_schema_answers_total{answer=\"field_type_conflict\"}")
        .await;
    assert_eq!(answers, Some(7.0));

    // A field first written through fluxroute has the type it was written with, at once.
    for (body, status) in [
        (format!("m n=1i {}", t(20)), 204),
        (format!("m n=2 {}", t(21)), 400),
    ] {
        let path = |db: &str| format!("/write?db={db}&precision=s");
        let ours = post(&fr.url(), &path("f"), &body).await;
        let theirs = post(&a.url(), &path("oracle"), &body).await;
        assert_eq!(theirs.status, status, "{theirs:?}");
        assert_same(&ours, &theirs);
    }
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_conflict_not_known_on_every_cluster_is_taken_as_today() {
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    for i in [&a, &b] {
        i.query("CREATE DATABASE f").unwrap();
    }
    // Only a holds `v` as a float.
    assert_eq!(post(&a.url(), "/write?db=f", "m v=1").await.status, 204);
    let (fr, _dir) = start(FAST_REFRESH, &[("a", &a, ""), ("b", &b, "")], &["f"]).await;
    wait_schema(&fr, "a", |s| s.known && s.fields == 1).await;
    wait_schema(&fr, "b", |s| s.known).await;
    // b creates `v` as an integer, a refuses it (a dead letter).
    let taken = post(&fr.url(), "/write?db=f", "m v=2i").await;
    assert_eq!(taken.status, 204, "{taken:?}");
    wait_values(&b, "f", "", "m", &[2]).await;
    wait_dead_letter(&fr, "a", "field_type_conflict").await;
    fr.stop().await.unwrap();

    // One cluster, down: its view is unknown and the conflict is taken as without views.
    let (fr, _dir) = start(FAST_REFRESH, &[("a", &a, "")], &["f"]).await;
    wait_schema(&fr, "a", |s| s.known && s.fields == 1).await;
    assert_eq!(post(&fr.url(), "/write?db=f", "m v=3i").await.status, 400);
    a.freeze();
    wait_schema(&fr, "a", |s| !s.known).await;
    let taken = post(&fr.url(), "/write?db=f", "m v=4i").await;
    assert_eq!(taken.status, 204, "{taken:?}");
    a.thaw();
    wait_dead_letter(&fr, "a", "field_type_conflict").await;
    wait_schema(&fr, "a", |s| s.known).await;
    assert_eq!(post(&fr.url(), "/write?db=f", "m v=5i").await.status, 400);
    assert_eq!(values(&a, "f", "", "m"), vec![1]);
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_refusing_a_field_type_refreshes_its_view_at_once() {
    let a = Influxd::start().unwrap();
    a.query("CREATE DATABASE f").unwrap();
    // Refreshed by the interval only once, at start: what follows comes from the drain's hint.
    let (fr, _dir) = start(
        "[schema]\nrefresh_interval = \"1h\"",
        &[("a", &a, "")],
        &["f"],
    )
    .await;
    wait_schema(&fr, "a", |s| s.known && s.fields == 0).await;
    // `v` is created as an integer on the cluster itself: the view does not know it.
    assert_eq!(post(&a.url(), "/write?db=f", "m v=1i").await.status, 204);
    let taken = post(&fr.url(), "/write?db=f", "m v=2.5").await;
    assert_eq!(taken.status, 204, "{taken:?}");
    wait_dead_letter(&fr, "a", "field_type_conflict").await;
    // The refusal woke the refresher: the view now holds `v` as an integer, and a float is
    // refused at the edge as influxd refuses it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = post(&fr.url(), "/write?db=f", "m v=3.5").await;
        if r.status == 400 {
            assert!(
                r.body
                    .contains("is type float, already exists as type integer"),
                "{r:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the view never learned the cluster's type: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(values(&a, "f", "", "m"), vec![1]);
    fr.stop().await.unwrap();
}
