//! The `fluxroute` binary: version, check-config exit codes and messages, and real InfluxDB
//! clients (`influx` CLI, `curl`) writing through a running router.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use fluxroute::queue::kafka::{KafkaConsumerGroup, KafkaSettings};
use fluxroute::queue::payload::plain_lines;
use fluxroute::queue::{ConsumerGroup, Event};
use support::broker::{Broker, Storage};
use support::fluxroute::Fluxroute;

fn fluxroute() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fluxroute"))
}

#[test]
fn version_prints_the_crate_version() {
    let out = fluxroute().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.trim(),
        format!("fluxroute {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_accepts_the_shipped_examples() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/config")).unwrap() {
        let path = entry.unwrap().path();
        let mut cmd = fluxroute();
        cmd.arg("check-config").arg(&path);
        for var in [
            "FLUXROUTE_ADMIN_TOKEN",
            "TELEGRAF_PASSWORD",
            "TELEGRAF_TOKEN",
            "APP_TOKEN",
            "KAFKA_PASSWORD",
            "EU_PASSWORD",
            "US_TOKEN",
        ] {
            cmd.env(var, format!("secret-{var}"));
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(": ok"), "{stdout}");
        assert!(!stdout.contains("secret-"));
    }
}

#[test]
fn check_config_lists_every_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        r#"[ingest]
listen = "127.0.0.1:8086"
enqueue_timeout = "soon"

[[clusters]]
name = "a"
api = "v1"
endpoints = ["http://127.0.0.1:8186"]
colour = "blue"

[[routes]]
databases = ["*"]
clusters = ["a", "nope"]
"#,
    )
    .unwrap();
    let out = fluxroute().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("broken.toml:3:") && l.contains("enqueue_timeout")),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("broken.toml:9:") && l.contains("colour")),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("broken.toml:13:") && l.contains("nope")),
        "{stderr}"
    );

    let out = fluxroute()
        .arg("check-config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!out.stderr.is_empty());
}

#[test]
fn serve_with_an_invalid_config_exits_2_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[queue]\nbackend = \"carrier-pigeon\"\n").unwrap();
    let out = fluxroute()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml:2:"));
}

fn which(bin: &str) -> std::path::PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = std::path::Path::new(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!("{bin} is missing: run ./scripts/test (it installs Debian's influxdb-client and curl)");
}

#[tokio::test(flavor = "multi_thread")]
async fn influx_cli_and_curl_write_through_fluxroute() {
    let broker = Broker::start(Storage::Memory);
    let fr = Fluxroute::start(&support::config::kafka_ingest_only(
        &broker.bootstrap(),
        1,
        &["telegraf"],
    ))
    .await;

    let influx = which("influx");
    let out = tokio::process::Command::new(influx)
        .args([
            "-host",
            "127.0.0.1",
            "-port",
            &fr.ingest.port().to_string(),
            "-database",
            "telegraf",
        ])
        .args([
            "-execute",
            "INSERT cli_insert,host=a v=1 1700000000000000000",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "influx: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lines.lp");
    std::fs::write(
        &file,
        "curl_file,host=b v=2 1700000000000000001\ncurl_file,host=c v=3 1700000000000000002\n",
    )
    .unwrap();
    let curl = which("curl");
    let out = tokio::process::Command::new(curl)
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-XPOST"])
        .arg(format!("{}/write?db=telegraf", fr.url()))
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "204",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let settings = KafkaSettings {
        brokers: vec![broker.bootstrap()],
        topic: "writes".into(),
        partitions: 1,
        replication_factor: 1,
        max_record_bytes: 1_000_000,
        linger: Duration::from_millis(1),
        produce_timeout: Duration::from_secs(5),
        properties: Default::default(),
        client_metrics: None,
    };
    let consumer = KafkaConsumerGroup::join(&settings, "cli-test").unwrap();
    let mut lines: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while lines.len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "only {lines:?}");
        for ev in consumer
            .poll(100, Duration::from_millis(500))
            .await
            .unwrap()
        {
            if let Event::Record(r) = ev {
                lines.extend(
                    String::from_utf8(plain_lines(&r.payload).unwrap().to_vec())
                        .unwrap()
                        .lines()
                        .map(str::to_owned),
                );
            }
        }
    }
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "cli_insert,host=a v=1 1700000000000000000",
            "curl_file,host=b v=2 1700000000000000001",
            "curl_file,host=c v=3 1700000000000000002",
        ]
    );
}
