//! A TCP fault proxy for tests: listens on a free loopback port and forwards every connection to
//! an upstream address, misbehaving as its [`Mode`] says. The mode can be changed at any time and
//! applies to new connections and to connections already open (each forwarded chunk reads the
//! current mode; a switch to [`Mode::Refuse`] drops idle connections at once).
//!
//! It counts connections and bytes ([`ProxyStats`]) so tests can check that the fault really
//! happened (connections refused, bytes discarded, responses cut).
//!
//! Runs as tasks on the test's tokio runtime; everything stops when the [`FaultProxy`] is dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How the proxy treats traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything unchanged.
    Pass,
    /// Reset new connections at once (accept, then close with `SO_LINGER` 0) and drop the open
    /// ones the same way: what a client sees of a process that died or a port that closed.
    Refuse,
    /// Accept and read, discard everything, never forward nor answer: a network partition or a
    /// hung host. A connection that lost bytes this way stays a black hole until it is closed
    /// (its byte stream is broken), even after the mode changes back.
    Blackhole,
    /// Delay each chunk by this much, in both directions.
    Latency(Duration),
    /// Forward requests; forward at most `after_bytes` bytes of the upstream's answer (counted
    /// from the last bytes the client sent on that connection), then close the connection: a
    /// connection cut mid-response.
    CutResponse {
        /// Bytes of the answer that get through.
        after_bytes: u64,
    },
    /// Forward at most this many bytes per second, in each direction of each connection.
    Bandwidth(u64),
}

/// Counters of a [`FaultProxy`] since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted (including refused and blackholed ones).
    pub connections: u64,
    /// Connections open now.
    pub open: u64,
    /// New connections reset because the mode was [`Mode::Refuse`].
    pub refused: u64,
    /// Open connections reset by a switch to [`Mode::Refuse`].
    pub dropped: u64,
    /// Connections closed mid-answer by [`Mode::CutResponse`].
    pub cut: u64,
    /// Bytes forwarded from clients to the upstream.
    pub bytes_to_upstream: u64,
    /// Bytes forwarded from the upstream to clients.
    pub bytes_to_client: u64,
    /// Bytes read and thrown away (black hole, or the rest of a cut answer).
    pub bytes_discarded: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    open: AtomicU64,
    refused: AtomicU64,
    dropped: AtomicU64,
    cut: AtomicU64,
    bytes_to_upstream: AtomicU64,
    bytes_to_client: AtomicU64,
    bytes_discarded: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    upstream: Mutex<Option<SocketAddr>>,
    mode: watch::Sender<Mode>,
    counters: Counters,
    cancel: CancellationToken,
}

/// A running fault proxy; stops (dropping every connection) on drop.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

/// Largest chunk read at once.
const CHUNK: usize = 64 * 1024;
/// How long the proxy waits to connect to the upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl FaultProxy {
    /// Starts a proxy in [`Mode::Pass`] on a free loopback port, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let p = FaultProxy::bind().await;
        p.set_upstream(upstream);
        p
    }

    /// Starts a proxy without an upstream yet (connections are reset until
    /// [`FaultProxy::set_upstream`]): for a server that must know the proxy's address before it
    /// starts, such as a broker advertising it.
    pub async fn bind() -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the fault proxy");
        let addr = listener.local_addr().expect("fault proxy address");
        let shared = Arc::new(Shared {
            upstream: Mutex::new(None),
            mode: watch::Sender::new(Mode::Pass),
            counters: Counters::default(),
            cancel: CancellationToken::new(),
        });
        tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        FaultProxy { addr, shared }
    }

    /// Where new connections are forwarded from now on.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.shared.upstream.lock().expect("upstream lock") = Some(upstream);
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, for an HTTP upstream.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches the mode; new and open connections follow it from their next chunk on.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.send_replace(mode);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        *self.shared.mode.borrow()
    }

    /// The counters so far.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProxyStats {
            connections: get(&c.connections),
            open: get(&c.open),
            refused: get(&c.refused),
            dropped: get(&c.dropped),
            cut: get(&c.cut),
            bytes_to_upstream: get(&c.bytes_to_upstream),
            bytes_to_client: get(&c.bytes_to_client),
            bytes_discarded: get(&c.bytes_discarded),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            () = shared.cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((client, _)) = accepted else {
            continue;
        };
        let _ = client.set_nodelay(true);
        shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve(client, Arc::clone(&shared)));
    }
}

/// Closes a socket with a reset (`SO_LINGER` 0) instead of a FIN.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

async fn serve(client: TcpStream, shared: Arc<Shared>) {
    let c = &shared.counters;
    let mode = *shared.mode.borrow();
    if mode == Mode::Refuse {
        c.refused.fetch_add(1, Ordering::Relaxed);
        reset(&client);
        return;
    }
    c.open.fetch_add(1, Ordering::Relaxed);
    if mode == Mode::Blackhole {
        black_hole(client, &shared).await;
    } else {
        forward(client, &shared).await;
    }
    c.open.fetch_sub(1, Ordering::Relaxed);
}

/// A connection that never reaches the upstream: read and discard until the client closes it,
/// the proxy stops, or the mode turns to [`Mode::Refuse`].
async fn black_hole(mut client: TcpStream, shared: &Shared) {
    let mut mode = shared.mode.subscribe();
    let mut buf = vec![0u8; CHUNK];
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            r = mode.changed() => {
                if r.is_err() || *mode.borrow_and_update() == Mode::Refuse {
                    shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    reset(&client);
                    return;
                }
            }
            n = client.read(&mut buf) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    shared.counters.bytes_discarded.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Which way a pump moves bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Client to upstream (requests).
    Up,
    /// Upstream to client (answers).
    Down,
}

