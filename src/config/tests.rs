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

// ---------------------------------------------------------------- validation rules

#[test]
fn ingest_rules() {
    one_problem(
        "[ingest]\nlisten = \"localhost\"\n",
        2,
        "ingest.listen: invalid listen address \"localhost\"",
    );
    one_problem(
        "[ingest]\nmax_body_bytes = 0\n",
        2,
        "ingest.max_body_bytes: must be greater than 0",
    );
    one_problem(
        "[ingest]\nmax_concurrent_requests = 0\n",
        2,
        "ingest.max_concurrent_requests: must be greater than 0",
    );
    one_problem(
        "[ingest]\nenqueue_timeout = \"0s\"\n",
        2,
        "ingest.enqueue_timeout: must be greater than 0",
    );
    one_problem(
        "[ingest]\nretry_after = \"soon\"\n",
        2,
        "ingest.retry_after: invalid duration \"soon\"",
    );
}

#[test]
fn user_rules() {
    one_problem(
        "[[ingest.users]]\npassword = \"p\"\n",
        1,
        "ingest.users[0]: missing required key `name`",
    );
    one_problem(
        "[[ingest.users]]\nname = \"\"\npassword = \"p\"\n",
        2,
        "ingest.users[0].name: must not be empty",
    );
    one_problem(
        "[[ingest.users]]\nname = \"a:b\"\npassword = \"p\"\n",
        2,
        "ingest.users[0].name: must not contain `:`",
    );
    one_problem(
        "[[ingest.users]]\nname = \"a\"\n",
        1,
        "ingest.users[0]: needs a `password` or a `token` (or both)",
    );
    one_problem(
        "[[ingest.users]]\nname = \"a\"\npassword = \"\"\n",
        3,
        "ingest.users[0].password: must not be empty",
    );
    one_problem(
        "[[ingest.users]]\nname = \"a\"\ntoken = \"t\"\n[[ingest.users]]\nname = \"a\"\ntoken = \"u\"\n",
        5,
        "ingest.users[1].name: duplicate user name \"a\" (first on line 2)",
    );
    one_problem(
        "[[ingest.users]]\nname = \"a\"\ntoken = \"t\"\n[[ingest.users]]\nname = \"b\"\ntoken = \"t\"\n",
        6,
        "ingest.users[1].token: the same token as user \"a\"",
    );
    one_problem(
        "[[ingest.users]]\nname = \"a\"\ntoken = \"t\"\ndatabases = []\n",
        4,
        "ingest.users[0].databases: must not be empty; leave `databases` out to match everything",
    );
    one_problem(
        "[[ingest.users]]\nname = \"a\"\ntoken = \"t\"\ndatabases = [\"ok\", \"[x\"]\n",
        4,
        "ingest.users[0].databases[1]: invalid glob \"[x\"",
    );
}

#[test]
fn user_may_write_only_matching_databases() {
    let c = ok(
        "[[ingest.users]]\nname = \"t\"\npassword = \"p\"\ndatabases = [\"telegraf\", \"app_*\"]\n",
    );
    let u = c.ingest.user("t").unwrap();
    assert!(c.ingest.requires_auth());
    assert!(u.may_write("telegraf"));
    assert!(u.may_write("app_web"));
    assert!(!u.may_write("telegraf2"));
    assert!(!u.may_write("other"));
    assert!(c.ingest.user("nobody").is_none());
}

#[test]
fn queue_rules() {
    one_problem(
        "[queue.embedded]\ndir = \"\"\n",
        2,
        "queue.embedded.dir: must not be empty",
    );
    one_problem(
        "[queue.embedded]\nfsync = \"never\"\n",
        2,
        "queue.embedded.fsync: unknown variant `never`",
    );
    one_problem(
        "[queue.embedded]\nfsync_interval = \"0ms\"\n",
        2,
        "queue.embedded.fsync_interval: must be greater than 0",
    );
    one_problem(
        "[queue.embedded]\npartitions = 0\n",
        2,
        "queue.embedded.partitions: must be greater than 0",
    );
    one_problem(
        "[queue.kafka]\nbrokers = []\n",
        2,
        "queue.kafka.brokers: must not be empty",
    );
    one_problem(
        "[queue.kafka]\nbrokers = [\"kafka\"]\n",
        2,
        "queue.kafka.brokers[0]: \"kafka\": expected host:port",
    );
    one_problem(
        "[queue.kafka]\nbrokers = [\"kafka:0\"]\n",
        2,
        "invalid port \"0\"",
    );
    one_problem(
        "[queue.kafka]\nbrokers = [\"::1:9092\"]\n",
        2,
        "needs brackets",
    );
    one_problem(
        "[queue.kafka]\ntopic = \"\"\n",
        2,
        "queue.kafka.topic: \"\" must be 1 to 249 characters long",
    );
    one_problem(
        "[queue.kafka]\ntopic = \"..\"\n",
        2,
        "queue.kafka.topic: \"..\" is not a valid topic name",
    );
    one_problem(
        "[queue.kafka]\ntopic = \"a/b\"\n",
        2,
        "may contain only ASCII letters",
    );
    one_problem(
        &format!("[queue.kafka]\ntopic = \"{}\"\n", "x".repeat(250)),
        2,
        "1 to 249",
    );
    ok(&format!("[queue.kafka]\ntopic = \"{}\"\n", "x".repeat(249)));
    one_problem(
        "[queue.kafka]\npartitions = 0\n",
        2,
        "queue.kafka.partitions: must be greater than 0",
    );
    one_problem(
        "[queue.kafka]\npartitions = 2147483648\n",
        2,
        "queue.kafka.partitions: must be at most 2147483647",
    );
    one_problem(
        "[queue.kafka]\nreplication_factor = 0\n",
        2,
        "queue.kafka.replication_factor: must be greater than 0",
    );
    one_problem(
        "[queue.kafka]\nreplication_factor = 40000\n",
        2,
        "must be at most 32767",
    );
    one_problem(
        "[queue.kafka]\nmax_record_bytes = 1023\n",
        2,
        "queue.kafka.max_record_bytes: must be at least 1024",
    );
    one_problem(
        "[queue.kafka]\nproduce_timeout = \"0s\"\n",
        2,
        "queue.kafka.produce_timeout: must be greater than 0",
    );
    one_problem(
        "[queue.kafka]\nlinger = \"5\"\n",
        2,
        "queue.kafka.linger: invalid duration \"5\"",
    );
    one_problem(
        "[queue.kafka.properties]\n\"enable.idempotence\" = \"false\"\n",
        2,
        "queue.kafka.properties.\"enable.idempotence\": cannot be set here",
    );
    one_problem(
        "[queue.kafka.properties]\nx = [1]\n",
        2,
        "queue.kafka.properties.x: invalid type: sequence",
    );
}

