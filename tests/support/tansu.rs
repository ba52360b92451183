//! A real Kafka-protocol broker (`tansu`) on a free loopback port, in its own temp dir.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `scripts/test` installs the broker; `FLUXROUTE_TANSU` overrides.
pub fn tansu_binary() -> PathBuf {
    if let Ok(p) = std::env::var("FLUXROUTE_TANSU") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/fluxroute/tansu-0.6.0/bin/tansu")
}

/// How the broker stores data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In memory: fast, lost when the broker stops.
    Memory,
    /// SQLite file in the broker's dir: survives restarts and kill -9.
    Sqlite,
}

/// How to start a broker beyond its storage.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The address advertised to clients in metadata (`host:port`), when clients must reach the
    /// broker through something else (a fault proxy); defaults to the listening address.
    pub advertised: Option<String>,
    /// Extra arguments after `broker` (authentication, TLS certificate and key).
    pub extra_args: Vec<String>,
}

/// A running broker; killed on drop.
#[derive(Debug)]
pub struct Tansu {
    child: Option<Child>,
    addr: SocketAddr,
    storage: Storage,
    options: Options,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a free loopback port")
}

impl Tansu {
    /// Starts a broker and waits until it accepts connections.
    pub fn start(storage: Storage) -> Tansu {
        Tansu::start_with(storage, Options::default())
    }

    /// Starts a broker with [`Options`] and waits until it accepts connections.
    pub fn start_with(storage: Storage, options: Options) -> Tansu {
        let dir = tempfile::tempdir().expect("temp dir for the broker");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("socket address");
        let mut t = Tansu {
            child: None,
            addr,
            storage,
            options,
            dir,
        };
        t.spawn();
        t
    }

    fn spawn(&mut self) {
        let bin = tansu_binary();
        assert!(
            bin.exists(),
            "the Kafka-protocol broker is missing at {}: run ./scripts/test (it runs `cargo install tansu \
             --version 0.6.0 --locked --features dynostore,libsql --root ~/.cache/fluxroute/tansu-0.6.0`)",
            bin.display()
        );
        let storage = match self.storage {
            Storage::Memory => "memory://tansu/".to_owned(),
            // tansu resolves the path against its working directory, which is the temp dir.
            Storage::Sqlite => "sqlite://tansu.db".to_owned(),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .expect("broker log file");
        let child = Command::new(&bin)
            .arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://{}", self.addr))
            .arg("--advertised-listener-url")
            .arg(format!(
                "tcp://{}",
                self.options
                    .advertised
                    .clone()
                    .unwrap_or_else(|| self.addr.to_string())
            ))
            .arg("--storage-engine")
            .arg(storage)
            .args(&self.options.extra_args)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30));
    }

    // Polls a condition with a deadline; the pause between polls is not a wait for an outcome.
    #[allow(clippy::disallowed_methods)]
    fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("broker exited with {status} at start; log:\n{}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "broker not ready after {timeout:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The address the broker listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }

    /// The broker's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// kill -9 the broker (data survives with [`Storage::Sqlite`]).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP the broker: connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT a frozen broker.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("broker running").id();
        let status = Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill {sig} {pid} failed");
    }

    /// Starts the broker again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}
