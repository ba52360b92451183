//! Two fluxroute processes in one deployment (same consumer groups): kill -9 one under load; the
//! survivor takes over its partitions and every acknowledged line reaches every cluster.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Parser;
use fluxroute::loadgen::{run, LoadgenArgs};
use support::influxd::Influxd;
use support::tansu::{Storage, Tansu};

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    args: LoadgenArgs,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `fluxroute serve` child process; killed on drop.
struct Instance {
    child: Child,
    ingest: u16,
    log: std::path::PathBuf,
}

impl Instance {
    async fn start(dir: &Path, name: &str, broker: &Tansu, a: &Influxd, b: &Influxd) -> Instance {
        let (ingest, admin) = (free_port(), free_port());
        let config = format!(
            r#"
[ingest]
listen = "127.0.0.1:{ingest}"
[admin]
listen = "127.0.0.1:{admin}"
[queue]
backend = "kafka"
[queue.kafka]
brokers = ["{broker}"]
topic = "writes"
partitions = 4
linger = "1ms"
[queue.kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
"max.poll.interval.ms" = "10000"
[shutdown]
grace = "5s"
[[clusters]]
name = "a"
api = "v1"
endpoints = ["{a}"]
batch_linger = "20ms"
[[clusters]]
name = "b"
api = "v1"
endpoints = ["{b}"]
batch_linger = "20ms"
[[routes]]
databases = ["*"]
clusters = ["a", "b"]
"#,
            broker = broker.bootstrap(),
            a = a.url(),
            b = b.url(),
        );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_fluxroute"))
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap())
            .spawn()
            .unwrap();
        let inst = Instance { child, ingest, log };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = support::http_client()
                .get(format!("{}/health", inst.url()))
                .send()
                .await
            {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} not healthy:\n{}",
                inst.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        inst
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ingest)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn stored(influxd: &Influxd) -> BTreeSet<String> {
    let Ok(resp) = influxd.select("metrics", "SELECT * FROM /.*/ GROUP BY *") else {
        return BTreeSet::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    let mut out = BTreeSet::new();
    for s in v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let mut key = s["name"].as_str().unwrap().to_owned();
        for (k, val) in s["tags"].as_object().cloned().unwrap_or_default() {
            if val.as_str().is_some_and(|v| !v.is_empty()) {
                key.push_str(&format!(",{k}={}", val.as_str().unwrap()));
            }
        }
        for row in s["values"].as_array().unwrap() {
            out.insert(format!("{key} {}", row[0].as_i64().unwrap()));
        }
    }
    out
}

fn acked(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (key, rest) = l.split_once(' ').unwrap();
            let mut parts: Vec<&str> = key.split(',').collect();
            let m = parts.remove(0);
            parts.sort_unstable();
            let mut k = m.to_owned();
            for t in parts {
                k.push(',');
                k.push_str(t);
            }
            format!("{k} {}", rest.rsplit_once(' ').unwrap().1)
        })
        .collect()
}

// The test broker, tansu 0.6.0, rebalances a group after a member is killed but keeps assigning
// the dead member's share of the partitions to a phantom member (README, "Differences between
// the test broker and Kafka"): the survivor gets only half the partitions back, so acknowledged
// lines stay in the queue undelivered. Run with `--ignored` against a broker that expires dead
// members as Kafka does.
#[ignore = "tansu 0.6.0 does not hand a killed member's partitions to the survivor"]
#[tokio::test(flavor = "multi_thread")]
async fn survivor_takes_over_when_an_instance_is_killed() {
    let broker = Tansu::start(Storage::Memory);
    let (a, b) = (Influxd::start().unwrap(), Influxd::start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut one = Instance::start(dir.path(), "one", &broker, &a, &b).await;
    let two = Instance::start(dir.path(), "two", &broker, &a, &b).await;

    // Load on both instances; one is killed mid-run (its in-flight requests fail: not acked).
    let run_on = |url: String, file: &str| {
        let record = dir.path().join(file);
        let args = Cli::try_parse_from([
            "loadgen",
            "--url",
            &url,
            "--db",
            "metrics",
            "--create-database",
            "--batch-size",
            "500",
            "--connections",
            "2",
            "--hosts",
            "20",
            "--rate",
            "3000",
            "--duration",
            "6s",
            "--quiet",
            "--record-acked",
            record.to_str().unwrap(),
        ])
        .unwrap()
        .args;
        tokio::spawn(async move { run(&args).await.unwrap() })
    };
    let load_one = run_on(one.url(), "one.lp");
    let load_two = run_on(two.url(), "two.lp");
    tokio::time::sleep(Duration::from_secs(2)).await;
    one.kill9();
    let (r1, r2) = (load_one.await.unwrap(), load_two.await.unwrap());
    assert_eq!(
        r2.requests_failed, 0,
        "the survivor answered every request: {r2}"
    );
    assert!(r1.lines_acked > 0, "{r1}");

    let mut want = acked(&dir.path().join("one.lp"));
    want.extend(acked(&dir.path().join("two.lp")));
    assert_eq!(want.len() as u64, r1.lines_acked + r2.lines_acked);
    for cluster in [&a, &b] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let have = stored(cluster);
            if want.is_subset(&have) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: {} acknowledged points missing; killed log:\n{}\nsurvivor log:\n{}",
                cluster.url(),
                want.difference(&have).count(),
                one.log(),
                two.log()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