#[test]
fn unused_backend_is_validated_too() {
    one_problem(
        "[queue]\nbackend = \"embedded\"\n[queue.kafka]\npartitions = 0\n",
        4,
        "queue.kafka.partitions",
    );
    one_problem(
        "[queue]\nbackend = \"kafka\"\n[queue.embedded]\npartitions = 0\n",
        4,
        "queue.embedded.partitions",
    );
}

#[test]
fn admin_rules() {
    one_problem(
        "[admin]\nlisten = \"0.0.0.0:8087\"\n",
        2,
        "admin.listen: 0.0.0.0:8087 is not a loopback address, so `admin.token` is required",
    );
    ok("[admin]\nlisten = \"0.0.0.0:8087\"\ntoken = \"t\"\n");
    ok("[admin]\nlisten = \"[::1]:8087\"\n");
    one_problem(
        "[admin]\ntoken = \"\"\n",
        2,
        "admin.token: must not be empty",
    );
    one_problem(
        "[admin]\nlisten = \"127.0.0.1\"\n",
        2,
        "admin.listen: invalid listen address",
    );
}

#[test]
fn log_and_shutdown_rules() {
    one_problem("[log]\nlevel = \" \"\n", 2, "log.level: must not be empty");
    one_problem(
        "[shutdown]\ngrace = \"0s\"\n",
        2,
        "shutdown.grace: must be greater than 0",
    );
    one_problem(
        "[shutdown]\ngrace = 30\n",
        2,
        "shutdown.grace: invalid type: integer `30`, expected a string",
    );
}

#[test]
fn cluster_name_rules() {
    one_problem(
        "[[clusters]]\nendpoints = [\"http://h:1\"]\n",
        1,
        "clusters[0]: missing required key `name`",
    );
    one_problem(
        "[[clusters]]\nname = \"a b\"\nendpoints = [\"http://h:1\"]\n",
        2,
        "clusters[0].name: \"a b\" may contain only",
    );
    one_problem(
        "[[clusters]]\nname = \"\"\nendpoints = [\"http://h:1\"]\n",
        2,
        "clusters[0].name: must not be empty",
    );
    one_problem(
        &format!("{TWO_CLUSTERS}\n[[clusters]]\nname = \"a\"\nendpoints = [\"http://h:1\"]\n"),
        11,
        "clusters[2].name: duplicate cluster name \"a\" (first on line 3)",
    );
}

#[test]
fn cluster_endpoint_rules() {
    let bad = |endpoint: &str, needle: &str| {
        one_problem(
            &format!("[[clusters]]\nname = \"a\"\nendpoints = [\"{endpoint}\"]\n"),
            3,
            needle,
        );
    };
    bad("127.0.0.1:8086", "is not a URL");
    bad("ftp://h", "scheme must be http or https");
    bad("http://u:p@h:1", "credentials in the URL are not allowed");
    bad("http://h:1/?db=x", "a query or fragment is not allowed");
    bad("http://:1", "host is empty");
    bad("http://h:99999", "invalid port");
    bad("http://h h", "whitespace");
    bad("http://[::1", "unclosed `[`");
    one_problem(
        "[[clusters]]\nname = \"a\"\n",
        1,
        "clusters[0]: missing required key `endpoints`",
    );
    one_problem(
        "[[clusters]]\nname = \"a\"\nendpoints = []\n",
        3,
        "clusters[0].endpoints: must not be empty",
    );
    one_problem(
        "[[clusters]]\nname = \"a\"\nendpoints = [\"http://h:80\", \"http://H\"]\n",
        3,
        "clusters[0].endpoints[1]: duplicate endpoint http://h:80",
    );
}

