//! `${VAR}` expansion, and secrets that never show.

use super::*;

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
    assert_eq!(keys.len(), 9);
    for key in [
        "ingest", "queue", "admin", "log", "shutdown", "query", "schema", "clusters", "routes",
    ] {
        assert!(keys.contains(&key), "{key}");
    }
    assert_eq!(json["ingest"]["enqueue_timeout"], "10s");
    assert_eq!(json["queue"]["backend"], "embedded");
    assert_eq!(json["queue"]["embedded"]["dir"], "var/queue");
    assert_eq!(json["admin"]["token"], serde_json::Value::Null);
}
