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
        Self::start_free(dir, name, "", config).await
    }

    /// As [`FluxrouteProcess::start`], with `ingest_keys` (TOML key lines) under `[ingest]`.
    pub async fn start_with(
        dir: &Path,
        name: &str,
        ingest_keys: &str,
        config: &str,
    ) -> FluxrouteProcess {
        Self::start_free(dir, name, ingest_keys, config).await
    }

    /// Starts on free ports. A free port is found by binding and releasing it, so another
    /// process can take it before fluxroute binds it: then fluxroute exits at once saying so,
    /// and it starts again on other ports.
    async fn start_free(
        dir: &Path,
        name: &str,
        ingest_keys: &str,
        config: &str,
    ) -> FluxrouteProcess {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::start_inner(dir, name, ingest_keys, config, free_port(), free_port()).await
            {
                Ok(p) => return p,
                Err(log) if log.contains("Address already in use") => last = log,
                Err(log) => panic!("{log}"),
            }
        }
        panic!("fluxroute found no free ports in 5 tries:\n{last}")
    }

    /// As [`FluxrouteProcess::start`] on given ports (a restart on the same ports).
    pub async fn start_on(
        dir: &Path,
        name: &str,
        config: &str,
        ingest: u16,
        admin: u16,
    ) -> FluxrouteProcess {
        Self::start_inner(dir, name, "", config, ingest, admin)
            .await
            .unwrap_or_else(|log| panic!("{log}"))
    }

    async fn start_inner(
        dir: &Path,
        name: &str,
        ingest_keys: &str,
        config: &str,
        ingest: u16,
        admin: u16,
    ) -> Result<FluxrouteProcess, String> {
        let text = format!(
            "[ingest]\nlisten = \"127.0.0.1:{ingest}\"\n{ingest_keys}\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n{config}"
        );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("writing the config");
        let log = dir.join(format!("{name}.log"));
        // What this start writes comes after what earlier starts on the same log wrote.
        let before = std::fs::metadata(&log).map_or(0, |m| m.len());
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
        let mut p = FluxrouteProcess {
            child,
            ingest,
            admin,
            log,
        };
        p.wait_healthy(Duration::from_secs(60), before).await?;
        Ok(p)
    }

    /// Waits for `/health` 200; `Err` with what this start logged (from byte `from` of the log)
    /// when the process exits first or `within` passes.
    async fn wait_healthy(&mut self, within: Duration, from: u64) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(r) = super::http_client()
                .get(format!("{}/health", self.url()))
                .send()
                .await
            {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "fluxroute exited ({status}):\n{}",
                    self.log_from(from)
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("fluxroute not healthy:\n{}", self.log_from(from)));
            }
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

    /// The log from byte `from` on.
    fn log_from(&self, from: u64) -> String {
        let all = self.log();
        all.get(usize::try_from(from).unwrap_or(0)..)
            .unwrap_or(&all)
            .to_owned()
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
