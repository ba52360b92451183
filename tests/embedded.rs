//! Embedded-only behaviour: reopen, retention, disk budget, member takeover, pause, lag, dead
//! letters.

#![allow(clippy::unwrap_used)] // tests may unwrap (clippy.toml allows it in #[test] fns only)

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fluxroute::queue::embedded::{
    EmbeddedQueue, EmbeddedSettings, FsyncPolicy, RetentionPolicy, RetentionSettings,
};
use fluxroute::queue::{
    ConsumerGroup, DeadLetter, Error, Event, OutgoingRecord, Queue, Record, RecordMeta,
};
use support::wait_until;

const DEADLINE: Duration = Duration::from_secs(10);

fn settings(dir: &tempfile::TempDir) -> EmbeddedSettings {
    EmbeddedSettings {
        dir: dir.path().join("queue"),
        fsync: FsyncPolicy::Always,
        partitions: 2,
        max_record_bytes: 1024 * 1024,
        retention: RetentionSettings::default(),
    }
}

fn record(partition: u32, seq: usize) -> OutgoingRecord {
    OutgoingRecord {
        partition,
        meta: RecordMeta::write("db", ""),
        payload: Bytes::from(format!("m v={seq}i {seq}\n{}", "x".repeat(200))),
    }
}

/// Bytes one [`record`] takes in the budget (24-byte key, 6-byte value header, "db").
fn record_bytes(seq: usize) -> u64 {
    24 + 6 + 2 + record(0, seq).payload.len() as u64
}

async fn enqueue(q: &EmbeddedQueue, records: Vec<OutgoingRecord>) {
    q.producer().enqueue(records).await.expect("enqueue");
}

/// Polls until `want` records arrived (or the deadline passes).
async fn read(member: &dyn ConsumerGroup, want: usize) -> Vec<Record> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut out = Vec::new();
    while out.len() < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "got {} of {want}",
            out.len()
        );
        for ev in member
            .poll(100, Duration::from_millis(200))
            .await
            .expect("poll")
        {
            if let Event::Record(r) = ev {
                out.push(r);
            }
        }
    }
    out
}

