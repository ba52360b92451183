//! Observability and deployment files checked against the real thing: the metrics catalogue
//! (`docs/metrics.md`) against what a running fluxroute exports; the Grafana dashboards and the
//! alert rules (`dashboards/`) evaluated by a real Prometheus (Debian's `prometheus` package)
//! scraping fluxroute while one cluster is down. The deployment files are checked in
//! `tests/deploy.rs`.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "observability/catalogue.rs"]
mod catalogue;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use catalogue::{catalogue_mismatches, documented_families, parse_exposition};
use fluxroute::influx::{ReasonClass, RetryClass};
use fluxroute::loadgen::{run, LoadgenArgs};
use serde_json::Value;
use support::broker::{Broker, Storage};
use support::config::Setup;
use support::fluxroute::Fluxroute;
use support::influxd::Influxd;
use support::prometheus::{Prometheus, INSTALL_HINT, PROMETHEUS_BIN};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PROMTOOL_BIN: &str = "/usr/bin/promtool";

fn root(path: &str) -> PathBuf {
    Path::new(ROOT).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn require_bin(path: &str) {
    assert!(Path::new(path).exists(), "{path} not found: {INSTALL_HINT}");
}

// ------------------------------------------------------------------------------------------
// PromQL expressions of the dashboards.

/// Every PromQL expression of a dashboard: `(where, expr)` for panel targets, annotations and
/// query variables (`label_values(m, l)` becomes `group by (l) (m)`).
fn dashboard_queries(file: &str) -> Vec<(String, String)> {
    let dash: Value = serde_json::from_str(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut out = Vec::new();
    collect_exprs(&dash, file, &mut out);
    for v in dash["templating"]["list"].as_array().unwrap() {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .unwrap_or_else(|| panic!("{file}: variable {} has no query", v["name"]));
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{file}: variable query {q:?} is not label_values(...)"));
        let (metric, label) = inner.rsplit_once(',').unwrap();
        out.push((
            format!("{file} variable {}", v["name"]),
            format!("group by ({}) ({})", label.trim(), metric.trim()),
        ));
    }
    out
}

fn collect_exprs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            let here = m
                .get("title")
                .or_else(|| m.get("name"))
                .and_then(Value::as_str)
                .map_or_else(|| at.to_owned(), |t| format!("{at} / {t}"));
            for (k, child) in m {
                match (k.as_str(), child) {
                    ("expr", Value::String(e)) => out.push((here.clone(), e.clone())),
                    _ => collect_exprs(child, &here, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| collect_exprs(c, at, out)),
        _ => {}
    }
}

/// Replaces Grafana's variables as Grafana would for one selection; panics on any left over.
fn substitute(expr: &str, vars: &[(&str, &str)]) -> String {
    let mut s = expr.to_owned();
    // Longest names first so `$__rate_interval` is not cut by a shorter one.
    let mut vars = vars.to_vec();
    vars.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (k, v) in vars {
        s = s
            .replace(&format!("${{{k}}}"), v)
            .replace(&format!("${k}"), v);
    }
    assert!(!s.contains('$'), "unknown template variable left in {s:?}");
    s
}

/// Metric names a PromQL expression mentions that start with `fluxroute_` (string literals
/// skipped, so label values never count).
fn fluxroute_metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = expr.chars().peekable();
    let mut word = String::new();
    let mut flush = |word: &mut String| {
        if word.starts_with("fluxroute_") {
            names.insert(std::mem::take(word));
        }
        word.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                flush(&mut word);
                let mut escaped = false;
                for d in chars.by_ref() {
                    match d {
                        '\\' if !escaped => escaped = true,
                        d if d == c && !escaped => break,
                        _ => escaped = false,
                    }
                }
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == ':' => word.push(c),
            _ => flush(&mut word),
        }
    }
    flush(&mut word);
    names
}

#[test]
fn promql_names_skip_strings_and_labels() {
    let names = fluxroute_metric_names(
        r#"sum by (cluster) (rate(fluxroute_a_total{x="fluxroute_not",y=~'fluxroute_no'}[1m])) / fluxroute_b"#,
    );
    assert_eq!(
        names,
        BTreeSet::from(["fluxroute_a_total".into(), "fluxroute_b".into()])
    );
    assert_eq!(
        substitute(
            "rate(x{c=~\"$cluster\",i=~\"${instance}\"}[$__rate_interval])",
            &[
                ("cluster", "b"),
                ("instance", "h:1"),
                ("__rate_interval", "1m")
            ]
        ),
        "rate(x{c=~\"b\",i=~\"h:1\"}[1m])"
    );
}