#[test]
fn endpoint_parsing() {
    let e = Endpoint::try_new("HTTP://Influx.Example.com").unwrap();
    assert_eq!(
        (e.scheme(), e.host(), e.port(), e.path()),
        (Scheme::Http, "influx.example.com", 80, "")
    );
    let e = Endpoint::try_new("https://[::1]:8443/a/b/").unwrap();
    assert_eq!((e.host(), e.port(), e.path()), ("::1", 8443, "/a/b"));
    assert_eq!(e.to_string(), "https://[::1]:8443/a/b");
    assert_eq!(e.url("/ping"), "https://[::1]:8443/a/b/ping");
    assert_eq!(
        "http://h:1".parse::<Endpoint>().unwrap().to_string(),
        "http://h:1"
    );
    let b = BrokerAddr::try_new("[::1]:9092").unwrap();
    assert_eq!((b.host(), b.port()), ("::1", 9092));
    assert_eq!(b.to_string(), "[::1]:9092");
}

#[test]
fn cluster_api_rules() {
    let cluster =
        |body: &str| format!("[[clusters]]\nname = \"a\"\nendpoints = [\"http://h:1\"]\n{body}");
    one_problem(
        &cluster("api = \"v3\"\n"),
        4,
        "clusters[0].api: unknown variant `v3`, expected `v1` or `v2`",
    );
    one_problem(
        &cluster("api = \"v2\"\ntoken = \"t\"\n"),
        1,
        "clusters[0]: missing required key `org`",
    );
    one_problem(
        &cluster("api = \"v2\"\norg = \"o\"\n"),
        1,
        "clusters[0]: missing required key `token`",
    );
    one_problem(
        &cluster("api = \"v2\"\norg = \"\"\ntoken = \"t\"\n"),
        5,
        "clusters[0].org: must not be empty",
    );
    one_problem(
        &cluster("api = \"v2\"\norg = \"o\"\ntoken = \"\"\n"),
        6,
        "clusters[0].token: must not be empty",
    );
    one_problem(
        &cluster("api = \"v2\"\norg = \"o\"\ntoken = \"t\"\nusername = \"u\"\n"),
        7,
        "clusters[0].username: only for api = \"v1\" clusters (this one is api = \"v2\")",
    );
    one_problem(
        &cluster("org = \"o\"\n"),
        4,
        "clusters[0].org: only for api = \"v2\" clusters",
    );
    one_problem(
        &cluster("token = \"t\"\n"),
        4,
        "clusters[0].token: only for api = \"v2\" clusters",
    );
    one_problem(
        &cluster("username = \"u\"\n"),
        1,
        "clusters[0]: missing required key `password`",
    );
    one_problem(
        &cluster("password = \"p\"\n"),
        1,
        "clusters[0]: missing required key `username`",
    );
    one_problem(
        &cluster("username = \"u\"\npassword = \"\"\n"),
        5,
        "clusters[0].password: must not be empty",
    );
}

#[test]
fn cluster_tuning_rules() {
    let cluster =
        |body: &str| format!("[[clusters]]\nname = \"a\"\nendpoints = [\"http://h:1\"]\n{body}");
    for key in ["reroute_after", "timeout", "health_interval"] {
        one_problem(
            &cluster(&format!("{key} = \"0s\"\n")),
            4,
            &format!("clusters[0].{key}: must be greater than 0"),
        );
    }
    one_problem(
        &cluster("health_interval = \"10s\"\nhealth_timeout = \"0s\"\n"),
        5,
        "clusters[0].health_timeout: must be greater than 0",
    );
    for key in [
        "batch_max_lines",
        "batch_max_bytes",
        "max_in_flight",
        "health_rise",
        "health_fall",
    ] {
        one_problem(
            &cluster(&format!("{key} = 0\n")),
            4,
            &format!("clusters[0].{key}: must be greater than 0"),
        );
    }
    one_problem(
        &cluster("batch_linger = \"x\"\n"),
        4,
        "clusters[0].batch_linger: invalid duration",
    );
    one_problem(
        &cluster("gzip = \"yes\"\n"),
        4,
        "clusters[0].gzip: invalid type: string \"yes\", expected a boolean",
    );
    one_problem(
        &cluster("health_interval = \"1s\"\nhealth_timeout = \"2s\"\n"),
        5,
        "clusters[0].health_timeout: 2s is longer than health_interval (1s)",
    );
    let c = ok(&cluster("batch_linger = \"0s\"\ncatchup_rate = 0\n"));
    assert_eq!(c.clusters[0].batch_linger, Duration::ZERO);
    assert_eq!(c.clusters[0].catchup_rate, None);
}

#[test]
fn standby_rules() {
    let found = problems(&with_clusters("standby = \"b\"\n"));
    assert_eq!(
        found,
        [(
            Some(9),
            "clusters[1].standby: a cluster cannot be its own standby".to_owned()
        )]
    );
    one_problem(
        &with_clusters("standby = \"c\"\n"),
        9,
        "clusters[1].standby: unknown cluster \"c\" (known clusters: a, b)",
    );
    let c = ok(&with_clusters("standby = \"a\"\n"));
    assert_eq!(c.standby_of("b").map(|s| s.name.as_str()), Some("a"));
}