fn seq(r: &Record) -> usize {
    let s = std::str::from_utf8(&r.payload).unwrap();
    s[4..s.find('i').unwrap()].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_records_positions_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    {
        let q = EmbeddedQueue::open(settings(&dir)).unwrap();
        enqueue(&q, (0..10).map(|i| record(i as u32 % 2, i)).collect()).await;
        let m = q.join("g").await.unwrap();
        let got = read(m.as_ref(), 10).await;
        assert_eq!(got.iter().filter(|r| r.partition == 0).count(), 5);
        // Partition 0 fully delivered (its records get deleted), partition 1 up to offset 2.
        m.commit(&[(0, 5), (1, 2)]).await.unwrap();
        wait_until("partition 0 emptied", DEADLINE, async || {
            q.offsets()[0].1 == 5
        })
        .await;
        let dead = DeadLetter {
            cluster: "eu1".into(),
            db: "db".into(),
            rp: String::new(),
            status: 400,
            reason: "bad".into(),
            reason_class: "parse",
            sources: vec![(0, 1)],
            lines: Bytes::from_static(b"m v=1 1\n"),
        };
        q.dead_letters().dead_letter(dead).await.unwrap();
        drop(m);
    }
    let q = EmbeddedQueue::open(settings(&dir)).unwrap();
    assert_eq!(q.offsets(), [(0, 5, 5), (1, 2, 5)]);
    assert_eq!(q.dead_letters_total(), 1);
    let m = q.join("g").await.unwrap();
    assert_eq!(
        m.committed(&[0, 1]).await.unwrap(),
        [(0, Some(5)), (1, Some(2))]
    );
    let got = read(m.as_ref(), 3).await;
    assert_eq!(
        got.iter()
            .map(|r| (r.partition, r.offset))
            .collect::<Vec<_>>(),
        [(1, 2), (1, 3), (1, 4)]
    );
    // Offsets continue after the last ever assigned, also on the emptied partition.
    enqueue(&q, vec![record(0, 100), record(1, 101)]).await;
    let got = read(m.as_ref(), 2).await;
    let mut at: Vec<_> = got.iter().map(|r| (r.partition, r.offset)).collect();
    at.sort_unstable();
    assert_eq!(at, [(0, 5), (1, 5)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_with_another_partition_count_keeps_the_stored_one() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedQueue::open(settings(&dir)).unwrap());
    let mut s = settings(&dir);
    s.partitions = 8;
    let q = EmbeddedQueue::open(s).unwrap();
    assert_eq!(q.partitions(), 2);
    assert_eq!(q.producer().partitions(), 2);
    let err = q.producer().enqueue(vec![record(5, 0)]).await.unwrap_err();
    assert!(matches!(err, Error::Setup(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_until_delivered_deletes_only_behind_the_slowest_group() {
    let dir = tempfile::tempdir().unwrap();
    let q = EmbeddedQueue::open(settings(&dir)).unwrap();
    let fast = q.join("fast").await.unwrap();
    let slow = q.join("slow").await.unwrap();
    enqueue(&q, (0..10).map(|i| record(0, i)).collect()).await;
    fast.commit(&[(0, 10)]).await.unwrap();
    slow.commit(&[(0, 3)]).await.unwrap();
    wait_until("deleted behind slow", DEADLINE, async || {
        q.offsets()[0].1 == 3
    })
    .await;
    assert_eq!(q.retained_records(), 7);
    assert_eq!(q.stored_bytes(), (3..10).map(record_bytes).sum::<u64>());
    // Nothing more goes until the slow group moves, however long we look.
    let again = read(slow.as_ref(), 7).await;
    assert_eq!(again.first().map(|r| r.offset), Some(3));
    assert_eq!(q.offsets()[0].1, 3);
    slow.commit(&[(0, 10)]).await.unwrap();
    wait_until("all delivered, all deleted", DEADLINE, async || {
        q.retained_records() == 0
    })
    .await;
    assert_eq!(q.stored_bytes(), 0);
    assert_eq!(q.dropped_records_total(), 0);
    assert!(q.oldest_record_age().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_budget_exhausted_is_full_until_a_commit_frees_space() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&dir);
    s.retention.max_bytes = Some((0..5).map(record_bytes).sum());
    let q = EmbeddedQueue::open(s).unwrap();
    let m = q.join("g").await.unwrap();
    for i in 0..5 {
        enqueue(&q, vec![record(0, i)]).await;
    }
    let err = q.producer().enqueue(vec![record(0, 5)]).await.unwrap_err();
    assert!(matches!(err, Error::Full(_)), "{err}");
    assert!(err.is_retryable());
    // Refused whole: nothing of it was stored.
    assert_eq!(q.offsets()[0], (0, 0, 5));
    let got = read(m.as_ref(), 5).await;
    m.commit(&[(0, got.last().unwrap().offset + 1)])
        .await
        .unwrap();
    wait_until("space freed", DEADLINE, async || q.stored_bytes() == 0).await;
    enqueue(&q, vec![record(0, 5)]).await;
    assert_eq!(q.offsets()[0], (0, 5, 6));
    assert_eq!(q.dropped_records_total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_drops_the_oldest_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&dir);
    s.retention = RetentionSettings {
        policy: RetentionPolicy::Bounded,
        max_bytes: Some((0..5).map(record_bytes).sum()),
        max_age: None,
    };
    let q = EmbeddedQueue::open(s).unwrap();
    let m = q.join("g").await.unwrap();
    for i in 0..10 {
        enqueue(&q, vec![record(i as u32 % 2, i)]).await;
    }
    assert!(q.stored_bytes() <= (0..5).map(record_bytes).sum());
    assert_eq!(q.dropped_records_total(), 5);
    assert_eq!(q.retained_records(), 5);
    let got = read(m.as_ref(), 5).await;
    let mut seqs: Vec<_> = got.iter().map(seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, [5, 6, 7, 8, 9], "the oldest went first");
    // One enqueue larger than the whole budget is refused, not made room for.
    let big: Vec<_> = (0..6).map(|i| record(0, 20 + i)).collect();
    let err = q.producer().enqueue(big).await.unwrap_err();
    assert!(matches!(err, Error::Full(_)), "{err}");
    assert_eq!(q.dropped_records_total(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_drops_records_older_than_max_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&dir);
    s.retention = RetentionSettings {
        policy: RetentionPolicy::Bounded,
        max_bytes: None,
        max_age: Some(Duration::from_millis(300)),
    };
    let q = EmbeddedQueue::open(s).unwrap();
    let _m = q.join("g").await.unwrap();
    enqueue(&q, (0..4).map(|i| record(i as u32 % 2, i)).collect()).await;
    assert_eq!(q.retained_records(), 4);
    wait_until("aged out", DEADLINE, async || q.retained_records() == 0).await;
    assert_eq!(q.dropped_records_total(), 4);
    assert!(q.dropped_bytes_total() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_member_takes_over_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let q = EmbeddedQueue::open(settings(&dir)).unwrap();
    enqueue(&q, vec![record(0, 0), record(1, 1)]).await;
    let old = q.join("g").await.unwrap();
    let evs = old.poll(10, DEADLINE).await.unwrap();
    assert_eq!(evs[0], Event::Assigned(vec![0, 1]));
    let new = q.join("g").await.unwrap();
    assert_eq!(
        old.poll(10, DEADLINE).await.unwrap(),
        [Event::Revoked(vec![0, 1])]
    );
    assert!(old
        .poll(10, Duration::from_millis(50))
        .await
        .unwrap()
        .is_empty());
    let err = old.commit(&[(0, 1)]).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    let evs = new.poll(10, DEADLINE).await.unwrap();
    assert_eq!(evs[0], Event::Assigned(vec![0, 1]));
    assert_eq!(
        evs.len(),
        3,
        "the new member reads the uncommitted records: {evs:?}"
    );
    new.commit(&[(0, 1)]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_member_reads_nothing_then_resumes_and_lag_counts() {
    let dir = tempfile::tempdir().unwrap();
    let q = Arc::new(EmbeddedQueue::open(settings(&dir)).unwrap());
    let m = q.join("g").await.unwrap();
    assert!(
        m.lag().await.unwrap().is_empty(),
        "no assignment before the first poll"
    );
    m.set_paused(true).await.unwrap();
    assert_eq!(
        m.poll(10, DEADLINE).await.unwrap(),
        [Event::Assigned(vec![0, 1])]
    );
    enqueue(&q, vec![record(0, 0), record(0, 1), record(1, 2)]).await;
    assert!(m
        .poll(10, Duration::from_millis(100))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(m.lag().await.unwrap(), [(0, 2), (1, 1)]);
    // A poll waiting while paused wakes when the member is resumed.
    let m: Arc<dyn ConsumerGroup> = Arc::from(m);
    let waiter = {
        let m = Arc::clone(&m);
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            (m.poll(10, DEADLINE).await.unwrap(), start.elapsed())
        })
    };
    m.set_paused(false).await.unwrap();
    let (evs, waited) = waiter.await.unwrap();
    assert_eq!(evs.len(), 3, "{evs:?}");
    assert!(waited < DEADLINE / 2);
    m.commit(&[(0, 2)]).await.unwrap();
    assert_eq!(m.lag().await.unwrap(), [(0, 0), (1, 1)]);
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_policy_acknowledges_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&dir);
    s.fsync = FsyncPolicy::Interval(Duration::from_millis(50));
    {
        let q = EmbeddedQueue::open(s.clone()).unwrap();
        let m = q.join("g").await.unwrap();
        enqueue(&q, (0..20).map(|i| record(i as u32 % 2, i)).collect()).await;
        assert_eq!(read(m.as_ref(), 20).await.len(), 20);
        q.producer().flush(DEADLINE).await.unwrap();
    }
    let q = EmbeddedQueue::open(s).unwrap();
    assert_eq!(q.retained_records(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_records_are_refused_and_closed_queue_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&dir);
    s.max_record_bytes = 100;
    let q = EmbeddedQueue::open(s).unwrap();
    let err = q.producer().enqueue(vec![record(0, 0)]).await.unwrap_err();
    assert!(matches!(err, Error::Setup(_)), "{err}");
    assert!(!err.is_retryable());
    let p = q.producer();
    let m = q.join("g").await.unwrap();
    q.close();
    let err = p.enqueue(vec![]).await;
    assert!(err.is_ok(), "nothing to do");
    let err = p
        .enqueue(vec![OutgoingRecord {
            partition: 0,
            meta: RecordMeta::create_database("db"),
            payload: Bytes::new(),
        }])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(p.check_health(DEADLINE).await.is_err());
    assert!(m.poll(1, DEADLINE).await.is_err());
}
