//! Tests of the config module: defaults, every validation rule (message and line), `${VAR}`
//! expansion, redaction, unknown keys, several problems in one report, the example files.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::defaults as d;
use super::*;

fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn ok(text: &str) -> Config {
    match parse(text, "test.toml", &HashMap::new()) {
        Ok(config) => config,
        Err(e) => panic!("unexpected problems:\n{e}"),
    }
}

fn problems(text: &str) -> Vec<(Option<usize>, String)> {
    problems_with(text, &HashMap::new())
}

fn problems_with(text: &str, env: &HashMap<String, String>) -> Vec<(Option<usize>, String)> {
    match parse(text, "test.toml", env) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(e) => e
            .problems
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect(),
    }
}

/// Asserts that `text` has exactly one problem, on `line`, whose message contains `needle`.
#[track_caller]
fn one_problem(text: &str, line: usize, needle: &str) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "expected one problem, got {found:#?}");
    assert_eq!(found[0].0, Some(line), "wrong line: {found:#?}");
    assert!(
        found[0].1.contains(needle),
        "{:?} does not contain {needle:?}",
        found[0].1
    );
}

const TWO_CLUSTERS: &str = r#"
[[clusters]]
name = "a"
endpoints = ["http://127.0.0.1:1"]

[[clusters]]
name = "b"
endpoints = ["http://127.0.0.1:2"]
"#;

fn with_clusters(more: &str) -> String {
    format!("{TWO_CLUSTERS}{more}")
}

// ---------------------------------------------------------------- defaults

#[test]
fn empty_file_is_all_defaults() {
    let c = ok("");
    assert_eq!(
        c.ingest.listen,
        "127.0.0.1:8086".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.ingest.max_body_bytes.get(), 25_000_000);
    assert_eq!(c.ingest.max_concurrent_requests.get(), 256);
    assert_eq!(c.ingest.enqueue_timeout, Duration::from_secs(10));
    assert_eq!(c.ingest.retry_after, Duration::from_secs(1));
    assert!(c.ingest.users.is_empty());
    assert!(!c.ingest.requires_auth());

    assert_eq!(c.queue.backend, QueueBackend::Embedded);
    assert_eq!(c.queue.embedded.dir, PathBuf::from("var/queue"));
    assert_eq!(c.queue.embedded.fsync, Fsync::Always);
    assert_eq!(c.queue.embedded.fsync_interval, Duration::from_millis(100));
    assert_eq!(c.queue.embedded.partitions.get(), 4);
    assert_eq!(c.queue.kafka.bootstrap_servers(), "127.0.0.1:9092");
    assert_eq!(c.queue.kafka.topic, "fluxroute-writes");
    assert_eq!(c.queue.kafka.partitions.get(), 12);
    assert_eq!(c.queue.kafka.replication_factor.get(), 1);
    assert_eq!(c.queue.kafka.max_record_bytes.get(), 1_000_000);
    assert_eq!(c.queue.kafka.linger, Duration::from_millis(5));
    assert_eq!(c.queue.kafka.produce_timeout, Duration::from_secs(30));
    assert!(c.queue.kafka.properties.is_empty());

    assert_eq!(
        c.admin.listen,
        "127.0.0.1:8087".parse::<SocketAddr>().unwrap()
    );
    assert!(c.admin.token.is_none());
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.log.level, "info");
    assert_eq!(c.shutdown.grace, Duration::from_secs(30));
    assert!(c.clusters.is_empty());
    assert!(c.routes.is_empty());
    assert!(!c.covers_database("telegraf"));
}

#[test]
fn empty_sections_are_all_defaults() {
    let c = ok("[ingest]\n[queue]\n[queue.embedded]\n[queue.kafka]\n[queue.kafka.properties]\n[admin]\n[log]\n[shutdown]\n");
    assert_eq!(c.redacted_json(), ok("").redacted_json());
}