#[test]
fn route_rules() {
    one_problem(
        &with_clusters("[[routes]]\nclusters = [\"a\"]\n"),
        9,
        "routes[0]: missing required key `databases`",
    );
    one_problem(
        &with_clusters("[[routes]]\ndatabases = []\nclusters = [\"a\"]\n"),
        10,
        "routes[0].databases: must not be empty",
    );
    one_problem(
        &with_clusters("[[routes]]\ndatabases = [\"*\"]\n"),
        9,
        "routes[0]: missing required key `clusters`",
    );
    one_problem(
        &with_clusters("[[routes]]\ndatabases = [\"*\"]\nclusters = []\n"),
        11,
        "routes[0].clusters: must not be empty",
    );
    one_problem(
        &with_clusters("[[routes]]\ndatabases = [\"*\"]\nclusters = [\"a\", \"x\"]\n"),
        11,
        "routes[0].clusters[1]: unknown cluster \"x\" (known clusters: a, b)",
    );
    one_problem(
        "[[routes]]\ndatabases = [\"*\"]\nclusters = [\"x\"]\n",
        3,
        "routes[0].clusters[0]: unknown cluster \"x\" (no clusters are defined)",
    );
    one_problem(
        &with_clusters("[[routes]]\ndatabases = [\"*\"]\nclusters = [\"a\", \"a\"]\n"),
        11,
        "routes[0].clusters[1]: cluster \"a\" is listed twice",
    );
    one_problem(
        &with_clusters(
            "[[routes]]\ndatabases = [\"*\"]\nretention_policies = []\nclusters = [\"a\"]\n",
        ),
        11,
        "routes[0].retention_policies: must not be empty",
    );
    one_problem(
        &with_clusters(
            "[[routes]]\ndatabases = [\"*\"]\nmeasurements = [\"cpu[\"]\nclusters = [\"a\"]\n",
        ),
        11,
        "routes[0].measurements[0]: invalid glob \"cpu[\"",
    );
    one_problem(
        &with_clusters(
            "[[routes]]\ndatabases = [\"*\"]\nclusters = [\"a\"]\nrename = { b = \"x\" }\n",
        ),
        12,
        "routes[0].rename.b: \"b\" is not one of this route's clusters",
    );
    one_problem(
        &with_clusters(
            "[[routes]]\ndatabases = [\"*\"]\nclusters = [\"a\"]\n[routes.rename]\na = \"\"\n",
        ),
        13,
        "routes[0].rename.a: database name must not be empty",
    );
}

