//! Deployment files checked against each other: the `Dockerfile`, `deploy/compose.yaml`,
//! `deploy/prometheus.yml`, `deploy/fluxroute.toml` and the dashboards' provisioning (no Docker
//! engine runs on the development machines: files and ports only).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn root(path: &str) -> PathBuf {
    Path::new(ROOT).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

// ------------------------------------------------------------------------------------------
// Dockerfile, compose and their configs (no Docker engine here: files and ports only).

/// A minimal YAML reader for the block style the deploy files use: mappings, sequences,
/// plain and quoted scalars, one-line flow sequences, comments. Scalars stay strings.
mod yaml {
    use serde_json::{Map, Value};

    struct Line {
        indent: usize,
        text: String,
    }

    pub(crate) fn parse(src: &str) -> Value {
        let mut lines: Vec<Line> = src
            .lines()
            .filter_map(|raw| {
                let text = strip_comment(raw);
                let trimmed = text.trim_start();
                (!trimmed.is_empty()).then(|| Line {
                    indent: text.len() - trimmed.len(),
                    text: trimmed.trim_end().to_owned(),
                })
            })
            .collect();
        let mut i = 0;
        if lines.is_empty() {
            return Value::Null;
        }
        let indent = lines[0].indent;
        let v = block(&mut lines, &mut i, indent);
        assert!(
            i == lines.len(),
            "yaml: unparsed from line {:?}",
            lines[i].text
        );
        v
    }

    fn strip_comment(raw: &str) -> String {
        let (mut quote, mut prev_space) = (None, true);
        for (i, c) in raw.char_indices() {
            match (quote, c) {
                (None, '#') if prev_space => return raw[..i].to_owned(),
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                _ => {}
            }
            prev_space = c == ' ';
        }
        raw.to_owned()
    }

    fn block(lines: &mut [Line], i: &mut usize, indent: usize) -> Value {
        if is_item(&lines[*i].text) {
            seq(lines, i, indent)
        } else {
            map(lines, i, indent)
        }
    }

    fn is_item(t: &str) -> bool {
        t == "-" || t.starts_with("- ")
    }

    /// `key: value` split at the first `: ` (or a trailing `:`) outside quotes.
    fn split_key(t: &str) -> Option<(String, String)> {
        if t.starts_with('"') || t.starts_with('\'') || t.starts_with('[') || t.starts_with('{') {
            let q = t.chars().next()?;
            if q == '[' || q == '{' {
                return None;
            }
            let end = t[1..].find(q)? + 1;
            let rest = t[end + 1..].strip_prefix(':')?;
            return Some((t[1..end].to_owned(), rest.trim().to_owned()));
        }
        if let Some(k) = t.strip_suffix(':') {
            if !k.contains(": ") {
                return Some((k.to_owned(), String::new()));
            }
        }
        let at = t.find(": ")?;
        Some((t[..at].to_owned(), t[at + 2..].trim().to_owned()))
    }

    fn seq(lines: &mut [Line], i: &mut usize, indent: usize) -> Value {
        let mut out = Vec::new();
        while *i < lines.len() && lines[*i].indent == indent && is_item(&lines[*i].text) {
            let rest = lines[*i].text[1..].trim_start().to_owned();
            if rest.is_empty() {
                *i += 1;
                let child = lines.get(*i).map_or(0, |l| l.indent);
                assert!(child > indent, "yaml: empty sequence item");
                out.push(block(lines, i, child));
            } else if split_key(&rest).is_some() {
                // `- key: value`: a mapping whose first line starts after the dash.
                let offset = lines[*i].text.len() - rest.len();
                lines[*i] = Line {
                    indent: indent + offset,
                    text: rest,
                };
                out.push(map(lines, i, indent + offset));
            } else {
                out.push(scalar(&rest));
                *i += 1;
            }
        }
        Value::Array(out)
    }