#[test]
fn cluster_route_and_user_defaults() {
    let c = ok(r#"
[[ingest.users]]
name = "u"
password = "p"

[[clusters]]
name = "a"
endpoints = ["http://127.0.0.1:8186"]

[[routes]]
databases = ["db"]
clusters = ["a"]
"#);
    let u = &c.ingest.users[0];
    assert_eq!(u.databases.len(), 1);
    assert_eq!(u.databases[0].as_str(), "*");
    assert!(u.may_write("anything"));
    assert!(u.token.is_none());

    let a = c.cluster("a").unwrap();
    assert_eq!(a.api(), ClusterApi::V1);
    assert_eq!(a.auth, ClusterAuth::V1 { credentials: None });
    assert_eq!(a.standby, None);
    assert_eq!(a.reroute_after, Duration::from_secs(30));
    assert_eq!(a.timeout, Duration::from_secs(10));
    assert_eq!(a.batch_max_lines.get(), 5000);
    assert_eq!(a.batch_max_bytes.get(), 4_000_000);
    assert_eq!(a.batch_linger, Duration::from_millis(200));
    assert_eq!(a.max_in_flight.get(), 8);
    assert!(a.create_databases);
    assert_eq!(a.catchup_rate, None);
    assert!(a.gzip);
    assert_eq!(a.health_interval, Duration::from_secs(5));
    assert_eq!(a.health_timeout, Duration::from_secs(2));
    assert_eq!(a.health_rise.get(), 2);
    assert_eq!(a.health_fall.get(), 3);

    let r = &c.routes[0];
    assert_eq!(r.retention_policies[0].as_str(), "*");
    assert_eq!(r.measurements[0].as_str(), "*");
    assert!(r.rename.is_empty());
}

#[test]
fn defaults_constants_match_the_defaults_used() {
    let c = ok("");
    assert_eq!(c.ingest.listen, d::INGEST_LISTEN);
    assert_eq!(c.ingest.max_body_bytes, d::MAX_BODY_BYTES);
    assert_eq!(c.queue.backend, d::QUEUE_BACKEND);
    assert_eq!(c.queue.kafka.topic, d::KAFKA_TOPIC);
    assert_eq!(c.admin.listen, d::ADMIN_LISTEN);
    assert_eq!(c.shutdown.grace, d::SHUTDOWN_GRACE);
}

#[test]
fn full_config_values() {
    let c = ok(r#"
[ingest]
listen = "[::]:9999"
max_body_bytes = 1000
max_concurrent_requests = 3
enqueue_timeout = "2s"
retry_after = "1500ms"

[queue]
backend = "kafka"
[queue.embedded]
dir = "/var/lib/fluxroute"
fsync = "interval"
fsync_interval = "1s"
partitions = 2
[queue.kafka]
brokers = ["k1:9092", "[::1]:9093"]
topic = "t.x-y_z"
partitions = 3
replication_factor = 2
max_record_bytes = 1024
linger = "0s"
produce_timeout = "1m"
[queue.kafka.properties]
"compression.type" = "zstd"
"batch.size" = 1000
"socket.keepalive.enable" = false

[log]
format = "json"
level = "debug,fluxroute=trace"

[shutdown]
grace = "5s"

[[clusters]]
name = "v2-cluster"
api = "v2"
endpoints = ["https://influx.example.com/prefix/", "http://10.0.0.1:8086"]
org = "ops"
token = "tok"
standby = "old_1"
catchup_rate = 1000
gzip = false
create_databases = false
batch_linger = "0s"
health_interval = "2s"
health_timeout = "2s"

[[clusters]]
name = "old_1"
endpoints = ["http://127.0.0.1:8186"]
username = "u"
password = "p"
"#);
    assert_eq!(c.ingest.listen.port(), 9999);
    assert_eq!(c.ingest.retry_after_secs(), 2);
    assert_eq!(c.queue.backend, QueueBackend::Kafka);
    assert_eq!(c.queue.embedded.fsync, Fsync::Interval);
    assert_eq!(c.queue.kafka.bootstrap_servers(), "k1:9092,[::1]:9093");
    assert_eq!(c.queue.kafka.linger, Duration::ZERO);
    assert_eq!(c.queue.kafka.properties.get("batch.size"), Some("1000"));
    assert_eq!(
        c.queue.kafka.properties.get("socket.keepalive.enable"),
        Some("false")
    );
    assert_eq!(c.log.format, LogFormat::Json);
    let v2 = c.cluster("v2-cluster").unwrap();
    assert_eq!(v2.api(), ClusterApi::V2);
    match &v2.auth {
        ClusterAuth::V2 { org, token } => {
            assert_eq!(org, "ops");
            assert_eq!(token.expose(), "tok");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        v2.endpoints[0].to_string(),
        "https://influx.example.com:443/prefix"
    );
    assert_eq!(
        v2.endpoints[0].url("/api/v2/write"),
        "https://influx.example.com:443/prefix/api/v2/write"
    );
    assert_eq!(v2.catchup_rate.map(|r| r.get()), Some(1000));
    assert_eq!(
        c.standby_of("v2-cluster").map(|s| s.name.as_str()),
        Some("old_1")
    );
    assert!(c.standby_of("old_1").is_none());
    match &c.cluster("old_1").unwrap().auth {
        ClusterAuth::V1 {
            credentials: Some(basic),
        } => {
            assert_eq!(basic.username, "u");
            assert_eq!(basic.password.expose(), "p");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn choice_names_are_as_written() {
    assert_eq!(QueueBackend::Kafka.as_str(), "kafka");
    assert_eq!(Fsync::Interval.to_string(), "interval");
    assert_eq!(LogFormat::Json.as_str(), "json");
    assert_eq!(ClusterApi::V2.to_string(), "v2");
}

#[test]
fn retry_after_is_rounded_up_to_a_whole_second() {
    let secs = |s: &str| {
        ok(&format!("[ingest]\nretry_after = \"{s}\""))
            .ingest
            .retry_after_secs()
    };
    assert_eq!(secs("1ms"), 1);
    assert_eq!(secs("1s"), 1);
    assert_eq!(secs("1001ms"), 2);
    assert_eq!(secs("1m"), 60);
}

// ---------------------------------------------------------------- syntax, unknown keys, types

#[test]
fn syntax_error_has_its_line() {
    let found = problems("[ingest]\nlisten = \"127.0.0.1:1\"\nmax_body_bytes = \n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, Some(3));
    assert!(found[0].1.starts_with("TOML syntax:"), "{found:?}");
}

#[test]
fn unknown_key_has_line_and_valid_names() {
    one_problem(
        "[ingest]\n\nlisen = \"x\"\n",
        3,
        "ingest: unknown key `lisen`, expected one of `listen`, `max_body_bytes`",
    );
    one_problem(
        "[queue.kafak]\n",
        1,
        "queue: unknown key `kafak`, expected one of `backend`, `embedded`, `kafka`",
    );
    one_problem(
        "foo = 1\n",
        1,
        "unknown key `foo`, expected one of `ingest`, `queue`",
    );
    one_problem(
        &with_clusters("\n[[routes]]\ndatabases = [\"*\"]\nclusters = [\"a\"]\nrenames = {}\n"),
        13,
        "routes[0]: unknown key `renames`",
    );
}

#[test]
fn every_unknown_key_and_type_error_is_reported() {
    let found = problems(
        r#"[ingest]
lisen = "x"
max_body_bytes = "big"
[queue]
backend = "kafak"
[log]
colour = true
format = "xml"
"#,
    );
    let lines: Vec<_> = found.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        lines,
        [Some(2), Some(3), Some(5), Some(7), Some(8)],
        "{found:#?}"
    );
    assert!(found[1]
        .1
        .contains("ingest.max_body_bytes: invalid type: string \"big\", expected u64"));
    assert!(found[2]
        .1
        .contains("queue.backend: unknown variant `kafak`, expected `embedded` or `kafka`"));
    assert!(found[4]
        .1
        .contains("log.format: unknown variant `xml`, expected `text` or `json`"));
}

#[test]
fn mistyped_required_key_is_not_also_missing() {
    let found = problems("[[clusters]]\nname = 5\nendpoints = [\"http://h:1\"]\n");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].0, Some(2));
    assert!(
        found[0]
            .1
            .starts_with("clusters[0].name: invalid type: integer `5`"),
        "{found:#?}"
    );
}

#[test]
fn wrong_type_in_an_array_names_the_item() {
    one_problem(
        "[queue.kafka]\nbrokers = [\"a:1\",\n  5]\n",
        3,
        "queue.kafka.brokers[1]: invalid type: integer `5`",
    );
}

#[test]
fn negative_number_is_a_type_problem() {
    one_problem(
        "[ingest]\nmax_concurrent_requests = -1\n",
        2,
        "ingest.max_concurrent_requests: invalid value: integer `-1`",
    );
}

mod expansion_and_redaction;
mod files;
mod rules;