#[test]
fn routing() {
    let c = ok(&with_clusters(
        r#"
[[clusters]]
name = "c"
endpoints = ["http://127.0.0.1:3"]

[[routes]]
databases = ["telegraf"]
clusters = ["a", "b"]
rename = { b = "tg" }

[[routes]]
databases = ["tele*"]
retention_policies = ["", "autogen"]
measurements = ["cpu*"]
clusters = ["c", "a", "b"]
"#,
    ));
    let names = |db, rp, m| {
        c.clusters_for(db, rp, m)
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(names("telegraf", "", "mem"), ["a", "b"]);
    assert_eq!(names("telegraf", "", "cpu"), ["a", "b", "c"]);
    assert_eq!(names("telegraf", "autogen", "cpu_total"), ["a", "b", "c"]);
    assert_eq!(names("telegraf", "weekly", "cpu"), ["a", "b"]);
    assert_eq!(names("telemetry", "", "cpu"), ["c", "a", "b"]);
    assert!(names("other", "", "cpu").is_empty());

    let dests = |db, rp, m| {
        c.destinations(db, rp, m)
            .map(|d| (d.cluster.name.as_str(), d.database))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        dests("telegraf", "", "mem"),
        [("a", "telegraf"), ("b", "tg")]
    );
    assert_eq!(
        dests("telegraf", "", "cpu"),
        [
            ("a", "telegraf"),
            ("b", "tg"),
            ("c", "telegraf"),
            ("b", "telegraf")
        ]
    );

    assert!(c.covers_database("telegraf"));
    assert!(c.covers_database("telemetry"));
    assert!(!c.covers_database("app"));
    assert!(c.routes[1].matches("telex", "", "cpu"));
    assert!(!c.routes[1].matches("telex", "", "mem"));
    assert_eq!(c.routes[0].database_for("b", "telegraf"), "tg");
    assert_eq!(c.routes[0].database_for("a", "telegraf"), "telegraf");
    assert!(c.cluster("zzz").is_none());
}

#[test]
fn star_matches_the_default_retention_policy() {
    let c = ok(&with_clusters(
        "[[routes]]\ndatabases = [\"*\"]\nclusters = [\"a\"]\n",
    ));
    assert!(c.routes[0].matches("db", "", "m"));
    assert!(c.routes[0].matches("db", "autogen", "m"));
}

// ---------------------------------------------------------------- several problems at once

#[test]
fn every_problem_is_reported_in_one_pass() {
    let text = r#"
[[clusters]]
name = "a"
endpoints = ["http://127.0.0.1:1"]

[[clusters]]
name = "a"
endpoints = ["http://127.0.0.1:2"]
timeout = "ten seconds"

[[routes]]
databases = ["*"]
clusters = ["a", "nope"]
"#;
    let e = parse(text, "fluxroute.toml", &HashMap::new()).unwrap_err();
    assert_eq!(e.origin, "fluxroute.toml");
    let rendered = e.to_string();
    let lines: Vec<&str> = rendered.lines().collect();
    assert_eq!(lines.len(), 3, "{rendered}");
    assert!(
        lines[0].starts_with(
            "fluxroute.toml:7: clusters[1].name: duplicate cluster name \"a\" (first on line 3)"
        ),
        "{rendered}"
    );
    assert!(
        lines[1]
            .starts_with("fluxroute.toml:9: clusters[1].timeout: invalid duration \"ten seconds\""),
        "{rendered}"
    );
    assert!(
        lines[2].starts_with("fluxroute.toml:13: routes[0].clusters[1]: unknown cluster \"nope\""),
        "{rendered}"
    );
}

#[test]
fn serde_env_and_validation_problems_come_together() {
    let found = problems(
        "[ingest]\nlisten = \"nope\"\nlisen = 1\n[admin]\ntoken = \"${UNSET}\"\n[shutdown]\ngrace = \"0s\"\n",
    );
    let lines: Vec<_> = found.iter().map(|(l, _)| l.unwrap()).collect();
    assert_eq!(lines, [2, 3, 5, 7], "{found:#?}");
}

#[test]
fn display_has_one_problem_per_line() {
    let e = ConfigError {
        origin: "f.toml".to_owned(),
        problems: vec![
            Problem {
                line: None,
                message: "a".to_owned(),
            },
            Problem {
                line: Some(3),
                message: "b".to_owned(),
            },
        ],
    };
    assert_eq!(e.to_string(), "f.toml: a\nf.toml:3: b");
    assert_eq!(e.problems[1].to_string(), "line 3: b");
}

// ---------------------------------------------------------------- ${VAR} expansion

#[test]
fn variables_are_expanded_in_string_values() {
    let vars = env(&[
        ("TOKEN", "s3cr3t"),
        ("HOST", "10.1.2.3"),
        ("TOPIC", "t1"),
        ("BACKEND", "kafka"),
    ]);
    let c = parse(
        r#"
[queue]
backend = "${BACKEND}"
[queue.kafka]
brokers = ["${HOST}:9092"]
topic = "${TOPIC}"
[queue.kafka.properties]
"sasl.password" = "${TOKEN}"
[admin]
token = "pre-${TOKEN}-post"
"#,
        "t",
        &vars,
    )
    .unwrap();
    assert_eq!(c.queue.backend, QueueBackend::Kafka);
    assert_eq!(c.queue.kafka.bootstrap_servers(), "10.1.2.3:9092");
    assert_eq!(c.queue.kafka.topic, "t1");
    assert_eq!(
        c.queue.kafka.properties.get("sasl.password"),
        Some("s3cr3t")
    );
    assert_eq!(c.admin.token.unwrap().expose(), "pre-s3cr3t-post");
}

#[test]
fn unset_variable_is_a_problem_with_its_line() {
    let found = problems_with(
        "[admin]\nlisten = \"127.0.0.1:8087\"\ntoken = \"${FLUXROUTE_ADMIN_TOKEN}\"\n",
        &env(&[("OTHER", "x")]),
    );
    assert_eq!(
        found,
        [(
            Some(3),
            "admin.token: environment variable FLUXROUTE_ADMIN_TOKEN is not set".to_owned()
        )]
    );
}

#[test]
fn dollar_dollar_brace_is_a_literal() {
    let vars = env(&[("A", "x")]);
    let c = parse("[log]\nlevel = \"$${A} ${A} $A $$ $\"\n", "t", &vars).unwrap();
    assert_eq!(c.log.level, "${A} x $A $$ $");
    let c = parse("[log]\nlevel = \"$${UNSET}\"\n", "t", &HashMap::new()).unwrap();
    assert_eq!(c.log.level, "${UNSET}");
}

#[test]
fn bad_variable_syntax_is_a_problem() {
    one_problem(
        "[log]\nlevel = \"${A\"\n",
        2,
        "log.level: unterminated `${`",
    );
    one_problem(
        "[log]\nlevel = \"${A-B}\"\n",
        2,
        "log.level: invalid environment variable name \"A-B\"",
    );
    one_problem(
        "[log]\nlevel = \"${}\"\n",
        2,
        "invalid environment variable name \"\"",
    );
}

#[test]
fn every_unset_variable_is_reported() {
    let found = problems(
        "[log]\nlevel = \"${A}${B}\"\n[[clusters]]\nname = \"c\"\nendpoints = [\n  \"${C}\",\n]\n",
    );
    assert_eq!(
        found,
        [
            (
                Some(2),
                "log.level: environment variable A is not set".to_owned()
            ),
            (
                Some(2),
                "log.level: environment variable B is not set".to_owned()
            ),
            (
                Some(6),
                "clusters[0].endpoints[0]: environment variable C is not set".to_owned()
            ),
        ]
    );
}

#[test]
fn keys_and_comments_are_not_expanded() {
    let c = ok("# ${NOT_A_VAR}\n[queue.kafka.properties]\n\"${X}\" = \"v\"\n");
    assert_eq!(c.queue.kafka.properties.get("${X}"), Some("v"));
}

#[test]
fn expanded_value_is_validated() {
    one_problem(
        "[[clusters]]\nname = \"a\"\nendpoints = [\"http://h:1\"]\nreroute_after = \"${D}\"\n"
            .replace("${D}", "$${D}")
            .as_str(),
        4,
        "clusters[0].reroute_after: invalid duration \"${D}\"",
    );
    let found = problems_with("[shutdown]\ngrace = \"${G}\"\n", &env(&[("G", "0s")]));
    assert_eq!(
        found,
        [(Some(2), "shutdown.grace: must be greater than 0".to_owned())]
    );
}

// ---------------------------------------------------------------- redaction

const SECRETS: &str = r#"
[[ingest.users]]
name = "u"
password = "USER-PASSWORD"
token = "USER-TOKEN"

[queue.kafka.properties]
"sasl.password" = "KAFKA-PASSWORD"
"sasl.username" = "KAFKA-USER"
"ssl.key.pem" = "KEY-PEM"
"client.secret" = "CLIENT-SECRET"
"compression.type" = "lz4"

[admin]
token = "ADMIN-TOKEN"

[[clusters]]
name = "one"
endpoints = ["http://h:1"]
username = "cluster-user"
password = "CLUSTER-PASSWORD"

[[clusters]]
name = "two"
api = "v2"
endpoints = ["http://h:2"]
org = "o"
token = "CLUSTER-TOKEN"
"#;

const SECRET_VALUES: &[&str] = &[
    "USER-PASSWORD",
    "USER-TOKEN",
    "KAFKA-PASSWORD",
    "KAFKA-USER",
    "KEY-PEM",
    "CLIENT-SECRET",
    "ADMIN-TOKEN",
    "CLUSTER-PASSWORD",
    "CLUSTER-TOKEN",
];

#[test]
fn secret_prints_stars() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s}"), "***");
    assert_eq!(format!("{s:?}"), "***");
    assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
    assert_eq!(s.expose(), "hunter2");
}

