//! fluxroute itself, started in process on pre-bound loopback listeners.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fluxroute::app::{self, Listeners};
use fluxroute::config;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running fluxroute; shut down on [`Fluxroute::stop`] (or aborted on drop).
#[derive(Debug)]
pub struct Fluxroute {
    /// Ingest address.
    pub ingest: SocketAddr,
    /// Admin address.
    pub admin: SocketAddr,
    /// `https` when the listener has TLS.
    ingest_scheme: &'static str,
    admin_scheme: &'static str,
    /// The client for readiness checks and `/metrics` (trusts the test CA under TLS).
    client: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), app::AppError>>>,
}

impl Fluxroute {
    /// Starts fluxroute with the config `toml` (its listen addresses are ignored: listeners are
    /// bound on free loopback ports). Returns once the ingest answers `/ping`.
    pub async fn start(toml: &str) -> Fluxroute {
        Self::start_with_env(toml, &HashMap::new()).await
    }

    /// As [`Fluxroute::start`], with `${VAR}`s taken from `env`.
    pub async fn start_with_env(toml: &str, env: &HashMap<String, String>) -> Fluxroute {
        Self::start_inner(toml, env, None, unpooled(reqwest::Client::builder())).await
    }

    /// As [`Fluxroute::start`], checking readiness and reading metrics with `client` (for
    /// listeners with TLS: a client trusting the test CA, with a client certificate if needed).
    pub async fn start_with_client(toml: &str, client: reqwest::ClientBuilder) -> Fluxroute {
        Self::start_inner(toml, &HashMap::new(), None, unpooled(client)).await
    }

    /// Runs fluxroute with `toml` expecting start-up to fail; returns the error.
    pub async fn start_err(toml: &str) -> app::AppError {
        let cfg = config::parse(toml, "test.toml", &HashMap::new())
            .unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
        let ingest = TcpListener::bind("127.0.0.1:0").await.expect("bind ingest");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let run = app::run(
            Arc::new(cfg),
            Listeners { ingest, admin },
            CancellationToken::new(),
            None,
        );
        match tokio::time::timeout(Duration::from_secs(60), run).await {
            Ok(Err(e)) => e,
            Ok(Ok(())) => panic!("fluxroute started and stopped without an error"),
            Err(_) => panic!("fluxroute did not fail within 60 s"),
        }
    }

    /// Starts from a config file that `POST /admin/v1/reload` reads again.
    pub async fn start_from_file(
        path: &std::path::Path,
        env: &HashMap<String, String>,
    ) -> Fluxroute {
        let toml = std::fs::read_to_string(path).expect("reading the test config");
        let source = app::ReloadSource {
            path: path.to_owned(),
            env: env.clone(),
        };
        Self::start_inner(
            &toml,
            env,
            Some(source),
            unpooled(reqwest::Client::builder()),
        )
        .await
    }

    async fn start_inner(
        toml: &str,
        env: &HashMap<String, String>,
        reload: Option<app::ReloadSource>,
        client: reqwest::Client,
    ) -> Fluxroute {
        // Logs appear with RUST_LOG=… and --nocapture.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let cfg = config::parse(toml, "test.toml", env)
            .unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
        let ingest = TcpListener::bind("127.0.0.1:0").await.expect("bind ingest");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let (ingest_addr, admin_addr) = (ingest.local_addr().unwrap(), admin.local_addr().unwrap());
        let scheme = |tls: bool| if tls { "https" } else { "http" };
        let (ingest_scheme, admin_scheme) = (
            scheme(cfg.ingest.tls.is_some()),
            scheme(cfg.admin.tls.is_some()),
        );
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app::run(
            Arc::new(cfg),
            Listeners { ingest, admin },
            shutdown.clone(),
            reload,
        ));
        let f = Fluxroute {
            ingest: ingest_addr,
            admin: admin_addr,
            ingest_scheme,
            admin_scheme,
            client,
            shutdown,
            task: Some(task),
        };
        f.wait_ready(Duration::from_secs(60)).await;
        f
    }

    async fn wait_ready(&self, timeout: Duration) {
        let client = &self.client;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(r) = client.get(format!("{}/health", self.url())).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if self.task.as_ref().is_some_and(JoinHandle::is_finished) {
                panic!("fluxroute exited during start-up");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "fluxroute not healthy after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://<ingest>` (`https://` with TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.ingest_scheme, self.ingest)
    }

    /// The `/metrics` text (`None` when the admin listener does not answer).
    async fn metrics_text(&self) -> Option<String> {
        self.client
            .get(format!("{}/metrics", self.admin_url()))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    }

    /// The value of the first `/metrics` sample line starting with `prefix`.
    pub async fn metric(&self, prefix: &str) -> Option<f64> {
        super::sample(&self.metrics_text().await?, prefix)
    }

    /// The sum of every `/metrics` sample starting with `prefix` (`None` without any).
    pub async fn metric_sum(&self, prefix: &str) -> Option<f64> {
        super::sample_sum(&self.metrics_text().await?, prefix)
    }

    /// The body of `GET <admin><path>` (panics on a transport error).
    pub async fn admin_text(&self, path: &str) -> String {
        self.client
            .get(format!("{}{path}", self.admin_url()))
            .send()
            .await
            .expect("admin request")
            .text()
            .await
            .expect("admin answer")
    }

    /// Waits until [`Fluxroute::metric`] of `prefix` is `want`.
    pub async fn wait_metric(&self, prefix: &str, want: f64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let v = self.metric(prefix).await;
            if v == Some(want) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{prefix} is {v:?}, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `http://<admin>` (`https://` with TLS).
    pub fn admin_url(&self) -> String {
        format!("{}://{}", self.admin_scheme, self.admin)
    }

    /// Orderly shutdown; returns the run result.
    pub async fn stop(mut self) -> Result<(), app::AppError> {
        self.shutdown.cancel();
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("fluxroute stops within 60s")
            .expect("fluxroute task not panicked")
    }
}

/// The client for readiness checks and metrics: no kept-alive connections, so that the listeners'
/// connection counts are exactly the tests' own.
fn unpooled(builder: reqwest::ClientBuilder) -> reqwest::Client {
    builder
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .expect("test client")
}

impl Drop for Fluxroute {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
