//! A real Kafka-protocol broker (`nisshi` 0.6.0, formerly published as `tansu`) on a free
//! loopback port, in its own temp dir.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `scripts/test` installs the broker; `FLUXROUTE_BROKER` overrides.
pub fn broker_binary() -> PathBuf {
    if let Ok(p) = std::env::var("FLUXROUTE_BROKER") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/fluxroute/nisshi-0.6.0/bin/nisshi")
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
pub struct Broker {
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

impl Broker {
    /// Starts a broker and waits until it accepts connections.
    pub fn start(storage: Storage) -> Broker {
        Broker::start_with(storage, Options::default())
    }

    /// Starts a broker with [`Options`] and waits until it accepts connections.
    pub fn start_with(storage: Storage, options: Options) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir for the broker");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("socket address");
        let mut t = Broker {
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
        let bin = broker_binary();
        assert!(
            bin.exists(),
            "the Kafka-protocol broker is missing at {}: run ./scripts/test (it runs `cargo install nisshi \
             --version 0.6.0 --locked --features dynostore,libsql --root ~/.cache/fluxroute/nisshi-0.6.0`)",
            bin.display()
        );
        let storage = match self.storage {
            Storage::Memory => "memory://nisshi/".to_owned(),
            // The broker resolves the path against its working directory, which is the temp dir.
            Storage::Sqlite => "sqlite://broker.db".to_owned(),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
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
            .env(
                "RUST_LOG",
                std::env::var("FLUXROUTE_BROKER_LOG").unwrap_or_else(|_| "warn".into()),
            )
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
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
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
        super::influxd::signal(pid, sig);
    }

    /// Starts the broker again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts the broker again on the same port and storage with other [`Options`].
    pub fn restart_with(&mut self, options: Options) {
        self.kill();
        self.options = options;
        self.spawn();
    }

    /// Starts a broker that requires SASL/SCRAM authentication (`--authentication`), knowing
    /// `users`, with `options` (its `extra_args` come after `--authentication`).
    ///
    /// The broker's `user create` does not authenticate, and a broker that requires authentication
    /// refuses it (`NotAuthenticated`, the client sees "early eof"); it keeps users in its
    /// storage. So the broker starts on SQLite storage without authentication, the users are
    /// created, and it restarts on the same storage with `--authentication`.
    pub fn start_authenticated(users: &[ScramUser], options: Options) -> Broker {
        let open = Options {
            advertised: options.advertised.clone(),
            extra_args: Vec::new(),
        };
        let mut t = Broker::start_with(Storage::Sqlite, open);
        for u in users {
            t.create_user(u);
        }
        t.restart_with(authenticated(options));
        t
    }

    /// Runs `nisshi user create` against this broker (which must not require authentication;
    /// see [`Broker::start_authenticated`]). Creating an existing user replaces its password.
    pub fn create_user(&self, user: &ScramUser) {
        self.user_command(&[
            "create",
            &user.name,
            &user.password,
            "--mechanism",
            user.mechanism.broker_name(),
        ]);
    }

    /// Runs `nisshi user delete` against this broker (which must not require authentication).
    pub fn delete_user(&self, name: &str, mechanism: Scram) {
        self.user_command(&["delete", name, "--mechanism", mechanism.broker_name()]);
    }

    fn user_command(&self, args: &[&str]) {
        let out = Command::new(broker_binary())
            .arg("user")
            .args(args)
            .arg("--broker")
            .arg(format!("tcp://{}", self.addr))
            .stdin(Stdio::null())
            .output()
            .expect("running nisshi user");
        assert!(
            out.status.success(),
            "nisshi user {} failed ({}): {}{}\nbroker log:\n{}",
            args.first().copied().unwrap_or_default(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

/// `options` with `--authentication` first among the extra arguments.
pub fn authenticated(options: Options) -> Options {
    let mut extra_args = vec!["--authentication".to_owned()];
    extra_args.extend(options.extra_args);
    Options {
        advertised: options.advertised,
        extra_args,
    }
}

/// A SCRAM mechanism the broker can store credentials for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scram {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl Scram {
    fn broker_name(self) -> &'static str {
        match self {
            Scram::Sha256 => "scram256",
            Scram::Sha512 => "scram512",
        }
    }

    /// The name librdkafka's `sasl.mechanisms` takes.
    pub fn kafka_name(self) -> &'static str {
        match self {
            Scram::Sha256 => "SCRAM-SHA-256",
            Scram::Sha512 => "SCRAM-SHA-512",
        }
    }
}

/// A user for [`Broker::start_authenticated`].
#[derive(Debug, Clone)]
pub struct ScramUser {
    /// User name.
    pub name: String,
    /// Password.
    pub password: String,
    /// Mechanism its credentials are stored for.
    pub mechanism: Scram,
}

impl ScramUser {
    /// A user `name` with `password` for `mechanism`.
    pub fn new(name: &str, password: &str, mechanism: Scram) -> ScramUser {
        ScramUser {
            name: name.to_owned(),
            password: password.to_owned(),
            mechanism,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what the broker said (its temp dir goes with it).
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- last lines of the broker's log ---\n{}",
                tail.join("\n")
            );
            // FLUXROUTE_BROKER_LOG_DIR keeps the whole log of a failing test.
            if let Ok(dir) = std::env::var("FLUXROUTE_BROKER_LOG_DIR") {
                let to = Path::new(&dir).join(format!("broker-{}.log", self.addr.port()));
                let _ = std::fs::write(&to, &log);
                eprintln!("the broker's whole log: {}", to.display());
            }
        }
    }
}

/// A TLS front for a broker: accepts TLS on a loopback port with a given certificate and key,
/// and forwards the decrypted bytes to the broker's plaintext port, both ways.
///
/// nisshi 0.6.0 (as tansu 0.6.0 before it) cannot serve TLS (its `--cert` and `--key` cannot be given together, and its
/// listener never uses the TLS configuration: README, "Kafka security"). Tests of TLS to the
/// brokers put this in front of the broker and have the broker advertise the front's address,
/// so librdkafka's TLS handshake, certificate and host name verification, and SASL inside TLS
/// are real; only the broker's side of TLS is done here.
#[derive(Debug)]
pub struct TlsFront {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsFront {
    /// Binds a free loopback port for a front (to advertise before the broker starts).
    pub fn bind() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").expect("binding the TLS front")
    }

    /// Serves TLS on `listener` with `cert_pem` (leaf first, then any intermediates) and
    /// `key_pem`, forwarding every connection to `upstream`.
    pub fn start(
        listener: TcpListener,
        cert_pem: &str,
        key_pem: &str,
        upstream: SocketAddr,
    ) -> TlsFront {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("private key PEM");
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("certificate and key");
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let addr = listener.local_addr().expect("front address");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("TLS front runtime");
            rt.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("TLS front listener");
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let _ = client.set_nodelay(true);
                                // A failed handshake is the client's to report.
                                let Ok(mut tls) = acceptor.accept(client).await else { return };
                                let Ok(mut broker) = tokio::net::TcpStream::connect(upstream).await
                                else {
                                    return;
                                };
                                let _ = broker.set_nodelay(true);
                                let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
                            });
                        }
                    }
                }
            });
            // Dropping the runtime cuts every forwarded connection.
        });
        TlsFront {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `host:port` of the front, for `bootstrap.servers` and the broker's advertised address.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Stops accepting and cuts every forwarded connection.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop();
    }
}