#[test]
fn debug_never_shows_a_secret() {
    let c = ok(SECRETS);
    let debug = format!("{c:?} {c:#?}");
    for secret in SECRET_VALUES {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(debug.contains("lz4"));
    assert!(debug.contains("cluster-user"));
}

#[test]
fn redacted_json_never_shows_a_secret() {
    let c = ok(SECRETS);
    let json = c.redacted_json();
    let text = json.to_string();
    for secret in SECRET_VALUES {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert_eq!(json["admin"]["token"], "***");
    assert_eq!(json["ingest"]["users"][0]["password"], "***");
    assert_eq!(json["queue"]["kafka"]["properties"]["sasl.password"], "***");
    assert_eq!(
        json["queue"]["kafka"]["properties"]["compression.type"],
        "lz4"
    );
    assert_eq!(json["clusters"][0]["api"], "v1");
    assert_eq!(json["clusters"][0]["username"], "cluster-user");
    assert_eq!(json["clusters"][0]["password"], "***");
    assert_eq!(json["clusters"][1]["api"], "v2");
    assert_eq!(json["clusters"][1]["org"], "o");
    assert_eq!(json["clusters"][1]["token"], "***");
    assert_eq!(json["clusters"][1]["timeout"], "10s");
    assert_eq!(json["clusters"][1]["endpoints"][0], "http://h:2");
    // The real values stay available to the code that needs them.
    assert_eq!(
        c.queue.kafka.properties.get("sasl.password"),
        Some("KAFKA-PASSWORD")
    );
}

#[test]
fn problems_never_show_an_expanded_secret() {
    let vars = env(&[("PW", "TOPSECRET")]);
    let e = parse("[[ingest.users]]\nname = \"a\"\ntoken = \"${PW}\"\n[[ingest.users]]\nname = \"b\"\ntoken = \"${PW}\"\n", "t", &vars)
        .unwrap_err();
    assert!(!e.to_string().contains("TOPSECRET"), "{e}");
    assert!(!format!("{e:?}").contains("TOPSECRET"), "{e:?}");
}

#[test]
fn sensitive_property_keys() {
    for key in [
        "sasl.password",
        "sasl.mechanisms",
        "ssl.key.password",
        "ssl.key.pem",
        "SASL.USERNAME",
        "client.secret",
    ] {
        assert!(is_sensitive_property(key), "{key}");
    }
    for key in ["compression.type", "security.protocol", "ssl.ca.location"] {
        assert!(!is_sensitive_property(key), "{key}");
    }
}

#[test]
fn redacted_json_shape_mirrors_the_file() {
    let json = ok("").redacted_json();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 7);
    for key in [
        "ingest", "queue", "admin", "log", "shutdown", "clusters", "routes",
    ] {
        assert!(keys.contains(&key), "{key}");
    }
    assert_eq!(json["ingest"]["enqueue_timeout"], "10s");
    assert_eq!(json["queue"]["backend"], "embedded");
    assert_eq!(json["queue"]["embedded"]["dir"], "var/queue");
    assert_eq!(json["admin"]["token"], serde_json::Value::Null);
}

// ---------------------------------------------------------------- load and the example files

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// Every variable the example files use.
fn example_env() -> HashMap<String, String> {
    env(&[
        ("TELEGRAF_PASSWORD", "telegraf-password"),
        ("TELEGRAF_TOKEN", "telegraf-token"),
        ("APP_TOKEN", "app-token"),
        ("KAFKA_PASSWORD", "kafka-password"),
        ("FLUXROUTE_ADMIN_TOKEN", "admin-token"),
        ("EU_PASSWORD", "eu-password"),
        ("US_TOKEN", "us-token"),
        ("PRIMARY_USER", "primary-user"),
        ("PRIMARY_PASSWORD", "primary-password"),
        ("PRIMARY_TOKEN", "primary-token"),
    ])
}

#[test]
fn every_file_in_config_dir_loads() {
    let mut loaded = 0;
    for entry in std::fs::read_dir(config_dir()).unwrap() {
        let path = entry.unwrap().path();
        if let Err(e) = load(&path, &example_env()) {
            panic!("{e}");
        }
        loaded += 1;
    }
    assert!(
        loaded >= 3,
        "only {loaded} files in {}",
        config_dir().display()
    );
}

#[test]
fn load_reports_an_unreadable_file() {
    let e = load(Path::new("/nonexistent/fluxroute.toml"), &HashMap::new()).unwrap_err();
    assert_eq!(e.origin, "/nonexistent/fluxroute.toml");
    assert_eq!(e.problems.len(), 1);
    assert_eq!(e.problems[0].line, None);
    assert!(e
        .to_string()
        .starts_with("/nonexistent/fluxroute.toml: cannot read the config file"));
}

#[test]
fn load_uses_the_path_as_origin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.toml");
    std::fs::write(&path, "\n[shutdown]\ngrace = \"0s\"\n").unwrap();
    let e = load(&path, &HashMap::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3: shutdown.grace: must be greater than 0",
            path.display()
        )
    );
}