    fn map(lines: &mut [Line], i: &mut usize, indent: usize) -> Value {
        let mut out = Map::new();
        while *i < lines.len() && lines[*i].indent == indent && !is_item(&lines[*i].text) {
            let (key, value) = split_key(&lines[*i].text)
                .unwrap_or_else(|| panic!("yaml: expected `key: value`, got {:?}", lines[*i].text));
            assert!(
                !value.starts_with('|') && !value.starts_with('>'),
                "yaml: block scalars are not supported ({key})"
            );
            *i += 1;
            let v = if !value.is_empty() {
                scalar(&value)
            } else if *i < lines.len() && lines[*i].indent > indent {
                let child = lines[*i].indent;
                block(lines, i, child)
            } else if *i < lines.len() && lines[*i].indent == indent && is_item(&lines[*i].text) {
                seq(lines, i, indent)
            } else {
                Value::Null
            };
            out.insert(key, v);
        }
        Value::Object(out)
    }

    fn scalar(t: &str) -> Value {
        let t = t.trim();
        if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let mut items = Vec::new();
            let (mut cur, mut quote) = (String::new(), None);
            for c in inner.chars() {
                match (quote, c) {
                    (None, ',') => items.push(scalar(&std::mem::take(&mut cur))),
                    (None, '"' | '\'') => {
                        quote = Some(c);
                        cur.push(c);
                    }
                    (Some(q), c) if c == q => {
                        quote = None;
                        cur.push(c);
                    }
                    _ => cur.push(c),
                }
            }
            if !cur.trim().is_empty() {
                items.push(scalar(&cur));
            }
            return Value::Array(items);
        }
        for q in ['"', '\''] {
            if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
                return Value::String(t[1..t.len() - 1].to_owned());
            }
        }
        Value::String(t.to_owned())
    }
}

#[test]
fn yaml_reader_handles_the_compose_subset() {
    let v = yaml::parse(
        "a:\n  b: 1 # note\n  c:\n    - \"x:y\"\n    - k: v\n      l: w\n  d: [\"CMD\", 'two, three']\n\
         e:\n- p\n- q\nf: \"#not\"\n",
    );
    assert_eq!(v["a"]["b"], "1");
    assert_eq!(v["a"]["c"][0], "x:y");
    assert_eq!(v["a"]["c"][1]["l"], "w");
    assert_eq!(v["a"]["d"][1], "two, three");
    assert_eq!(v["e"][1], "q");
    assert_eq!(v["f"], "#not");
}

/// A Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if (t.starts_with('#') && cur.is_empty()) || t.is_empty() {
            continue;
        }
        if let Some(part) = t.strip_suffix('\\') {
            cur.push_str(part);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        let (op, args) = cur.split_once(char::is_whitespace).unwrap_or((&cur, ""));
        out.push((op.to_ascii_uppercase(), args.trim().to_owned()));
        cur.clear();
    }
    out
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no port in {addr:?}"))
}

/// `http://host:port/...` -> (host, port).
fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap();
    let (host, port) = hostport
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("no port in {url:?}"));
    (host.to_owned(), port.parse().unwrap())
}

