//! Hostile HTTP against the ingest listener: slow and idle clients, more connections than the
//! limit, huge heads, compression bombs, invalid UTF-8, unknown endpoints and wrong methods.
//! Each case asserts the answer and that fluxroute keeps serving; one runs them all at once
//! against a child process and bounds its memory.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use support::config::Setup;
use support::fluxroute::Fluxroute;
use support::influxd::{http_request, Influxd};
use support::process::FluxrouteProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// fluxroute on the embedded queue in `dir`, routing `db*` to a cluster at `cluster_url`, with
/// `ingest` keys added to `[ingest]`.
fn config(dir: &Path, cluster_url: &str, ingest: &str) -> String {
    Setup::embedded(&dir.join("queue"))
        .section(&format!("[ingest]\nmax_body_bytes = 1000000\n{ingest}"))
        .grace(None)
        .cluster("c", cluster_url)
        .route(&["db*"], &["c"])
        .toml()
}

/// Reads until the server closes the connection or `within` passes; the bytes read and whether
/// it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (out, false),
            Ok(Ok(0) | Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn status_of(answer: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `n` bytes of zeros, gzip-compressed, written in chunks.
fn gzip_zeros(n: usize) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        e.write_all(&chunk[..k]).unwrap();
        left -= k;
    }
    e.finish().unwrap()
}