#[test]
fn example_uses_the_defaults() {
    let example = load(&config_dir().join("fluxroute.example.toml"), &example_env()).unwrap();
    let (example, defaults) = (example.redacted_json(), ok("").redacted_json());
    for section in ["ingest", "queue", "admin", "log", "shutdown"] {
        let mut example = example[section].clone();
        let mut defaults = defaults[section].clone();
        // The example shows one property; the default is none.
        if section == "queue" {
            example["kafka"]["properties"] = serde_json::json!({});
            defaults["kafka"]["properties"] = serde_json::json!({});
        }
        assert_eq!(
            example, defaults,
            "[{section}] of the example differs from the defaults"
        );
    }
    let with_defaults = ok(r#"
[[clusters]]
name = "primary"
endpoints = ["http://127.0.0.1:8186"]
standby = "secondary"
[[clusters]]
name = "secondary"
endpoints = ["http://127.0.0.1:8286"]
[[routes]]
databases = ["*"]
clusters = ["primary", "secondary"]
"#)
    .redacted_json();
    assert_eq!(example["clusters"], with_defaults["clusters"]);
    assert_eq!(example["routes"], with_defaults["routes"]);
}

/// The keys serde accepts in the table at `header`, read from the unknown-key message.
fn known_keys(header: &str) -> Vec<String> {
    let found = problems(&format!("{header}\nzzz_unknown = 1\n"));
    let message = found
        .iter()
        .map(|(_, m)| m)
        .find(|m| m.contains("unknown key `zzz_unknown`"))
        .unwrap_or_else(|| panic!("{found:?}"));
    // serde writes "expected `a`", "expected `a` or `b`" or "expected one of `a`, `b`, `c`".
    let list = message
        .split("expected ")
        .nth(1)
        .unwrap_or_else(|| panic!("{message}"));
    let list = list.trim_start_matches("one of ").replace(" or ", ", ");
    list.split(", ")
        .map(|k| k.trim_matches('`').to_owned())
        .collect()
}

#[test]
fn example_documents_every_option() {
    let text = std::fs::read_to_string(config_dir().join("fluxroute.example.toml")).unwrap();
    // A key is documented when it is set, or shown commented out, somewhere in the file.
    let documented = |key: &str| {
        text.lines().any(|line| {
            let line = line.trim_start().trim_start_matches('#').trim_start();
            line.starts_with(&format!("{key} ="))
                || line.starts_with(&format!("[{key}]"))
                || line.starts_with(&format!("[[{key}]]"))
                || line.contains(&format!(".{key}]"))
        })
    };
    let headers = [
        "",
        "[ingest]",
        "[[ingest.users]]",
        "[queue]",
        "[queue.embedded]",
        "[queue.kafka]",
        "[admin]",
        "[log]",
        "[shutdown]",
        "[[clusters]]",
        "[[routes]]",
    ];
    let mut checked = 0;
    for header in headers {
        for key in known_keys(header) {
            assert!(
                documented(&key),
                "{header} {key} is not in fluxroute.example.toml"
            );
            checked += 1;
        }
    }
    assert!(checked >= 63, "only {checked} keys checked");
}

#[test]
fn kafka_example_is_what_it_says() {
    let c = load(&config_dir().join("kafka.example.toml"), &example_env()).unwrap();
    assert_eq!(c.queue.backend, QueueBackend::Kafka);
    assert_eq!(c.ingest.users.len(), 2);
    assert_eq!(c.clusters.len(), 2);
    assert!(c.clusters.iter().all(|cluster| cluster.standby.is_some()));
    assert!(c.routes.iter().any(|r| !r.rename.is_empty()));
    let text = format!("{c:?}{}", c.redacted_json());
    for (_, secret) in example_env() {
        assert!(!text.contains(&secret), "{secret} shown");
    }
}

#[test]
fn quickstart_is_what_it_says() {
    let c = load(&config_dir().join("quickstart.toml"), &HashMap::new()).unwrap();
    assert_eq!(c.queue.backend, QueueBackend::Embedded);
    assert_eq!(c.queue.embedded.dir, PathBuf::from("var/queue"));
    assert_eq!(
        c.admin.listen,
        "127.0.0.1:8087".parse::<SocketAddr>().unwrap()
    );
    assert!(c.admin.token.is_none());
    let endpoints: Vec<String> = c
        .clusters
        .iter()
        .map(|c| c.endpoints[0].to_string())
        .collect();
    assert_eq!(
        endpoints,
        ["http://127.0.0.1:8186", "http://127.0.0.1:8286"]
    );
    assert!(c.clusters.iter().all(|c| c.api() == ClusterApi::V1));
    let names: Vec<&str> = c
        .clusters_for("anything", "", "m")
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["primary", "secondary"]);
}

