//! kill -9 at a random moment loses no acknowledged record (fsync `Always`), and the store
//! reopens. The parent re-runs this test binary as a child (`crash_child`) that appends from 8
//! concurrent tasks and prints every acknowledged record; the parent SIGKILLs it after a random
//! number of acknowledgements, reopens the store and looks for every one of them. Five rounds
//! on the same store.

#![allow(clippy::unwrap_used)] // tests may unwrap (clippy.toml allows it in #[test] fns only)

use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fluxroute::queue::embedded::{EmbeddedQueue, EmbeddedSettings, FsyncPolicy, RetentionSettings};
use fluxroute::queue::{Event, OutgoingRecord, Queue, RecordMeta};

const DIR_ENV: &str = "FLUXROUTE_CRASH_DIR";
const ROUND_ENV: &str = "FLUXROUTE_CRASH_ROUND";
const PARTITIONS: u32 = 4;

fn settings(dir: &str) -> EmbeddedSettings {
    EmbeddedSettings {
        dir: dir.into(),
        fsync: FsyncPolicy::Always,
        partitions: PARTITIONS,
        max_record_bytes: 1024 * 1024,
        retention: RetentionSettings::default(),
    }
}

/// The child: appends until killed. A no-op unless started by the parent.
#[test]
fn crash_child() {
    let (Ok(dir), Ok(round)) = (std::env::var(DIR_ENV), std::env::var(ROUND_ENV)) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let q = Arc::new(EmbeddedQueue::open(settings(&dir)).unwrap());
        let mut tasks = Vec::new();
        for task in 0..8u64 {
            let q = Arc::clone(&q);
            let round = round.clone();
            tasks.push(tokio::spawn(async move {
                let producer = q.producer();
                for i in 0u64.. {
                    let id = format!("{round}-{task}-{i}");
                    // Sizes from 100 B to ~64 KB so batches of very different sizes get synced.
                    let filler = "x".repeat(((i * 7919 + task * 104_729) % 65_536) as usize);
                    let rec = OutgoingRecord {
                        partition: ((task + i) % u64::from(PARTITIONS)) as u32,
                        meta: RecordMeta::write("crash", ""),
                        payload: Bytes::from(format!("{id} {filler}")),
                    };
                    producer.enqueue(vec![rec]).await.unwrap();
                    println!("ACK {id}");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn kill_9_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("queue");
    let store = store.to_str().unwrap().to_owned();
    let exe = std::env::current_exe().unwrap();
    let mut acked: HashSet<String> = HashSet::new();
    for round in 0..5 {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(DIR_ENV, &store)
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let kill_after = 20 + RandomState::new().hash_one(round) % 800;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(id) = line.strip_prefix("ACK ") {
                acked.insert(id.to_owned());
                seen += 1;
                if seen >= kill_after {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
                               // Acknowledgements printed before the kill are still in the pipe.
        for line in lines {
            if let Some(id) = line.unwrap().strip_prefix("ACK ") {
                acked.insert(id.to_owned());
            }
        }
        let status = child.wait().unwrap();
        assert!(!status.success(), "the child was killed");
        assert!(seen >= kill_after, "round {round}: child stopped early");

        let found = read_all(&store, round);
        let missing: Vec<_> = acked.iter().filter(|id| !found.contains(*id)).collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} of {} acknowledged records lost, e.g. {:?}",
            missing.len(),
            acked.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        );
    }
}

/// Reopens the store and reads every record with a fresh group; checks offsets are contiguous.
fn read_all(store: &str, round: usize) -> HashSet<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let q = EmbeddedQueue::open(settings(store)).unwrap();
        let total = q.retained_records();
        let m = q.join(&format!("verify-{round}")).await.unwrap();
        let mut found = HashSet::new();
        let mut offsets: Vec<BTreeSet<i64>> = vec![BTreeSet::new(); PARTITIONS as usize];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while (found.len() as u64) < total {
            assert!(
                tokio::time::Instant::now() < deadline,
                "reading back timed out"
            );
            for ev in m.poll(1000, Duration::from_millis(200)).await.unwrap() {
                if let Event::Record(r) = ev {
                    let s = std::str::from_utf8(&r.payload).unwrap();
                    found.insert(s.split(' ').next().unwrap().to_owned());
                    offsets[r.partition as usize].insert(r.offset);
                }
            }
        }
        for (p, offs) in offsets.iter().enumerate() {
            if let (Some(first), Some(last)) = (offs.first(), offs.last()) {
                assert_eq!(
                    (last - first + 1) as usize,
                    offs.len(),
                    "partition {p}: offsets have holes"
                );
            }
        }
        found
    })
}