/// Container ports a compose service publishes (`"host:container"` or `"container"`).
fn published_ports(service: &Value) -> BTreeSet<u16> {
    service["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| port_of(p.as_str().unwrap().split('/').next().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// `(source, target)` of a compose service's volumes in short syntax.
fn mounts(service: &Value) -> Vec<(String, String)> {
    service["volumes"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| {
                    let mut parts = v.as_str().unwrap().split(':');
                    (
                        parts.next().unwrap().to_owned(),
                        parts.next().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every file the Dockerfile copies exists and is not excluded by .dockerignore; the image
/// exposes exactly deploy/fluxroute.toml's ingest and admin ports, its health check probes the
/// ingest port's /health, it runs as a non-root user with config and data volumes, and its
/// default config path is where compose mounts deploy/fluxroute.toml. Every compose bind mount
/// and build file exists; named volumes are declared; the fluxroute service publishes the
/// config's ports; the config's clusters and brokers and Prometheus's scrape target and
/// Grafana's data source name compose services on ports those services listen on; Prometheus
/// loads the rules file compose mounts; Grafana's dashboard provider reads the mounted
/// dashboards.
#[test]
fn docker_and_compose_name_existing_files_and_matching_ports() {
    // deploy/fluxroute.toml is a valid config with listeners every container can reach.
    let toml_text = read("deploy/fluxroute.toml");
    let env = HashMap::from([("FLUXROUTE_ADMIN_TOKEN".to_owned(), "t".to_owned())]);
    if let Err(e) = fluxroute::config::parse(&toml_text, "deploy/fluxroute.toml", &env) {
        panic!("deploy/fluxroute.toml is invalid:\n{e}");
    }
    let cfg: toml::Value = toml::from_str(&toml_text).unwrap();
    let ingest_listen = cfg["ingest"]["listen"].as_str().unwrap();
    let admin_listen = cfg["admin"]["listen"].as_str().unwrap();
    assert!(ingest_listen.starts_with("0.0.0.0:") && admin_listen.starts_with("0.0.0.0:"));
    let (ingest_port, admin_port) = (port_of(ingest_listen), port_of(admin_listen));
    let config_ports = BTreeSet::from([ingest_port, admin_port]);

    // Dockerfile.
    let instructions = dockerfile_instructions(&read("Dockerfile"));
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_matches('/').to_owned())
        .collect();
    let mut exposed = BTreeSet::new();
    let (mut user, mut volumes, mut cmd, mut health_url, mut healthcheck) =
        (None, Vec::new(), None, None, None);
    let mut copied = 0;
    for (op, args) in &instructions {
        match op.as_str() {
            "COPY" | "ADD" => {
                let words: Vec<&str> = args.split_whitespace().collect();
                if words.iter().any(|w| w.starts_with("--from=")) {
                    continue;
                }
                let paths: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
                for src in &paths[..paths.len() - 1] {
                    copied += 1;
                    assert!(
                        root(src).exists(),
                        "Dockerfile copies {src}, which does not exist"
                    );
                    let first = src.trim_start_matches("./").split('/').next().unwrap();
                    assert!(
                        !ignored.iter().any(|i| i == first || i == *src),
                        "Dockerfile copies {src}, which .dockerignore excludes"
                    );
                }
            }
            "EXPOSE" => exposed.extend(
                args.split_whitespace()
                    .map(|p| port_of(&format!(":{}", p.split('/').next().unwrap()))),
            ),
            "USER" => user = Some(args.clone()),
            "VOLUME" => volumes = serde_json::from_str::<Vec<String>>(args).unwrap(),
            "CMD" => cmd = Some(serde_json::from_str::<Vec<String>>(args).unwrap()),
            "HEALTHCHECK" => healthcheck = Some(args.clone()),
            "ENV" => {
                if let Some(url) = args.strip_prefix("FLUXROUTE_HEALTH_URL=") {
                    health_url = Some(url.to_owned());
                }
            }
            _ => {}
        }
    }
    assert!(copied >= 3, "Dockerfile copies the sources");
    assert_eq!(
        exposed, config_ports,
        "Dockerfile EXPOSE vs deploy/fluxroute.toml listeners"
    );
    let user = user.expect("Dockerfile sets USER");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "runs as {user}"
    );
    assert!(healthcheck
        .expect("HEALTHCHECK")
        .contains("$FLUXROUTE_HEALTH_URL"));
    let health_url = health_url.expect("ENV FLUXROUTE_HEALTH_URL");
    assert!(health_url.ends_with("/health"), "{health_url}");
    assert_eq!(host_port(&health_url).1, ingest_port, "health check port");
    let cmd = cmd.expect("Dockerfile CMD");
    let config_path = cmd[cmd.iter().position(|a| a == "--config").unwrap() + 1].clone();
    assert!(
        volumes.iter().any(|v| config_path.starts_with(v.as_str())),
        "config {config_path} is not in a volume {volumes:?}"
    );
    assert!(volumes.len() >= 2, "config and data volumes: {volumes:?}");

    // compose.
    let compose = yaml::parse(&read("deploy/compose.yaml"));
    let services = compose["services"].as_object().unwrap();
    for name in [
        "kafka",
        "influxdb-a",
        "influxdb-b",
        "fluxroute",
        "prometheus",
        "grafana",
    ] {
        assert!(services.contains_key(name), "compose has no {name} service");
    }
    let declared: BTreeSet<&String> = compose["volumes"].as_object().unwrap().keys().collect();
    let deploy = root("deploy");
    let mut targets: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    for (name, s) in services {
        for (src, target) in mounts(s) {
            if src.starts_with('.') || src.starts_with('/') {
                assert!(
                    deploy.join(&src).exists(),
                    "compose {name} mounts {src}, which does not exist"
                );
            } else {
                assert!(
                    declared.contains(&src),
                    "compose {name} uses undeclared volume {src}"
                );
            }
            targets
                .entry(name.as_str())
                .or_default()
                .push((src, target));
        }
        if let Some(build) = s.get("build") {
            let context = deploy.join(build["context"].as_str().unwrap());
            assert!(
                context.join(build["dockerfile"].as_str().unwrap()).exists(),
                "{name} build"
            );
        }
    }
    let fr = &services["fluxroute"];
    assert_eq!(
        published_ports(fr),
        config_ports,
        "compose fluxroute ports vs deploy/fluxroute.toml"
    );
    assert!(
        targets["fluxroute"]
            .iter()
            .any(|(s, t)| s == "./fluxroute.toml" && *t == config_path),
        "compose mounts deploy/fluxroute.toml at the image's config path {config_path}"
    );
    // Every service fluxroute's config names is a compose service, on the port it listens on.
    let service_port = |host: &str, port: u16, what: &str| {
        let s = services
            .get(host)
            .unwrap_or_else(|| panic!("{what}: no compose service {host}"));
        let listens: BTreeSet<u16> = published_ports(s)
            .into_iter()
            .chain(
                s["environment"]["KAFKA_ADVERTISED_LISTENERS"]
                    .as_str()
                    .into_iter()
                    .flat_map(|l| l.split(',').map(|u| host_port(u).1)),
            )
            .collect();
        assert!(
            listens.contains(&port),
            "{what}: {host} does not listen on {port} ({listens:?})"
        );
    };
    for c in cfg["clusters"].as_array().unwrap() {
        for e in c["endpoints"].as_array().unwrap() {
            let (host, port) = host_port(e.as_str().unwrap());
            service_port(&host, port, &format!("cluster {}", c["name"]));
        }
    }
    for b in cfg["queue"]["kafka"]["brokers"].as_array().unwrap() {
        let (host, port) = host_port(b.as_str().unwrap());
        service_port(&host, port, "kafka broker");
    }

    // Prometheus: scrapes fluxroute's admin port, loads the mounted rules file.
    let prom_cfg = yaml::parse(&read("deploy/prometheus.yml"));
    let prom_mounts = &targets["prometheus"];
    assert!(prom_mounts
        .iter()
        .any(|(s, t)| s == "./prometheus.yml" && t == "/etc/prometheus/prometheus.yml"));
    for rule in prom_cfg["rule_files"].as_array().unwrap() {
        let rule = rule.as_str().unwrap();
        assert!(
            prom_mounts
                .iter()
                .any(|(s, t)| t == rule && s == "../dashboards/alerts.yml"),
            "prometheus loads {rule}, which compose does not mount from dashboards/alerts.yml"
        );
    }
    let job = &prom_cfg["scrape_configs"][0];
    assert!(
        job["job_name"].as_str().unwrap().contains("fluxroute"),
        "alerts select job=~.*fluxroute.*"
    );
    let target = job["static_configs"][0]["targets"][0].as_str().unwrap();
    let (host, port) = host_port(target);
    assert_eq!(
        (host.as_str(), port),
        ("fluxroute", admin_port),
        "scrape target"
    );
    service_port("prometheus", 9090, "prometheus");

    // Grafana: data source URL is the prometheus service; provider path is the mounted dashboards.
    let ds = yaml::parse(&read("dashboards/provisioning/datasources/prometheus.yml"));
    let (host, port) = host_port(ds["datasources"][0]["url"].as_str().unwrap());
    service_port(&host, port, "grafana data source");
    let provider = yaml::parse(&read("dashboards/provisioning/dashboards/fluxroute.yml"));
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    let g = &targets["grafana"];
    for (src, target) in [
        (
            "../dashboards/provisioning/datasources",
            "/etc/grafana/provisioning/datasources",
        ),
        (
            "../dashboards/provisioning/dashboards",
            "/etc/grafana/provisioning/dashboards",
        ),
        ("../dashboards", path),
    ] {
        assert!(
            g.iter().any(|(s, t)| s == src && t == target),
            "grafana mounts {src} at {target}"
        );
    }
}