// ------------------------------------------------------------------------------------------
// fluxroute with traffic and one cluster down.

const TOPIC: &str = "writes";

async fn scrape(fr: &Fluxroute) -> String {
    let r = support::http_client()
        .get(format!("{}/metrics", fr.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// Waits until the sum of the sample lines starting with `prefix` satisfies `ok`.
async fn wait_sample(fr: &Fluxroute, prefix: &str, ok: impl Fn(f64) -> bool, within: Duration) {
    let probe = async || {
        // Summed: a prefix such as `..._total{cluster="a"` covers every reason's series.
        let v = support::sample_sum(&scrape(fr).await, prefix);
        if v.is_some_and(&ok) {
            Ok(())
        } else {
            Err(format!("{v:?}"))
        }
    };
    support::poll_until(prefix, within, Duration::from_millis(100), probe).await;
}

async fn post_write(fr: &Fluxroute, db: &str, body: &str) -> u16 {
    support::http_client()
        .post(format!("{}/write?db={db}", fr.url()))
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The alerting rules file with every `for:` set to 0s, so alerts fire on first evaluation.
fn rules_without_for() -> String {
    read("dashboards/alerts.yml")
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 0s", &l[..l.len() - l.trim_start().len()]),
            None => l.to_owned(),
        })
        .fold(String::new(), |mut s, l| {
            let _ = writeln!(s, "{l}");
            s
        })
}

/// Waits until Prometheus has a series for `expr`.
async fn wait_series(prom: &Prometheus, expr: &str, within: Duration) {
    let probe = async || {
        let r = prom.query(expr).await;
        if r.as_ref()
            .is_ok_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        {
            Ok(())
        } else {
            Err(format!("{r:?}\n{}", prom.log_tail()))
        }
    };
    let what = format!("a Prometheus series for {expr}");
    support::poll_until(&what, within, Duration::from_millis(200), probe).await;
}

/// Writes a field type conflict across two requests (each is fine alone; both clusters
/// dead-letter the second) and a line InfluxDB would refuse (rejected, answered 400); waits
/// until both clusters dead-lettered. The conflict goes to a retention policy other than the
/// default, whose field types the schema views do not hold: fluxroute takes both requests.
async fn write_refused_lines(fr: &Fluxroute, measurement: &str, dead_letters: f64) {
    for q in [
        "CREATE DATABASE conflicts",
        "CREATE RETENTION POLICY other ON conflicts DURATION 0s REPLICATION 1",
    ] {
        let created = support::http_client()
            .post(format!("{}/query", fr.url()))
            .form(&[("q", q)])
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 200);
    }
    for body in [
        format!("{measurement},host=x v=1i 1000\n"),
        format!("{measurement},host=x v=1.5 2000\n"),
    ] {
        assert_eq!(post_write(fr, "conflicts&rp=other", &body).await, 204);
    }
    assert_eq!(
        post_write(fr, "conflicts", "not line protocol\n").await,
        400
    );
    for c in ["a", "b"] {
        wait_sample(
            fr,
            &format!("fluxroute_drain_dead_letters_total{{cluster=\"{c}\""),
            |v| v >= dead_letters,
            Duration::from_secs(30),
        )
        .await;
    }
}

/// The whole chain with a real Prometheus scraping fluxroute every second and evaluating
/// dashboards/alerts.yml (every `for:` set to 0s) every second, while fluxroute carries traffic
/// into two clusters, dead-letters a field type conflict, rejects a bad line, and loses one
/// cluster (killed, then rerouted to its standby). Checks:
/// 1. docs/metrics.md against the scrape, both ways, with types and labels;
/// 2. every rule loads and evaluates without error; each alert has `severity`, `summary` and
///    `runbook`;
/// 3. through `/api/v1/alerts`: FluxrouteClusterDown fires for the killed cluster only, and
///    FluxrouteRerouteActive, FluxrouteDeadLettersGrowing and FluxrouteLinesRejected fire too;
///    FluxrouteInstanceDown, FluxrouteQueueUnreachable, FluxrouteIngestErrors and
///    FluxrouteClusterMisconfigured do not;
/// 4. every dashboard query (panels, annotations, variables) and every rule expression
///    evaluates through `/api/v1/query` without error and names only metrics fluxroute
///    exports; dashboard queries return data unless listed as possibly empty.
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_evaluates_every_dashboard_query_and_rule_and_fires_cluster_down() {
    require_bin(PROMETHEUS_BIN);
    let broker = Broker::start(Storage::Memory);
    let (a, mut b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let config = Setup::kafka(&broker.bootstrap())
        .topic(TOPIC)
        .partitions(4)
        .section("[ingest]\nenqueue_timeout = \"5s\"")
        .cluster("a", &a.url())
        .cluster_with("b", &b.url(), "standby = \"a\"\nreroute_after = \"1s\"")
        .route(&["*"], &["a", "b"])
        .toml();
    let fr = Fluxroute::start(&config).await;

    // Every (cluster x reason class) series exists at 0 from start-up, before any event, so
    // increase() sees a first burst.
    let first = scrape(&fr).await;
    for c in ["a", "b"] {
        let mut want: Vec<String> = Vec::new();
        for r in ReasonClass::ALL.map(ReasonClass::as_str) {
            for family in [
                "fluxroute_drain_dead_letters_total",
                "fluxroute_drain_dead_letter_lines_total",
            ] {
                want.push(format!("{family}{{cluster=\"{c}\",reason=\"{r}\"}} 0"));
            }
        }
        for r in RetryClass::ALL.map(RetryClass::as_str) {
            want.push(format!(
                "fluxroute_drain_retries_total{{cluster=\"{c}\",reason=\"{r}\"}} 0"
            ));
        }
        for w in want {
            assert!(first.lines().any(|l| l == w), "no {w:?} at start-up");
        }
    }

    // Prometheus scraping fluxroute every second, the rules evaluated every second.
    let pdir = tempfile::tempdir().unwrap();
    std::fs::write(pdir.path().join("alerts.yml"), rules_without_for()).unwrap();
    let prom = Prometheus::start(
        pdir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: fluxroute\n    static_configs:\n      - targets: ['{}']\n",
            pdir.path().join("alerts.yml").display(),
            fr.admin
        ),
    )
    .await;
    let instance = fr.admin.to_string();

    // Refused lines twice, Prometheus scraping in between: the counters' series exist before
    // they grow, so increase() and rate() see the growth.
    write_refused_lines(&fr, "m1", 1.0).await;
    for series in [
        r#"fluxroute_drain_dead_letter_lines_total{cluster="b"}"#,
        r#"fluxroute_ingest_lines_total{outcome="rejected"}"#,
    ] {
        wait_series(&prom, series, Duration::from_secs(30)).await;
    }
    write_refused_lines(&fr, "m2", 2.0).await;

    // Steady traffic; cluster b is killed while it flows.
    let url = fr.url();
    let args = LoadgenArgs {
        rate: Some(3000),
        duration: support::seconds(5),
        ..support::load(&url, None)
    };
    let load = tokio::spawn(async move { run(&args).await.unwrap() });
    wait_sample(
        &fr,
        "fluxroute_drain_lines_written_total{cluster=\"b\"}",
        |v| v >= 1000.0,
        Duration::from_secs(30),
    )
    .await;
    b.kill();
    for (prefix, want) in [
        ("fluxroute_cluster_up{cluster=\"b\"}", 0.0),
        ("fluxroute_cluster_reroute_active{cluster=\"b\"}", 1.0),
    ] {
        wait_sample(&fr, prefix, |v| v == want, Duration::from_secs(15)).await;
    }
    // Writes in flight when b died are retried (transport errors).
    wait_sample(
        &fr,
        "fluxroute_drain_retries_total{cluster=\"b\"",
        |v| v >= 1.0,
        Duration::from_secs(15),
    )
    .await;
    let report = load.await.unwrap();
    assert_eq!(report.requests_failed, 0, "{report}");
    wait_sample(
        &fr,
        "fluxroute_drain_lag_records{cluster=\"b\"}",
        |v| v > 0.0,
        Duration::from_secs(15),
    )
    .await;

    // (1) The catalogue against the scrape.
    let documented = documented_families();
    let exposition = parse_exposition(&scrape(&fr).await);
    let mismatches = catalogue_mismatches(&documented, &exposition);
    assert!(
        mismatches.is_empty(),
        "docs/metrics.md and /metrics disagree:\n{}",
        mismatches.join("\n")
    );

    // Every sample name is in Prometheus, scraped a few seconds ago already (rates need two
    // samples).
    let scraped = async || {
        let have: BTreeSet<String> = prom
            .query(r#"count by (__name__) ({__name__=~"fluxroute_.+"} offset 2s)"#)
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["metric"]["__name__"].as_str().map(str::to_owned))
            .collect();
        let missing: Vec<&String> = exposition
            .sample_names
            .iter()
            .filter(|n| n.starts_with("fluxroute_") && !have.contains(*n))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("missing {missing:?}:\n{}", prom.log_tail()))
        }
    };
    let every = Duration::from_millis(200);
    let within = Duration::from_secs(30);
    support::poll_until("Prometheus scraped every sample", within, every, scraped).await;

    // (2) Every rule loaded, evaluated and healthy.
    let evaluated = async || {
        let data = prom.api("/api/v1/rules", &[]).await.unwrap();
        let rules: Vec<Value> = data["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .collect();
        if !rules.is_empty() && rules.iter().all(|r| r["health"] != "unknown") {
            Ok(rules)
        } else {
            Err(format!("{data}\n{}", prom.log_tail()))
        }
    };
    let rules = support::poll_until("every rule evaluated", within, every, evaluated).await;
    let mut problems = Vec::new();
    for r in &rules {
        let name = r["name"].as_str().unwrap();
        if r["health"] != "ok" {
            problems.push(format!("rule {name}: {} {}", r["health"], r["lastError"]));
        }
        if r["type"] == "alerting" {
            for key in ["summary", "runbook"] {
                if r["annotations"][key].as_str().is_none_or(str::is_empty) {
                    problems.push(format!("alert {name} has no {key} annotation"));
                }
            }
            if r["labels"]["severity"].as_str().is_none() {
                problems.push(format!("alert {name} has no severity label"));
            }
        }
    }

    // (3) The alerts this scenario must fire, and only those.
    let must_fire = [
        ("FluxrouteClusterDown", "b"),
        ("FluxrouteRerouteActive", "b"),
        ("FluxrouteDeadLettersGrowing", "a"),
        ("FluxrouteDeadLettersGrowing", "b"),
        ("FluxrouteLinesRejected", instance.as_str()),
    ];
    let must_not_fire = [
        "FluxrouteInstanceDown",
        "FluxrouteQueueUnreachable",
        "FluxrouteIngestErrors",
        "FluxrouteClusterMisconfigured",
        "FluxrouteQueueBudgetNearlyFull",
    ];
    let fired = async || {
        let alerts = prom.api("/api/v1/alerts", &[]).await.unwrap()["alerts"].clone();
        let firing: BTreeSet<(String, String)> = alerts
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                let l = &a["labels"];
                let who = l["cluster"]
                    .as_str()
                    .or(l["instance"].as_str())
                    .unwrap_or("");
                (l["alertname"].as_str().unwrap().to_owned(), who.to_owned())
            })
            .collect();
        let unexpected: Vec<&(String, String)> = firing
            .iter()
            .filter(|(n, who)| {
                must_not_fire.contains(&n.as_str()) || (n == "FluxrouteClusterDown" && who != "b")
            })
            .collect();
        assert!(
            unexpected.is_empty(),
            "alerts that must not fire: {unexpected:?}"
        );
        let pending: Vec<&(&str, &str)> = must_fire
            .iter()
            .filter(|(n, who)| !firing.contains(&((*n).to_owned(), (*who).to_owned())))
            .collect();
        if pending.is_empty() {
            Ok(())
        } else {
            Err(format!("not firing: {pending:?}; firing: {firing:?}"))
        }
    };
    support::poll_until("the scenario's alerts firing", within, every, fired).await;

    // (4) Every dashboard query and every rule expression through the query API.
    let vars = [
        ("datasource", "prometheus"),
        ("cluster", "b"),
        ("instance", instance.as_str()),
        ("__rate_interval", "1m"),
        ("__interval", "15s"),
        ("__range", "1h"),
    ];
    // Legitimately empty here: cluster b's backlog only grows; nothing is answered 503.
    let may_be_empty = ["Catch-up estimate", "503 answers / s"];
    let mut queries: Vec<(String, String)> =
        ["dashboards/overview.json", "dashboards/cluster-health.json"]
            .iter()
            .flat_map(|f| dashboard_queries(f))
            .map(|(at, e)| (at, substitute(&e, &vars)))
            .collect();
    assert!(
        queries.len() >= 30,
        "only {} dashboard queries",
        queries.len()
    );
    queries.extend(rules.iter().map(|r| {
        (
            format!("dashboards/alerts.yml / {}", r["name"].as_str().unwrap()),
            r["query"].as_str().unwrap().to_owned(),
        )
    }));
    let doc = read("docs/metrics.md");
    let embedded_only: Vec<String> = doc[doc
        .find("## Embedded queue catalogue")
        .expect("embedded section")..]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    let mut empty = Vec::new();
    for (at, expr) in &queries {
        for name in fluxroute_metric_names(expr) {
            // Families of the embedded queue are checked by tests/embedded_e2e.rs.
            if !exposition.sample_names.contains(&name) && !embedded_only.contains(&name) {
                problems.push(format!(
                    "{at}: {name} is not exported by fluxroute ({expr})"
                ));
            }
        }
        match prom.query(expr).await {
            Err(e) => problems.push(format!("{at}: {e} ({expr})")),
            Ok(result) => {
                let is_empty = result.as_array().is_some_and(Vec::is_empty);
                if is_empty
                    && !at.contains("alerts.yml")
                    && !may_be_empty.iter().any(|m| at.ends_with(m))
                {
                    empty.push(format!("{at}: {expr}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        empty.is_empty(),
        "dashboard queries without data while fluxroute carries traffic:\n{}",
        empty.join("\n")
    );
    drop(prom);
    drop(a);
}

// ------------------------------------------------------------------------------------------
// Static checks: promtool, dashboard structure.

/// `promtool check rules` on the shipped rules, and `promtool check config` on
/// deploy/prometheus.yml with its rule path pointed at the shipped rules.
#[test]
fn promtool_accepts_the_rules_and_the_compose_prometheus_config() {
    require_bin(PROMTOOL_BIN);
    let out = Command::new(PROMTOOL_BIN)
        .args(["check", "rules"])
        .arg(root("dashboards/alerts.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let rules = root("dashboards/alerts.yml").display().to_string();
    let config =
        read("deploy/prometheus.yml").replace("/etc/prometheus/rules/fluxroute.yml", &rules);
    assert!(
        config.contains(&rules),
        "deploy/prometheus.yml does not load the rules file"
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let out = Command::new(PROMTOOL_BIN)
        .args(["check", "config"])
        .arg(dir.path().join("prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check config:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Both dashboards: unique uids and panel ids, a Prometheus `datasource` variable that every
/// panel, target and annotation uses, `cluster` and `instance` query variables, and every
/// non-row panel with at least one query.
#[test]
fn dashboards_use_the_datasource_variable_and_have_cluster_and_instance() {
    let mut uids = BTreeSet::new();
    for file in ["dashboards/overview.json", "dashboards/cluster-health.json"] {
        let d: Value = serde_json::from_str(&read(file)).unwrap();
        assert!(
            uids.insert(d["uid"].as_str().unwrap().to_owned()),
            "{file}: uid reused"
        );
        let vars: BTreeMap<&str, &Value> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["name"].as_str().unwrap(), v))
            .collect();
        assert_eq!(vars["datasource"]["type"], "datasource", "{file}");
        assert_eq!(vars["datasource"]["query"], "prometheus", "{file}");
        for v in ["cluster", "instance"] {
            assert_eq!(
                vars.get(v).map(|v| &v["type"]),
                Some(&Value::from("query")),
                "{file}: {v}"
            );
            assert_eq!(vars[v]["datasource"]["uid"], "${datasource}", "{file}: {v}");
        }
        let mut ids = BTreeSet::new();
        let panels = d["panels"].as_array().unwrap();
        for p in panels {
            let title = p["title"].as_str().unwrap();
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{file}: panel id of {title} reused"
            );
            assert!(
                p["gridPos"]["w"].as_u64().is_some(),
                "{file}: {title} has no gridPos"
            );
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{file}: {title}");
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{file}: {title} has no query");
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{file}: {title}");
                assert!(
                    t["expr"].as_str().is_some_and(|e| !e.is_empty()),
                    "{file}: {title}"
                );
            }
        }
        for a in d["annotations"]["list"].as_array().unwrap() {
            if a.get("expr").is_some() {
                assert_eq!(
                    a["datasource"]["uid"], "${datasource}",
                    "{file}: {}",
                    a["name"]
                );
            }
        }
    }
    let health: Value = serde_json::from_str(&read("dashboards/cluster-health.json")).unwrap();
    assert!(
        health["annotations"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["expr"]
                .as_str()
                .is_some_and(|e| e.contains("fluxroute_cluster_reroute_active"))),
        "cluster-health shows reroute periods as annotations"
    );
}
