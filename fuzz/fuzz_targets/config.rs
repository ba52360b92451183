//! `config::parse` on arbitrary text (the input, when it is UTF-8), with a fixed variable map
//! holding every variable the example files use.
//!
//! Checked, besides "no panic":
//! - an error lists at least one problem, sorted by line, each line inside the file, and parsing
//!   the same text again gives the same error (no hash-order in messages);
//! - a config keeps the promises of its types and of validation (unique cluster and user names,
//!   unique tokens, routes and standbys naming existing clusters, renames only for a route's
//!   clusters, probe timeout within the interval, Kafka limits, an admin token off loopback);
//! - redaction: `Debug` and `redacted_json` are the same whatever the secret values are, and
//!   every secret shows as `***`;
//! - the redacted view is a faithful config: written back as TOML (secrets replaced by stand-ins,
//!   `${` escaped as `$${`), it parses without problems into a config with the same view.

#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use fluxroute::config::{self, ClusterAuth, Config, KafkaProperties, Secret};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The variables of `config/*.toml` (as the config tests use them), and a few odd ones.
fn env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        [
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
            ("EMPTY", ""),
            ("BRACE", "${NOT_EXPANDED}"),
            ("PORT", "8086"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse(text, "fuzz.toml", env()) {
        Err(e) => check_error(text, &e),
        Ok(c) => {
            check_invariants(&c);
            check_redaction(&c);
            check_round_trip(&c, text);
        }
    }
});

fn check_error(text: &str, e: &config::ConfigError) {
    assert!(!e.problems.is_empty(), "an error without problems");
    let last_line = text.split('\n').count();
    for p in &e.problems {
        if let Some(line) = p.line {
            assert!(
                (1..=last_line).contains(&line),
                "problem on line {line} of a {last_line}-line file: {}",
                p.message
            );
        }
    }
    assert!(
        e.problems.windows(2).all(|w| w[0].line <= w[1].line),
        "problems not sorted by line: {e}"
    );
    let again = config::parse(text, "fuzz.toml", env()).err();
    assert_eq!(again.as_ref(), Some(e), "a second parse reports otherwise");
    let _ = e.to_string();
}

fn check_invariants(c: &Config) {
    let mut names: Vec<&str> = c.clusters.iter().map(|k| k.name.as_str()).collect();
    names.sort_unstable();
    assert!(
        names.windows(2).all(|w| w[0] != w[1]),
        "duplicate cluster names {names:?}"
    );
    for cluster in &c.clusters {
        assert!(
            !cluster.name.is_empty()
                && cluster
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'),
            "cluster name {:?}",
            cluster.name
        );
        assert!(
            !cluster.endpoints.is_empty(),
            "{}: no endpoints",
            cluster.name
        );
        if let Some(standby) = &cluster.standby {
            assert_ne!(standby, &cluster.name, "its own standby");
            assert!(c.cluster(standby).is_some(), "unknown standby {standby:?}");
            assert!(c.standby_of(&cluster.name).is_some());
        }
        assert!(cluster.health_timeout <= cluster.health_interval);
        match &cluster.auth {
            ClusterAuth::V1 { credentials } => {
                if let Some(credentials) = credentials {
                    assert!(!credentials.username.trim().is_empty());
                    assert!(!credentials.password.is_empty());
                }
            }
            ClusterAuth::V2 { org, token } => {
                assert!(
                    !org.trim().is_empty() && !token.is_empty(),
                    "v2 without org/token"
                );
            }
        }
    }
    for (i, route) in c.routes.iter().enumerate() {
        assert!(!route.clusters.is_empty(), "routes[{i}] without clusters");
        assert!(!route.databases.is_empty(), "routes[{i}] without databases");
        for name in &route.clusters {
            assert!(c.cluster(name).is_some(), "routes[{i}] names {name:?}");
        }
        for (cluster, db) in &route.rename {
            assert!(route.clusters.contains(cluster), "rename for {cluster:?}");
            assert!(!db.is_empty());
        }
    }
    let mut users: Vec<&str> = c.ingest.users.iter().map(|u| u.name.as_str()).collect();
    users.sort_unstable();
    assert!(users.windows(2).all(|w| w[0] != w[1]), "duplicate users");
    let mut tokens: Vec<&str> = c
        .ingest
        .users
        .iter()
        .filter_map(|u| u.token.as_ref().map(Secret::expose))
        .collect();
    tokens.sort_unstable();
    assert!(tokens.windows(2).all(|w| w[0] != w[1]), "duplicate tokens");
    for u in &c.ingest.users {
        assert!(
            !u.name.trim().is_empty() && !u.name.contains(':'),
            "user {:?}",
            u.name
        );
        assert!(
            u.password.is_some() || u.token.is_some(),
            "{}: no credential",
            u.name
        );
    }
    assert!(c.admin.listen.ip().is_loopback() || c.admin.token.is_some());
    let kafka = &c.queue.kafka;
    assert!(kafka.partitions.get() <= i32::MAX as u32);
    assert!(kafka.replication_factor.get() <= i16::MAX as u32);
    assert!(kafka.max_record_bytes.get() >= 1024);
    assert!(!kafka.brokers.is_empty());
    assert!(!kafka.topic.is_empty() && kafka.topic.len() <= 249);
    assert!(kafka.properties.get("bootstrap.servers").is_none());
    assert!(c.ingest.retry_after_secs() >= 1);

    // The look-ups the router makes do not panic.
    for db in ["telegraf", "", "db"] {
        let _ = c.covers_database(db);
        let _ = c.destinations(db, "", "cpu").count();
        let _ = c.clusters_for(db, "autogen", "mem").count();
    }
}

