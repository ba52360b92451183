//! `scripts/run`, the README's quick start, end to end: it starts two real `influxd` and
//! fluxroute (the debug binary, via `FLUXROUTE_BIN`) on free loopback ports with its state in a
//! temp dir; a write reaches both influxd; SIGINT to the script's process group stops everything
//! and leaves nothing running; a second run on the same state dir still has the old points and
//! takes new writes.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/run");

/// Start-up of both influxd and fluxroute (the script's own waits are within this).
const START_DEADLINE: Duration = Duration::from_secs(120);
/// A write acknowledged by fluxroute shows up in an influxd.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(60);
/// The script exits after SIGINT (fluxroute drains, then both influxd stop).
const STOP_DEADLINE: Duration = Duration::from_secs(90);
/// Poll interval of every deadline-bounded wait.
const POLL: Duration = Duration::from_millis(100);

/// The six loopback ports of one run.
#[derive(Debug, Clone, Copy)]
struct Ports {
    ingest: u16,
    admin: u16,
    primary: u16,
    primary_rpc: u16,
    secondary: u16,
    secondary_rpc: u16,
}

impl Ports {
    /// Six distinct free ports: all bound at once, then released.
    fn free() -> Ports {
        let listeners: Vec<TcpListener> = (0..6)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let p: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        Ports {
            ingest: p[0],
            admin: p[1],
            primary: p[2],
            primary_rpc: p[3],
            secondary: p[4],
            secondary_rpc: p[5],
        }
    }
}

/// One `scripts/run` process, in its own process group (as in a terminal).
#[derive(Debug)]
struct Run {
    child: Option<Child>,
    var: PathBuf,
    output: PathBuf,
    ports: Ports,
    /// (name, pid) of the services, from the pid files the script writes into `var`.
    pids: Vec<(String, u32)>,
}

impl Run {
    /// Starts the script with its output in `output` and waits until fluxroute is healthy and
    /// the script has printed its instructions.
    async fn start(var: &Path, output: &Path) -> Run {
        let ports = Ports::free();
        let out = File::create(output).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(SCRIPT)
            .env("FLUXROUTE_BIN", env!("CARGO_BIN_EXE_fluxroute"))
            .env("QUICKSTART_VAR", var)
            .env("QUICKSTART_INGEST_PORT", ports.ingest.to_string())
            .env("QUICKSTART_ADMIN_PORT", ports.admin.to_string())
            .env("QUICKSTART_PRIMARY_PORT", ports.primary.to_string())
            .env("QUICKSTART_PRIMARY_RPC_PORT", ports.primary_rpc.to_string())
            .env("QUICKSTART_SECONDARY_PORT", ports.secondary.to_string())
            .env(
                "QUICKSTART_SECONDARY_RPC_PORT",
                ports.secondary_rpc.to_string(),
            )
            .env_remove("QUICKSTART_START_TIMEOUT")
            .env_remove("QUICKSTART_STOP_TIMEOUT")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        let mut run = Run {
            child: Some(child),
            var: var.to_path_buf(),
            output: output.to_path_buf(),
            ports,
            pids: Vec::new(),
        };
        run.wait_ready().await;
        run
    }

