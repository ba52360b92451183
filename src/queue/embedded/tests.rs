use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::super::RecordMeta;
use super::*;

fn open(dir: &tempfile::TempDir, partitions: u32) -> EmbeddedQueue {
    EmbeddedQueue::open(EmbeddedSettings {
        dir: dir.path().join("q"),
        fsync: FsyncPolicy::Always,
        partitions,
        max_record_bytes: 1 << 20,
        retention: RetentionSettings::default(),
    })
    .unwrap()
}

fn rec(partition: u32, body: &str) -> OutgoingRecord {
    OutgoingRecord {
        partition,
        meta: RecordMeta::write("db", "rp"),
        payload: Bytes::from(body.to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_share_syncs_and_get_contiguous_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let q = Arc::new(open(&dir, 1));
    let mut tasks = Vec::new();
    for t in 0..16 {
        let p = q.producer();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                p.enqueue(vec![rec(0, &format!("{t}-{i}"))]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(q.offsets(), [(0, 0, 400)]);
    let m = q.join("g").await.unwrap();
    let mut offsets = Vec::new();
    while offsets.len() < 400 {
        for e in m.poll(1000, Duration::from_secs(5)).await.unwrap() {
            if let Event::Record(r) = e {
                offsets.push(r.offset);
            }
        }
    }
    assert_eq!(offsets, (0..400).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_values_are_events_and_count_as_read() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, 1);
    q.producer().enqueue(vec![rec(0, "a")]).await.unwrap();
    // A value from a future format at offset 1, written behind the writer's back.
    let store = &q.shared.store;
    store
        .records
        .insert(codec::record_key(0, 1, 5, 3), vec![9u8, 0, 0])
        .unwrap();
    let m = q.join("g").await.unwrap();
    // After the join: the writer republishes its own state after every batch.
    {
        let mut st = q.shared.lock_state();
        st.parts[0].next = 2;
    }
    let evs = m.poll(10, Duration::from_secs(5)).await.unwrap();
    assert!(matches!(evs[1], Event::Record(ref r) if r.offset == 0));
    match &evs[2] {
        Event::Undecodable {
            partition,
            offset,
            reason,
            payload,
        } => {
            assert_eq!((*partition, *offset), (0, 1));
            assert!(reason.contains("format"), "{reason}");
            assert_eq!(&payload[..], [9, 0, 0]);
        }
        other => panic!("expected undecodable, got {other:?}"),
    }
    assert!(m
        .poll(10, Duration::from_millis(20))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_is_cancel_safe_and_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, 2);
    let m = q.join("g").await.unwrap();
    assert_eq!(
        m.poll(10, Duration::from_secs(5)).await.unwrap(),
        [Event::Assigned(vec![0, 1])]
    );
    // Cancelled while waiting: nothing is lost.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(20),
        m.poll(10, Duration::from_secs(5)),
    )
    .await;
    assert!(cancelled.is_err());
    let start = std::time::Instant::now();
    let (evs, ()) = tokio::join!(m.poll(10, Duration::from_secs(10)), async {
        q.producer().enqueue(vec![rec(1, "x")]).await.unwrap();
    });
    let evs = evs.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "woken by the append"
    );
    assert!(matches!(&evs[..], [Event::Record(r)] if r.partition == 1 && r.offset == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_stored_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, 1);
    for i in 0..3u16 {
        q.dead_letters()
            .dead_letter(DeadLetter {
                cluster: "eu1".into(),
                db: "db".into(),
                rp: String::new(),
                status: 400 + i,
                reason: "bad".into(),
                reason_class: "parse",
                sources: vec![(0, i64::from(i))],
                lines: Bytes::from_static(b"m v=1 1\n"),
            })
            .await
            .unwrap();
    }
    let stored = q.shared.store.read_dead_letters(1, 10).unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|(seq, h, _)| (*seq, h.status))
            .collect::<Vec<_>>(),
        [(1, 401), (2, 402)]
    );
    assert_eq!(q.dead_letters_total(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_group_starts_at_its_seed_and_holds_retention() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, 2);
    let primary = q.join("primary").await.unwrap();
    let p = q.producer();
    p.enqueue((0..4).map(|i| rec(i % 2, "x")).collect())
        .await
        .unwrap();
    primary.commit(&[(0, 1), (1, 2)]).await.unwrap();
    assert_eq!(
        q.group_positions("reroute").await.unwrap(),
        [(0, None), (1, None)]
    );
    let seed = q.group_positions("primary").await.unwrap();
    assert_eq!(seed, [(0, Some(1)), (1, Some(2))]);
    let err = q.seed_group("primary", &[(0, 0)]).await.unwrap_err();
    assert!(
        matches!(err, Error::Unavailable { .. }),
        "live member: {err}"
    );
    q.seed_group("reroute", &[(0, 1), (1, 2)]).await.unwrap();
    // The primary catches up; the seeded group still holds what it has not read.
    primary.commit(&[(0, 2), (1, 2)]).await.unwrap();
    let reroute = q.join("reroute").await.unwrap();
    let evs = reroute.poll(10, Duration::from_secs(5)).await.unwrap();
    let read: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Record(r) => Some((r.partition, r.offset)),
            _ => None,
        })
        .collect();
    assert_eq!(read, [(0, 1)]);
    drop(reroute);
    q.seed_group("reroute", &[(0, 2)]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_cannot_open_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let _q = open(&dir, 1);
    let err = EmbeddedQueue::open(EmbeddedSettings {
        dir: dir.path().join("q"),
        fsync: FsyncPolicy::Always,
        partitions: 1,
        max_record_bytes: 1 << 20,
        retention: RetentionSettings::default(),
    })
    .unwrap_err();
    assert!(matches!(err, Error::Setup(_)), "{err}");
}
