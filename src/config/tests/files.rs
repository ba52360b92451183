//! Loading files: the shipped examples, unreadable files, TLS and limits.

use super::*;

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
    for section in [
        "ingest", "queue", "admin", "log", "shutdown", "query", "schema",
    ] {
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
        "[query]",
        "[schema]",
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
    assert!(checked >= 67, "only {checked} keys checked");
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