#[test]
fn a_scalar_where_a_table_belongs_is_a_type_problem() {
    one_problem(
        "ingest = 5\n",
        1,
        "ingest: invalid type: integer `5`, expected a table",
    );
    one_problem(
        "clusters = [1]\n",
        1,
        "clusters[0]: invalid type: integer `1`, expected a table",
    );
    one_problem(
        "[queue.kafka]\nproperties = 1\n",
        2,
        "queue.kafka.properties: invalid type: integer `1`, expected a map",
    );
    one_problem(
        &with_clusters("[[routes]]\ndatabases = \"*\"\nclusters = [\"a\"]\n"),
        10,
        "routes[0].databases: invalid type: string \"*\", expected a sequence",
    );
}

#[test]
fn listener_tls_and_limits() {
    let c = ok(
        "[ingest]\nheader_read_timeout = \"5s\"\nmax_connections = 10\nmax_header_bytes = 9000\n\
         [ingest.tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\n\
         [admin.tls]\ncert = \"a.pem\"\nkey = \"b.pem\"\n",
    );
    assert_eq!(c.ingest.http.header_read_timeout, Duration::from_secs(5));
    assert_eq!(c.ingest.http.max_connections.get(), 10);
    assert_eq!(c.ingest.http.max_header_bytes.get(), 9000);
    let tls = c.ingest.tls.unwrap();
    assert_eq!(tls.cert, PathBuf::from("c.pem"));
    assert_eq!(tls.client_ca, Some(PathBuf::from("ca.pem")));
    assert_eq!(c.admin.tls.unwrap().key, PathBuf::from("b.pem"));
    let d = ok("");
    assert!(d.ingest.tls.is_none() && d.admin.tls.is_none());
    assert_eq!(d.ingest.http.max_connections, d::MAX_CONNECTIONS);

    one_problem(
        "[ingest.tls]\ncert = \"c.pem\"\n",
        1,
        "missing required key `key`",
    );
    one_problem(
        "[admin.tls]\nkey = \"k.pem\"\n",
        1,
        "missing required key `cert`",
    );
    one_problem(
        "[ingest]\nmax_header_bytes = 100\n",
        2,
        "must be at least 8192",
    );
    one_problem(
        "[ingest]\nmax_connections = 0\n",
        2,
        "must be greater than 0",
    );
    one_problem(
        "[ingest.tls]\ncert = \"c\"\nkey = \"k\"\nverify = false\n",
        4,
        "unknown key `verify`",
    );
}

#[test]
fn cluster_tls() {
    let c = ok(&with_clusters(
        "[[clusters]]\nname = \"s\"\napi = \"v1\"\nendpoints = [\"https://influx:8086\"]\n\
         tls_ca = \"ca.pem\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n",
    ));
    let s = c.clusters.iter().find(|c| c.name == "s").unwrap();
    assert_eq!(s.tls.ca, Some(PathBuf::from("ca.pem")));
    assert_eq!(
        s.tls.client_cert,
        Some((PathBuf::from("c.pem"), PathBuf::from("k.pem")))
    );
    let found = problems(&with_clusters(
        "[[clusters]]\nname = \"p\"\napi = \"v1\"\nendpoints = [\"http://influx:8086\"]\n\
         tls_ca = \"ca.pem\"\n\
         [[clusters]]\nname = \"q\"\napi = \"v1\"\nendpoints = [\"https://influx:8086\"]\n\
         tls_cert = \"c.pem\"\n",
    ));
    let text = format!("{found:?}");
    assert!(text.contains("apply to https:// endpoints"), "{text}");
    assert!(text.contains("missing required key `tls_key`"), "{text}");
    // No option turns certificate verification off.
    let p = problems(&with_clusters(
        "[[clusters]]\nname = \"s\"\napi = \"v1\"\nendpoints = [\"https://influx:8086\"]\n\
         insecure_skip_verify = true\n",
    ));
    assert!(
        format!("{p:?}").contains("unknown key `insecure_skip_verify`"),
        "{p:?}"
    );
}

/// Found by the `config` fuzz target: the redacted view must use the file's own keys, so that it
/// can be written back as a config.
#[test]
fn redacted_view_of_tls_and_limits_uses_the_file_keys() {
    let c = ok(&with_clusters(
        "[ingest]\nmax_connections = 10\n[ingest.tls]\ncert = \"c\"\nkey = \"k\"\n\
         [[clusters]]\nname = \"s\"\nendpoints = [\"https://influx:8086\"]\n\
         tls_ca = \"ca.pem\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n",
    ));
    let v = c.redacted_json();
    assert_eq!(v["ingest"]["max_connections"], 10);
    assert_eq!(v["ingest"]["header_read_timeout"], "1m");
    assert!(v["ingest"].get("http").is_none(), "{v}");
    assert_eq!(v["ingest"]["tls"]["cert"], "c");
    let s = &v["clusters"][2];
    assert_eq!(s["tls_ca"], "ca.pem");
    assert_eq!(s["tls_key"], "k.pem");
    assert!(s.get("tls").is_none(), "{s}");
    assert!(v["clusters"][0].get("tls_ca").is_none());
}
