//! Enqueue throughput of the embedded queue: 8 concurrent enqueuers, one record per call, with
//! fsync `Always` and `Interval(100ms)`. Run in release:
//! `cargo run --release --example embedded_throughput [-- RECORDS_PER_RUN]`.

#![allow(clippy::unwrap_used)] // a measurement tool: any failure should stop it loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fluxroute::queue::embedded::{EmbeddedQueue, EmbeddedSettings, FsyncPolicy, RetentionSettings};
use fluxroute::queue::{OutgoingRecord, Queue, RecordMeta};

const ENQUEUERS: usize = 8;

fn body(lines: usize, seed: usize) -> Bytes {
    let mut s = String::with_capacity(lines * 100);
    for i in 0..lines {
        let n = seed * lines + i;
        s.push_str(&format!(
            "cpu,host=server{:04},region=eu-west-{} usage_idle={}.{},usage_user={}.{} {}\n",
            n % 1000,
            n % 7,
            n % 100,
            (n * 7) % 1000,
            (n * 13) % 100,
            (n * 3) % 1000,
            1_700_000_000_000_000_000u64 + n as u64 * 1_000_000_007
        ));
    }
    Bytes::from(s)
}

async fn run(fsync: FsyncPolicy, lines: usize, total: usize) {
    let dir = tempfile::tempdir().unwrap();
    let q = Arc::new(
        EmbeddedQueue::open(EmbeddedSettings {
            dir: dir.path().join("queue"),
            fsync,
            partitions: 12,
            max_record_bytes: 1 << 20,
            retention: RetentionSettings::default(),
        })
        .unwrap(),
    );
    let bodies: Arc<Vec<Bytes>> = Arc::new((0..16).map(|i| body(lines, i)).collect());
    let record_bytes = bodies[0].len();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..ENQUEUERS {
        let p = q.producer();
        let bodies = Arc::clone(&bodies);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in (t..total).step_by(ENQUEUERS) {
                let rec = OutgoingRecord {
                    partition: (i % 12) as u32,
                    meta: RecordMeta::write("bench", ""),
                    payload: bodies[i % bodies.len()].clone(),
                };
                let t0 = Instant::now();
                p.enqueue(vec![rec]).await.unwrap();
                lat.push(t0.elapsed());
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    lat.sort_unstable();
    let pct = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    println!(
        "{:<16} {:>5} lines ({:>6} B) x {total:>5}: {:>8.0} records/s {:>7.1} MB/s {:>9.0} lines/s | ack p50 {:>6.2} ms p99 {:>6.2} ms | {:>5.1} enqueues/sync | disk {} MB",
        format!("{fsync:?}"),
        lines,
        record_bytes,
        total as f64 / elapsed.as_secs_f64(),
        (total * record_bytes) as f64 / 1e6 / elapsed.as_secs_f64(),
        (total * lines) as f64 / elapsed.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        total as f64 / q.syncs_total().max(1) as f64,
        q.disk_bytes().unwrap() / 1_000_000,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total: usize = std::env::args().nth(1).map_or(800, |s| s.parse().unwrap());
    for (lines, n) in [(5000, total), (100, total * 10)] {
        for fsync in [
            FsyncPolicy::Always,
            FsyncPolicy::Interval(Duration::from_millis(100)),
        ] {
            run(fsync, lines, n).await;
        }
    }
}