    fn ingest(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.ingest)
    }

    fn influxds(&self) -> [(&'static str, u16); 2] {
        [
            ("primary", self.ports.primary),
            ("secondary", self.ports.secondary),
        ]
    }

    fn output_text(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// Panics (with the script's output) if the script has exited.
    fn assert_running(&mut self, what: &str) {
        let child = self.child.as_mut().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "scripts/run exited ({status}) while {what}; output:\n{}",
                self.output_text()
            );
        }
    }

    async fn wait_ready(&mut self) {
        let client = support::http_client();
        let deadline = Instant::now() + START_DEADLINE;
        let health = format!("{}/health", self.ingest());
        loop {
            self.assert_running("starting");
            let healthy = match client.get(&health).send().await {
                Ok(r) => r.status() == reqwest::StatusCode::OK,
                Err(_) => false,
            };
            // The instructions are printed right after the health check passes.
            if healthy && self.output_text().contains("fluxroute is up") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "fluxroute not healthy on {health} after {START_DEADLINE:?}; output:\n{}",
                self.output_text()
            );
            tokio::time::sleep(POLL).await;
        }
        // The instructions name this run's ports.
        let text = self.output_text();
        for want in [
            format!(
                "curl -i -XPOST 'http://127.0.0.1:{}/write?db=quickstart' --data-binary 'cpu,host=a usage=1.5'",
                self.ports.ingest
            ),
            format!(
                "loadgen --url http://127.0.0.1:{} --db quickstart --duration 10s",
                self.ports.ingest
            ),
            format!(
                "curl -G 'http://127.0.0.1:{}/query' --data-urlencode 'db=quickstart' --data-urlencode 'q=SELECT count(*) FROM cpu'",
                self.ports.primary
            ),
            format!("http://127.0.0.1:{}/query'", self.ports.secondary),
            format!("http://127.0.0.1:{}/metrics", self.ports.admin),
        ] {
            assert!(text.contains(&want), "output lacks {want:?}:\n{text}");
        }
        // The pid files exist before fluxroute is started / reported healthy.
        self.pids = [
            ("fluxroute", self.var.join("fluxroute.pid")),
            (
                "influxd primary",
                self.var.join("influxd-primary/influxd.pid"),
            ),
            (
                "influxd secondary",
                self.var.join("influxd-secondary/influxd.pid"),
            ),
        ]
        .into_iter()
        .map(|(name, path)| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let pid: u32 = text.trim().parse().unwrap();
            assert!(alive(pid), "{name} (pid {pid}) not running");
            (name.to_string(), pid)
        })
        .collect();
        // The metrics URL the script prints answers.
        let metrics = client
            .get(format!("http://127.0.0.1:{}/metrics", self.ports.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(metrics.status(), reqwest::StatusCode::OK);
        let metrics = metrics.text().await.unwrap();
        assert!(
            metrics.contains("fluxroute_ingest_requests_total"),
            "{metrics}"
        );
    }

    /// Writes `body` as `curl -XPOST /write?db=quickstart --data-binary` would; expects 204.
    async fn write(&self, body: &str) {
        let resp = support::http_client()
            .post(format!("{}/write?db=quickstart", self.ingest()))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, reqwest::StatusCode::NO_CONTENT, "{text}");
    }

    /// Waits until both influxd hold a `cpu` point at each of `times` (ns).
    async fn wait_points(&mut self, times: &[i64]) {
        let client = support::http_client();
        let deadline = Instant::now() + DELIVERY_DEADLINE;
        for (name, port) in self.influxds() {
            loop {
                self.assert_running("waiting for points");
                let got = cpu_times(&client, port).await;
                if times.iter().all(|t| got.contains(t)) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "influxd {name} has cpu points at {got:?}, want {times:?}, after \
                     {DELIVERY_DEADLINE:?}; output:\n{}",
                    self.output_text()
                );
                tokio::time::sleep(POLL).await;
            }
        }
    }

    /// SIGINT to the script's process group (Ctrl-C in a terminal), then asserts a clean exit
    /// within the deadline and that nothing it started is still running.
    async fn interrupt(&mut self) {
        let mut child = self.child.take().unwrap();
        signal_group(child.id(), "INT");
        let deadline = Instant::now() + STOP_DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                signal_group(child.id(), "KILL");
                let _ = child.wait();
                panic!(
                    "scripts/run still running {STOP_DEADLINE:?} after SIGINT; output:\n{}",
                    self.output_text()
                );
            }
            tokio::time::sleep(POLL).await;
        };
        let text = self.output_text();
        assert!(status.success(), "scripts/run exited {status}:\n{text}");
        // fluxroute was stopped (and drained) before the influxd processes.
        let fluxroute_stop = text.find("stopping fluxroute").unwrap();
        let influxd_stop = text.find("stopped influxd").unwrap();
        assert!(fluxroute_stop < influxd_stop, "{text}");
        for (name, pid) in &self.pids {
            assert!(
                !alive(*pid),
                "{name} (pid {pid}) still running after scripts/run exited"
            );
        }
        let strays = processes_mentioning(&self.var);
        assert!(
            strays.is_empty(),
            "processes still using {}: {strays:?}",
            self.var.display()
        );
        for pidfile in ["fluxroute.pid", "influxd-primary/influxd.pid"] {
            assert!(!self.var.join(pidfile).exists(), "{pidfile} left behind");
        }
    }
}

