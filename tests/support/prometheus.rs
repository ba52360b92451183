//! A real Prometheus (Debian's `prometheus` package) for tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Where Debian's package installs it.
pub const PROMETHEUS_BIN: &str = "/usr/bin/prometheus";
/// How to get it.
pub const INSTALL_HINT: &str =
    "install Prometheus with `apt-get install prometheus` (scripts/test does this)";

/// A `prometheus` process on a free loopback port with its own storage dir; killed on drop.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus with `config` (written into `dir`) and waits until `/-/ready` is 200.
    pub async fn start(dir: &Path, config: &str) -> Prometheus {
        assert!(
            Path::new(PROMETHEUS_BIN).exists(),
            "{PROMETHEUS_BIN} not found: {INSTALL_HINT}"
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let client = super::http_client();
        let mut last = String::new();
        // A port found free may be taken before Prometheus binds it: try a few.
        for attempt in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = dir.join(format!("prometheus-{attempt}.log"));
            let child = Command::new(PROMETHEUS_BIN)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join(format!("data-{attempt}")).display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(std::fs::File::options().append(true).open(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {PROMETHEUS_BIN}: {e}; {INSTALL_HINT}"));
            let mut p = Prometheus {
                child,
                url: format!("http://127.0.0.1:{port}"),
                log,
            };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = p.child.try_wait() {
                    last = format!("prometheus exited ({status}):\n{}", p.log_tail());
                    break;
                }
                if let Ok(r) = client.get(format!("{}/-/ready", p.url)).send().await {
                    if r.status().is_success() {
                        return p;
                    }
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "prometheus not ready after 30s:\n{}",
                    p.log_tail()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !last.contains("address already in use") {
                break;
            }
        }
        panic!("{last}");
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(&log[log.len().saturating_sub(4096)..]).into_owned()
    }

    /// GET `path` of the HTTP API; the `data` of a `success` answer, else the error text.
    pub async fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let r = super::http_client()
            .get(format!("{}{path}", self.url))
            .query(query)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let text = r.text().await.map_err(|e| e.to_string())?;
        let body: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// An instant query's result vector (or scalar).
    pub async fn query(&self, expr: &str) -> Result<Value, String> {
        self.api("/api/v1/query", &[("query", expr)])
            .await
            .map(|d| d["result"].clone())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