async fn ping(addr: SocketAddr) -> u16 {
    tokio::task::spawn_blocking(move || http_request(addr, "GET", "/ping", &[], b"").unwrap())
        .await
        .unwrap()
        .status
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_idle_clients_are_closed_at_the_head_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let fr = Fluxroute::start(&config(
        dir.path(),
        "http://127.0.0.1:9",
        "header_read_timeout = \"1s\"",
    ))
    .await;

    // A connection that never sends a byte.
    let started = Instant::now();
    let mut idle = TcpStream::connect(fr.ingest).await.unwrap();
    let (bytes, closed) = read_until_closed(&mut idle, Duration::from_secs(15)).await;
    assert!(closed, "an idle connection stayed open");
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the deadline: {:?}",
        started.elapsed()
    );

    // Slow-loris: a head trickling in one byte every 100 ms never completes (it would take
    // ~10 s); the server closes it at the deadline.
    let head = format!(
        "POST /write?db=db HTTP/1.1\r\nHost: fluxroute\r\nX-Padding: {}\r\nContent-Length: 8\r\n\r\n",
        "p".repeat(40)
    );
    let mut slow = TcpStream::connect(fr.ingest).await.unwrap();
    let started = Instant::now();
    let mut sent = 0;
    for b in head.as_bytes() {
        if slow.write_all(&[*b]).await.is_err() {
            break;
        }
        sent += 1;
        let mut probe = [0u8; 1];
        // Wait 100 ms for the server to close; a closed connection reads 0 (or errors).
        match tokio::time::timeout(Duration::from_millis(100), slow.read(&mut probe)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(_)) => panic!("the server answered an incomplete head"),
            Err(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the slow head was never cut off"
        );
    }
    assert!(
        sent < head.len(),
        "the whole head went through ({sent} bytes in {:?})",
        started.elapsed()
    );

    // A kept-alive connection that served a request is closed once idle past the deadline.
    let mut kept = TcpStream::connect(fr.ingest).await.unwrap();
    kept.write_all(b"GET /ping HTTP/1.1\r\nHost: fluxroute\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 204");
    let (_, closed) = read_until_closed(&mut kept, Duration::from_secs(15)).await;
    assert!(closed, "an idle kept-alive connection stayed open");

    assert_eq!(ping(fr.ingest).await, 204);
    fr.wait_metric(
        "fluxroute_http_connections_closed_total{listener=\"ingest\",reason=\"header_timeout\"}",
        3.0,
        Duration::from_secs(10),
    )
    .await;
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit_are_closed_and_slots_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let fr = Fluxroute::start(&config(
        dir.path(),
        "http://127.0.0.1:9",
        "max_connections = 8",
    ))
    .await;
    // The readiness check's connection may still be closing on the server's side.
    fr.wait_metric(
        "fluxroute_http_connections{listener=\"ingest\"}",
        0.0,
        Duration::from_secs(10),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(fr.ingest).await.unwrap());
    }
    fr.wait_metric(
        "fluxroute_http_connections{listener=\"ingest\"}",
        8.0,
        Duration::from_secs(10),
    )
    .await;

    // The ninth is accepted by the kernel and closed at once by fluxroute.
    let mut extra = TcpStream::connect(fr.ingest).await.unwrap();
    let _ = extra
        .write_all(b"GET /ping HTTP/1.1\r\nHost: fluxroute\r\n\r\n")
        .await;
    let (bytes, closed) = read_until_closed(&mut extra, Duration::from_secs(10)).await;
    assert!(closed, "a connection over the limit was kept open");
    assert!(
        bytes.is_empty(),
        "a connection over the limit was served: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(
        fr.metric(
            "fluxroute_http_connections_closed_total{listener=\"ingest\",reason=\"connection_limit\"}"
        )
        .await,
        Some(1.0)
    );
    // The admin listener has its own limit: operators still get in.
    let status = support::http_client()
        .get(format!("{}/admin/v1/status", fr.admin_url()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    // Held connections serve requests normally; closing them frees their slots.
    held[0]
        .write_all(b"GET /ping HTTP/1.1\r\nHost: fluxroute\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut held[0], Duration::from_secs(10)).await;
    assert_eq!(status_of(&answer), 204);
    drop(held);
    fr.wait_metric(
        "fluxroute_http_connections{listener=\"ingest\"}",
        0.0,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(ping(fr.ingest).await, 204);
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_heads_are_refused_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let fr = Fluxroute::start(&config(
        dir.path(),
        "http://127.0.0.1:9",
        "max_header_bytes = 16384",
    ))
    .await;
    let big_header = format!(
        "POST /write?db=db HTTP/1.1\r\nHost: fluxroute\r\nX-Big: {}\r\nContent-Length: 8\r\n\r\nm v=1 1\n",
        "a".repeat(100_000)
    );
    let many_headers = format!(
        "POST /write?db=db HTTP/1.1\r\nHost: fluxroute\r\n{}Content-Length: 8\r\n\r\nm v=1 1\n",
        (0..500)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let long_uri = format!(
        "GET /ping?{} HTTP/1.1\r\nHost: fluxroute\r\n\r\n",
        "q".repeat(100_000)
    );
    for (what, request) in [
        ("a 100 kB header", big_header),
        ("500 headers", many_headers),
        ("a 100 kB URI", long_uri),
    ] {
        let mut s = TcpStream::connect(fr.ingest).await.unwrap();
        // The server may stop reading once the head is too large: a failed write is fine.
        let _ = s.write_all(request.as_bytes()).await;
        let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
        assert!(closed, "{what}: connection left open");
        assert_eq!(
            status_of(&answer),
            431,
            "{what}: {:?}",
            String::from_utf8_lossy(&answer)
        );
        assert_eq!(ping(fr.ingest).await, 204, "{what}: server unhealthy after");
    }
    // A head just under the limit is served.
    let ok = http_request(
        fr.ingest,
        "GET",
        "/ping",
        &[("X-Fits", &"a".repeat(8000))],
        b"",
    )
    .unwrap();
    assert_eq!(ok.status, 204);
    fr.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn compression_bombs_and_bodies_over_the_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fr = Fluxroute::start(&config(dir.path(), "http://127.0.0.1:9", "")).await;
    let addr = fr.ingest;
    let gz = [("Content-Encoding", "gzip")];

    // 1 GB of zeros in ~1 MB of gzip: refused once the decompressed size passes the limit.
    let bomb = gzip_zeros(1 << 30);
    assert!(bomb.len() < 1_100_000, "bomb is {} bytes", bomb.len());
    let started = Instant::now();
    let r = tokio::task::spawn_blocking(move || {
        http_request(addr, "POST", "/write?db=db", &gz, &bomb).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.text(), "{\"error\":\"Request Entity Too Large\"}\n");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the bomb was read to the end: {:?}",
        started.elapsed()
    );

    // A bomb inside a bomb: the outer layer decompresses to gzip bytes, which are not line
    // protocol (fluxroute, like InfluxDB, decodes one layer).
    let nested = gzip(&gzip_zeros(50 << 20));
    let r = tokio::task::spawn_blocking(move || {
        http_request(addr, "POST", "/write?db=db", &gz, &nested).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("unable to parse"), "{}", r.text());

    // A plain body over max_body_bytes (declared and streamed).
    let big = vec![b'x'; 2_000_000];
    let r = tokio::task::spawn_blocking(move || {
        http_request(addr, "POST", "/write?db=db", &[], &big).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(ping(fr.ingest).await, 204);
    fr.stop().await.unwrap();
}

/// The same hostile requests to a real influxd and to fluxroute: the same status, and the same
/// body where influxd answers JSON.
#[tokio::test(flavor = "multi_thread")]
async fn answers_like_influxd_to_odd_requests() {
    let influxd = Influxd::start().unwrap();
    influxd.query("CREATE DATABASE db").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fr = Fluxroute::start(&config(dir.path(), &influxd.url(), "")).await;
    // influxd 1.6 stores a series key with invalid UTF-8 but then fails with a 500 on it and
    // on later writes to it; fluxroute drops such a point as 1.8's `validate-keys` does (400,
    // partial write), so it is sent to influxd only after a valid write created the database.
    let invalid_utf8_key: &[u8] = b"m\xff,t=\xfe v=1 1\n";
    let cases: &[(&str, &str, &[u8])] = &[
        ("GET", "/write?db=db", b""),
        ("PUT", "/write?db=db", b"m v=1 1\n"),
        ("DELETE", "/ping", b""),
        ("GET", "/nope", b""),
        ("POST", "/nope", b"m v=1 1\n"),
        ("POST", "/write", b"m v=1 1\n"),
        ("POST", "/write?db=db", b"m v=1 1\nm,t=a s=\"\xfe\xfd\" 2\n"),
    ];
    // Every request to influxd first, then to fluxroute, so that fluxroute's deliveries can be
    // checked against what the direct writes stored.
    let mut direct = Vec::new();
    for (method, path, body) in cases {
        direct.push(influxd.request(method, path, body).unwrap());
    }
    let stored_direct = support::points::stored(&influxd, "db");
    assert!(!stored_direct.is_empty());
    let mut differences = Vec::new();
    let mut accepted_lines = 0;
    for ((method, path, body), want) in cases.iter().zip(&direct) {
        let (m, p, b) = (method.to_string(), path.to_string(), body.to_vec());
        let addr = fr.ingest;
        let got = tokio::task::spawn_blocking(move || http_request(addr, &m, &p, &[], &b))
            .await
            .unwrap()
            .unwrap();
        if got.status == 204 {
            accepted_lines += body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count();
        }
        let json = want
            .headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("application/json"));
        if got.status != want.status || (json && got.text() != want.text()) {
            differences.push(format!(
                "{method} {path}: influxd {} {:?}, fluxroute {} {:?}",
                want.status,
                want.text(),
                got.status,
                got.text()
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    let addr = fr.ingest;
    let r = tokio::task::spawn_blocking(move || {
        http_request(addr, "POST", "/write?db=db", &[], invalid_utf8_key).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    // influxd's encoder would write each invalid byte as the escape \ufffd; the same JSON string.
    let got: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        got["error"],
        "partial write: key contains invalid unicode: \"m\u{fffd},t=\u{fffd}\" dropped=1"
    );

    // The accepted lines (invalid UTF-8 included) reach influxd byte for byte: once delivered,
    // the stored points are exactly those the direct writes made (same series, same times).
    fr.wait_metric(
        "fluxroute_drain_lines_written_total{cluster=\"c\"}",
        accepted_lines as f64,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(support::points::stored(&influxd, "db"), stored_direct);
    fr.stop().await.unwrap();
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// Everything at once against a child process: 1,000 idle connections, slow heads, huge heads
/// and compression bombs. fluxroute keeps answering `/health` and its memory stays bounded.
#[tokio::test(flavor = "multi_thread")]
async fn stays_healthy_and_bounded_under_a_mix_of_hostile_clients() {
    let dir = tempfile::tempdir().unwrap();
    let body = config(
        dir.path(),
        "http://127.0.0.1:9",
        "header_read_timeout = \"20s\"\nmax_connections = 1200",
    )
    .replacen("[ingest]\n", "", 1);
    // FluxrouteProcess writes `[ingest] listen` itself; the ingest keys go right after it.
    let (ingest_keys, rest) = body.split_once("[queue]").unwrap();
    let fr = FluxrouteProcess::start_with(dir.path(), "fr", ingest_keys, &format!("[queue]{rest}"))
        .await;
    let addr: SocketAddr = format!("127.0.0.1:{}", fr.ingest).parse().unwrap();
    // Warm up: a few writes so buffers and pools exist before the baseline.
    for _ in 0..20 {
        let r = tokio::task::spawn_blocking(move || {
            http_request(addr, "POST", "/write?db=db", &[], b"m v=1 1\n").unwrap()
        })
        .await
        .unwrap();
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let baseline = rss_kib(fr.pid());

    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /write?db=db HTTP/1.1\r\nHost: f\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    let bomb = std::sync::Arc::new(gzip_zeros(1 << 30));
    let mut hostile = Vec::new();
    for i in 0..8 {
        let bomb = std::sync::Arc::clone(&bomb);
        hostile.push(tokio::task::spawn_blocking(move || {
            if i % 2 == 0 {
                http_request(
                    addr,
                    "POST",
                    "/write?db=db",
                    &[("Content-Encoding", "gzip")],
                    &bomb,
                )
                .map(|r| r.status)
            } else {
                let big = "b".repeat(200_000);
                http_request(
                    addr,
                    "POST",
                    "/write?db=db",
                    &[("X-Big", &big)],
                    b"m v=1 1\n",
                )
                .map(|r| r.status)
            }
        }));
    }
    let mut statuses = Vec::new();
    for h in hostile {
        statuses.push(h.await.unwrap());
    }
    for (i, s) in statuses.iter().enumerate() {
        // A huge head may see the connection closed while still sending: a refusal either way.
        match s {
            Ok(code) => assert!(
                (i % 2 == 0 && *code == 413) || (i % 2 == 1 && *code == 431),
                "request {i}: {code}"
            ),
            Err(e) => assert!(i % 2 == 1, "request {i}: {e}"),
        }
    }
    // Still serving writes and health with all of that open.
    let health = support::http_client()
        .get(format!("{}/health", fr.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let r = tokio::task::spawn_blocking(move || {
        http_request(addr, "POST", "/write?db=db", &[], b"m v=2 2\n").unwrap()
    })
    .await
    .unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    let peak = rss_kib(fr.pid());
    let grown_mib = peak.saturating_sub(baseline) / 1024;
    eprintln!(
        "hostile mix: RSS {} MiB at baseline, {} MiB with 1,000 idle + 50 slow connections, \
         4 gzip bombs and 4 huge heads (+{grown_mib} MiB)",
        baseline / 1024,
        peak / 1024
    );
    assert!(
        grown_mib < 128,
        "RSS grew by {grown_mib} MiB (baseline {} KiB, now {peak} KiB)",
        baseline
    );
    drop(idle);
    drop(slow);
}
