//! Validation rules of each table, and every problem reported in one pass.

use super::*;

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