impl Drop for Run {
    /// After a failed assertion: kill whatever is left so no process outlives the test.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(child.id(), "KILL");
            let _ = child.wait();
        }
        for (_, pid) in &self.pids {
            if alive(*pid) {
                signal_pid(*pid, "KILL");
            }
        }
        for (pid, _) in processes_mentioning(&self.var) {
            signal_pid(pid, "KILL");
        }
    }
}

/// The timestamps (ns) of the `cpu` points in database `quickstart` of the influxd on `port`.
async fn cpu_times(client: &reqwest::Client, port: u16) -> BTreeSet<i64> {
    let Ok(resp) = client
        .get(format!("http://127.0.0.1:{port}/query"))
        .query(&[
            ("db", "quickstart"),
            ("epoch", "ns"),
            ("q", "SELECT * FROM cpu"),
        ])
        .send()
        .await
    else {
        return BTreeSet::new();
    };
    let Ok(text) = resp.text().await else {
        return BTreeSet::new();
    };
    let Ok(body) = serde_json::from_str::<serde_json::Value>(&text) else {
        return BTreeSet::new();
    };
    // Until the drain has created the database, the result is an error ("database not found").
    body["results"][0]["series"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|series| series["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|row| row[0].as_i64())
        .collect()
}

/// `kill -s SIG -- -PGID` (bash's builtin: no dependency on procps).
fn signal_group(pgid: u32, sig: &str) {
    let _ = Command::new("bash")
        .args(["-c", "kill -s \"$1\" -- \"-$2\" 2>/dev/null", "kill"])
        .arg(sig)
        .arg(pgid.to_string())
        .status();
}

fn signal_pid(pid: u32, sig: &str) {
    let _ = Command::new("bash")
        .args(["-c", "kill -s \"$1\" -- \"$2\" 2>/dev/null", "kill"])
        .arg(sig)
        .arg(pid.to_string())
        .status();
}

/// The process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ...": comm may contain spaces, so split after the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state != "Z")
}

/// Live processes whose command line mentions `dir` (the services the script starts all take
/// their config from there): (pid, command line).
fn processes_mentioning(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && alive(pid) {
            found.push((pid, cmdline));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_runs_stops_on_sigint_and_reuses_its_state() {
    let tmp = tempfile::tempdir().unwrap();
    let var = tmp.path().join("var");
    let started = std::time::Instant::now();

    // First run: a fresh state dir.
    let mut run = Run::start(&var, &tmp.path().join("run1.log")).await;
    let first = [1_700_000_000_000_000_000_i64, 1_700_000_000_000_000_001];
    run.write(&format!(
        "cpu,host=a usage=1.5 {}\ncpu,host=b usage=2.5 {}\n",
        first[0], first[1]
    ))
    .await;
    run.wait_points(&first).await;
    run.interrupt().await;
    drop(run);
    assert!(
        var.join("queue").is_dir(),
        "fluxroute's queue not under var/"
    );
    assert!(var.join("influxd-primary/data").is_dir());
    assert!(var.join("influxd-secondary/data").is_dir());

    // Second run on the same state dir (and other ports): the points are still there, and a
    // new write goes through.
    let mut run = Run::start(&var, &tmp.path().join("run2.log")).await;
    run.wait_points(&first).await;
    let second = 1_700_000_000_000_000_002_i64;
    run.write(&format!("cpu,host=c usage=3.5 {second}")).await;
    run.wait_points(&[first[0], first[1], second]).await;
    run.interrupt().await;
    drop(run);

    eprintln!("quickstart test took {:?}", started.elapsed());
}
