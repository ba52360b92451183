//! fluxroute as a child process (`fluxroute serve`), for kill -9, signals and exit codes.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A `fluxroute serve` child process; killed on drop.
#[derive(Debug)]
pub struct FluxrouteProcess {
    child: Child,
    /// Ingest port.
    pub ingest: u16,
    /// Admin port.
    pub admin: u16,
    log: PathBuf,
}

impl FluxrouteProcess {
    /// Writes `config` (a TOML body without `[ingest] listen`/`[admin] listen`; `{INGEST}` and
    /// `{ADMIN}` are not needed: the listen lines are prepended) to `dir/<name>.toml`, starts
    /// `fluxroute serve` on free ports and waits for `/health` 200.
    pub async fn start(dir: &Path, name: &str, config: &str) -> FluxrouteProcess {
        Self::start_on(dir, name, config, free_port(), free_port()).await
    }

    /// As [`FluxrouteProcess::start`], with `ingest_keys` (TOML key lines) under `[ingest]`.
    pub async fn start_with(
        dir: &Path,
        name: &str,
        ingest_keys: &str,
        config: &str,
    ) -> FluxrouteProcess {
        Self::start_inner(dir, name, ingest_keys, config, free_port(), free_port()).await
    }

    /// As [`FluxrouteProcess::start`] on given ports (a restart on the same ports).
    pub async fn start_on(
        dir: &Path,
        name: &str,
        config: &str,
        ingest: u16,
        admin: u16,
    ) -> FluxrouteProcess {
        Self::start_inner(dir, name, "", config, ingest, admin).await
    }

    async fn start_inner(
        dir: &Path,
        name: &str,
        ingest_keys: &str,
        config: &str,
        ingest: u16,
        admin: u16,
    ) -> FluxrouteProcess {
        let text = format!(
            "[ingest]\nlisten = \"127.0.0.1:{ingest}\"\n{ingest_keys}\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n{config}"
        );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("writing the config");
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_fluxroute"))
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting fluxroute");
        let p = FluxrouteProcess {
            child,
            ingest,
            admin,
            log,
        };
        p.wait_healthy(Duration::from_secs(60)).await;
        p
    }

    async fn wait_healthy(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(r) = super::http_client()
                .get(format!("{}/health", self.url()))
                .send()
                .await
            {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "fluxroute not healthy:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:<ingest>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ingest)
    }

    /// `http://127.0.0.1:<admin>`.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin)
    }

    /// Everything the process logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM: asks for the orderly shutdown.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
    }

    /// Waits (polling, with a deadline) for the process to exit; `None` if it still runs after
    /// `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FluxrouteProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