/// Every secret of `c` set to `value` (Kafka's sensitive properties too).
fn with_secrets(c: &Config, value: &str) -> Config {
    let mut c = c.clone();
    let s = || Secret::new(value);
    for u in &mut c.ingest.users {
        u.password = u.password.as_ref().map(|_| s());
        u.token = u.token.as_ref().map(|_| s());
    }
    c.admin.token = c.admin.token.as_ref().map(|_| s());
    for cluster in &mut c.clusters {
        match &mut cluster.auth {
            ClusterAuth::V1 { credentials } => {
                if let Some(credentials) = credentials {
                    credentials.password = s();
                }
            }
            ClusterAuth::V2 { token, .. } => *token = s(),
        }
    }
    c.queue.kafka.properties = KafkaProperties::new(
        c.queue
            .kafka
            .properties
            .iter()
            .map(|(k, v)| {
                let v = if config::is_sensitive_property(k) {
                    value
                } else {
                    v
                };
                (k.to_owned(), v.to_owned())
            })
            .collect(),
    );
    c
}

fn check_redaction(c: &Config) {
    let other = with_secrets(c, "a-different-secret");
    assert_eq!(
        format!("{c:?}"),
        format!("{other:?}"),
        "Debug depends on a secret's value"
    );
    let json = c.redacted_json();
    assert_eq!(
        json,
        other.redacted_json(),
        "redacted_json depends on a secret's value"
    );
    assert!(json.get("error").is_none(), "{json}");
    for path in secret_paths(&json) {
        let v = pointer(&json, &path);
        assert!(v.is_null() || v == "***", "{path:?} shows {v}");
    }
    for (k, v) in c.queue.kafka.properties.iter() {
        let shown = &json["queue"]["kafka"]["properties"][k];
        if config::is_sensitive_property(k) {
            assert_eq!(shown, "***", "property {k}");
        } else {
            assert_eq!(shown, v, "property {k}");
        }
    }
}

/// JSON paths of every `Secret` in the redacted view.
fn secret_paths(json: &Value) -> Vec<Vec<String>> {
    let mut paths = vec![vec!["admin".to_owned(), "token".to_owned()]];
    let len = |v: &Value| v.as_array().map_or(0, Vec::len);
    for i in 0..len(&json["ingest"]["users"]) {
        for key in ["password", "token"] {
            paths.push(vec![
                "ingest".into(),
                "users".into(),
                i.to_string(),
                key.into(),
            ]);
        }
    }
    for i in 0..len(&json["clusters"]) {
        for key in ["password", "token"] {
            paths.push(vec!["clusters".into(), i.to_string(), key.into()]);
        }
    }
    paths
}

fn pointer<'a>(json: &'a Value, path: &[String]) -> &'a Value {
    let pointer: String = path.iter().map(|p| format!("/{p}")).collect();
    json.pointer(&pointer).unwrap_or(&Value::Null)
}

fn check_round_trip(c: &Config, text: &str) {
    let view = c.redacted_json();
    let mut doc = view.clone();
    for (n, path) in secret_paths(&view).into_iter().enumerate() {
        let pointer: String = path.iter().map(|p| format!("/{p}")).collect();
        if let Some(v) = doc.pointer_mut(&pointer) {
            if v == "***" {
                *v = Value::String(format!("stand-in-secret-{n}"));
            }
        }
    }
    // An unlimited catch-up rate shows as null and is written 0.
    if let Some(clusters) = doc["clusters"].as_array_mut() {
        for cluster in clusters {
            if cluster["catchup_rate"].is_null() {
                cluster["catchup_rate"] = Value::from(0);
            }
        }
    }
    let doc = escape_and_drop_nulls(doc);
    let toml_text = toml::to_string(&doc)
        .unwrap_or_else(|e| panic!("the redacted view cannot be written as TOML: {e}\n{doc}"));
    match config::parse(&toml_text, "round-trip.toml", &HashMap::new()) {
        Ok(again) => assert_eq!(
            again.redacted_json(),
            view,
            "the config written back parses to another config\noriginal:\n{text}\nwritten:\n{toml_text}"
        ),
        Err(e) => panic!(
            "the config written back does not parse:\n{e}\noriginal:\n{text}\nwritten:\n{toml_text}"
        ),
    }
}

/// Drops null members (TOML has no null) and writes `${` in strings as `$${`.
fn escape_and_drop_nulls(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("${", "$${")),
        Value::Array(items) => Value::Array(items.into_iter().map(escape_and_drop_nulls).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, escape_and_drop_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}