/// How a pump ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Its source closed (or failed): the other direction may go on.
    Eof,
    /// The proxy stops: reset the connection.
    Stopped,
    /// The mode turned to [`Mode::Refuse`]: reset the connection.
    Refused,
    /// [`Mode::CutResponse`] let its bytes through: close the connection.
    Cut,
    /// Close the connection (both directions) without a reset.
    Close,
}

/// State shared by the two pumps of one connection.
#[derive(Debug, Default)]
struct Conn {
    /// Lost bytes in a black hole: discard everything from now on.
    tainted: AtomicBool,
    /// Answer bytes forwarded since the client last sent something (for `CutResponse`).
    answered: AtomicU64,
}

async fn forward(mut client: TcpStream, shared: &Shared) {
    let upstream = *shared.upstream.lock().expect("upstream lock");
    let connected = match upstream {
        Some(addr) => tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .ok()
            .and_then(Result::ok),
        None => None,
    };
    let Some(mut server) = connected else {
        reset(&client);
        return;
    };
    let _ = server.set_nodelay(true);
    let conn = Conn::default();
    let end = {
        let (mut client_r, mut client_w) = client.split();
        let (mut server_r, mut server_w) = server.split();
        let up = pump(&mut client_r, &mut server_w, Direction::Up, shared, &conn);
        let down = pump(&mut server_r, &mut client_w, Direction::Down, shared, &conn);
        tokio::pin!(up, down);
        // Both directions run until both end; a Kill from either ends the connection.
        let (mut up_done, mut down_done) = (false, false);
        loop {
            let end = tokio::select! {
                e = &mut up, if !up_done => { up_done = true; e }
                e = &mut down, if !down_done => { down_done = true; e }
            };
            if end != End::Eof || (up_done && down_done) {
                break end;
            }
        }
    };
    let c = &shared.counters;
    match end {
        End::Eof | End::Close => {}
        // A cut answer ends like a peer closing mid-message: FIN after the partial bytes.
        End::Cut => {
            c.cut.fetch_add(1, Ordering::Relaxed);
        }
        End::Stopped => {
            reset(&client);
            reset(&server);
        }
        End::Refused => {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            reset(&client);
            reset(&server);
        }
    }
}

/// Moves bytes one way until EOF or a fault ends the connection.
async fn pump<R, W>(from: &mut R, to: &mut W, dir: Direction, shared: &Shared, conn: &Conn) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let c = &shared.counters;
    let mut mode = shared.mode.subscribe();
    let mut buf = vec![0u8; CHUNK];
    let forwarded = match dir {
        Direction::Up => &c.bytes_to_upstream,
        Direction::Down => &c.bytes_to_client,
    };
    loop {
        let n = tokio::select! {
            () = shared.cancel.cancelled() => return End::Stopped,
            r = mode.changed() => {
                if r.is_err() {
                    return End::Stopped;
                }
                if *mode.borrow_and_update() == Mode::Refuse {
                    return End::Refused;
                }
                continue;
            }
            n = from.read(&mut buf) => n,
        };
        let n = match n {
            // A black hole never passes the close on; it just ends.
            Ok(0) | Err(_) if conn.tainted.load(Ordering::Relaxed) => return End::Close,
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return End::Eof;
            }
            Ok(n) => n,
        };
        let current = *mode.borrow_and_update();
        if current == Mode::Blackhole {
            conn.tainted.store(true, Ordering::Relaxed);
        }
        if conn.tainted.load(Ordering::Relaxed) {
            c.bytes_discarded.fetch_add(n as u64, Ordering::Relaxed);
            continue;
        }
        let chunk = &buf[..n];
        let (out, cut) = match current {
            Mode::Refuse => return End::Refused,
            Mode::Blackhole => unreachable!("handled above"),
            Mode::Pass | Mode::Bandwidth(_) => (chunk, false),
            Mode::Latency(d) => {
                tokio::time::sleep(d).await;
                (chunk, false)
            }
            Mode::CutResponse { .. } if dir == Direction::Up => {
                conn.answered.store(0, Ordering::Relaxed);
                (chunk, false)
            }
            Mode::CutResponse { after_bytes } => {
                let sent = conn.answered.load(Ordering::Relaxed);
                let allowed = after_bytes.saturating_sub(sent).min(n as u64) as usize;
                conn.answered.fetch_add(allowed as u64, Ordering::Relaxed);
                (&chunk[..allowed], allowed < n)
            }
        };
        // Bytes are counted before they are written: a peer never sees bytes the counters miss.
        let written = match current {
            Mode::Bandwidth(bps) => paced(to, out, bps, forwarded).await,
            _ => {
                forwarded.fetch_add(out.len() as u64, Ordering::Relaxed);
                to.write_all(out).await
            }
        };
        if cut {
            c.bytes_discarded
                .fetch_add((n - out.len()) as u64, Ordering::Relaxed);
            let _ = to.flush().await;
            return End::Cut;
        }
        if written.is_err() {
            return End::Eof;
        }
    }
}

/// Writes `chunk` at `bps` bytes per second, in slices of about 1/20 s, each sent after its
/// share of time and counted in `forwarded`.
async fn paced<W: AsyncWrite + Unpin>(
    to: &mut W,
    chunk: &[u8],
    bps: u64,
    forwarded: &AtomicU64,
) -> std::io::Result<()> {
    let bps = bps.max(1);
    let slice = (bps / 20).max(1) as usize;
    for part in chunk.chunks(slice) {
        tokio::time::sleep(Duration::from_secs_f64(part.len() as f64 / bps as f64)).await;
        forwarded.fetch_add(part.len() as u64, Ordering::Relaxed);
        to.write_all(part).await?;
    }
    Ok(())
}
