//! The rest of the queue contract, each case run on both backends: seek to time, pause and
//! resume, lag and committed positions, group positions and seeding, flush and health, dead
//! letters, and the control store.
//!
//! Each runs on a queue of its own (a fresh store or broker per case), and one after another on
//! one shared store in [`super::all`], where a case's records are the last of each partition
//! while it runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fluxroute::control::kafka::KafkaControlStore;
use fluxroute::control::{
    ClusterControl, Control, ControlStore, FileControlStore, ReplayRequest, RerouteMode,
};
use fluxroute::queue::kafka::KafkaSettings;
use fluxroute::queue::{DeadLetter, Event, OutgoingRecord, Queue, Record, RecordMeta};

use super::{next_positions, read, seq_of, Ctx};

/// How a case opens a control store of its backend: each call is a new instance, as each
/// router has its own.
#[derive(Clone, Debug)]
pub(crate) enum ControlBackend {
    /// The embedded backend's file (one instance by design).
    File(std::path::PathBuf),
    /// The Kafka backend's compacted control topic.
    Kafka(KafkaSettings),
}

impl ControlBackend {
    /// A new store instance, as `fluxroute serve` opens one (`app.rs`, `open_control`).
    pub(crate) async fn open(&self) -> Arc<dyn ControlStore> {
        match self {
            ControlBackend::File(path) => Arc::new(FileControlStore::new(path.clone())),
            ControlBackend::Kafka(settings) => Arc::new(
                KafkaControlStore::connect(settings, Duration::from_secs(30))
                    .await
                    .expect("control store on the broker"),
            ),
        }
    }
}

/// `n` records per partition with seqs `base..`, one enqueue call per round.
pub(crate) async fn enqueue_rounds(ctx: &Ctx, base: usize, n: usize) -> Vec<usize> {
    let parts = ctx.partitions();
    let mut seqs = Vec::new();
    for round in 0..n {
        let batch: Vec<OutgoingRecord> = (0..parts)
            .map(|p| {
                let seq = base + round * parts as usize + p as usize;
                seqs.push(seq);
                ctx.write(p, seq)
            })
            .collect();
        ctx.enqueue(batch).await;
    }
    seqs
}

/// The seqs of `records`, sorted.
pub(crate) fn sorted_seqs(records: &[Record]) -> Vec<usize> {
    let mut s: Vec<usize> = records.iter().map(seq_of).collect();
    s.sort_unstable();
    s
}

/// Polls for `window` and returns the records of this namespace that arrived (checking that
/// nothing arrives needs a window: absence has no event to wait for).
async fn records_within(
    ctx: &Ctx,
    member: &dyn fluxroute::queue::ConsumerGroup,
    window: Duration,
) -> Vec<Record> {
    let until = tokio::time::Instant::now() + window;
    let mut got = Vec::new();
    while tokio::time::Instant::now() < until {
        for ev in member
            .poll(64, Duration::from_millis(200))
            .await
            .expect("poll")
        {
            if let Event::Record(r) = ev {
                if r.meta.db == ctx.ns {
                    got.push(r);
                }
            }
        }
    }
    got
}

/// `seek_to_time` moves every assigned partition to its first record appended at or after the
/// time and reading goes on from there; a time after every record moves to the ends.
pub(crate) async fn seek_to_time(ctx: Ctx) {
    let parts = ctx.partitions() as usize;
    let first = enqueue_rounds(&ctx, 0, 2).await;
    let member = ctx.queue.join(&ctx.group("seek")).await.expect("join");
    let (a, _) = read(&ctx, member.as_ref(), first.len()).await;
    let last_a = a.iter().map(|r| r.timestamp_ms).max().expect("records");
    assert!(last_a > 0, "records carry their append time");
    // The second set is appended strictly later than the first (millisecond timestamps).
    let deadline = tokio::time::Instant::now() + ctx.deadline;
    while fluxroute::queue::now_ms() <= last_a {
        assert!(tokio::time::Instant::now() < deadline, "clock stuck");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let second = enqueue_rounds(&ctx, 1000, 2).await;
    let (b, _) = read(&ctx, member.as_ref(), second.len()).await;
    assert_eq!(sorted_seqs(&b), second);
    let since = b.iter().map(|r| r.timestamp_ms).min().expect("records");
    assert!(since > last_a, "second set appended after the first");

    let mut want: BTreeMap<u32, i64> = BTreeMap::new();
    for r in &b {
        let e = want.entry(r.partition).or_insert(r.offset);
        *e = (*e).min(r.offset);
    }
    let mut moved = member.seek_to_time(since).await.expect("seek");
    moved.sort_unstable();
    assert_eq!(
        moved,
        want.into_iter().collect::<Vec<_>>(),
        "first record at or after"
    );
    let (again, _) = read(&ctx, member.as_ref(), second.len()).await;
    assert_eq!(
        sorted_seqs(&again),
        second,
        "reading goes on from the sought positions"
    );

    assert_eq!(moved.len(), parts);
}

/// Seeking to a time after every record moves every assigned partition to its end: a replay
/// from a quiet moment re-reads nothing.
pub(crate) async fn seek_past_the_end(ctx: Ctx) {
    let sent = enqueue_rounds(&ctx, 0, 2).await;
    let member = ctx.queue.join(&ctx.group("seek-end")).await.expect("join");
    let (got, _) = read(&ctx, member.as_ref(), sent.len()).await;
    let last = got.iter().map(|r| r.timestamp_ms).max().expect("records");
    let mut ends = member
        .seek_to_time(last + 60_000)
        .await
        .expect("seek past the end");
    ends.sort_unstable();
    assert_eq!(
        ends,
        next_positions(&got),
        "a time after every record: the ends"
    );
    assert!(
        records_within(&ctx, member.as_ref(), Duration::from_secs(1))
            .await
            .is_empty(),
        "nothing after the end"
    );
    // And back by offset: everything from the second record of each partition again.
    let back: Vec<(u32, i64)> = next_positions(&got)
        .into_iter()
        .map(|(p, _)| (p, 1))
        .collect();
    member.seek(&back).await.expect("seek back by offset");
    let want: Vec<usize> = sorted_seqs(
        &got.iter()
            .filter(|r| r.offset >= 1)
            .cloned()
            .collect::<Vec<_>>(),
    );
    let (again, _) = read(&ctx, member.as_ref(), want.len()).await;
    assert_eq!(
        sorted_seqs(&again),
        want,
        "reading goes on from the offsets"
    );
}

/// While paused a member reads nothing (and stays in its group); after resuming it reads on
/// right after the last record it returned: records prefetched before the pause are neither
/// lost nor read twice.
pub(crate) async fn pause_resume(ctx: Ctx) {
    let sent = enqueue_rounds(&ctx, 0, 20).await;
    let member = ctx.queue.join(&ctx.group("pause")).await.expect("join");
    // Take only part of what is there: the rest may sit prefetched in the consumer.
    let (mut got, _) = read(&ctx, member.as_ref(), 1).await;
    member.set_paused(true).await.expect("pause");
    let more = enqueue_rounds(&ctx, 1000, 2).await;
    let while_paused = records_within(&ctx, member.as_ref(), Duration::from_secs(2)).await;
    assert!(
        while_paused.is_empty(),
        "a paused member returned {} records",
        while_paused.len()
    );
    let paused_count = got.len();
    member.set_paused(false).await.expect("resume");
    let want = sent.len() + more.len();
    let (rest, _) = read(&ctx, member.as_ref(), want - paused_count).await;
    got.extend(rest);
    let mut all: Vec<usize> = sent.iter().chain(&more).copied().collect();
    all.sort_unstable();
    assert_eq!(
        sorted_seqs(&got),
        all,
        "every record exactly once across the pause"
    );
    let mut by_partition: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for r in &got {
        by_partition.entry(r.partition).or_default().push(r.offset);
    }
    for (p, offsets) in by_partition {
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "partition {p} in order: {offsets:?}"
        );
    }
}

/// Lag is end − committed per assigned partition; `committed` and `group_positions` (read
/// without joining) report what was committed, `None` where nothing was.
pub(crate) async fn lag_and_positions(ctx: Ctx) {
    let parts = ctx.partitions();
    let all_parts: Vec<u32> = (0..parts).collect();
    let mut sent = enqueue_rounds(&ctx, 0, 4).await;
    // Then three records per partition in one call (one batch each): ends count every record.
    let base = sent.len();
    let several: Vec<OutgoingRecord> = (0..3 * parts as usize)
        .map(|k| {
            sent.push(base + k);
            ctx.write(k as u32 % parts, base + k)
        })
        .collect();
    ctx.enqueue(several).await;
    let group = ctx.group("lag");
    let never = ctx
        .queue
        .group_positions(&group)
        .await
        .expect("positions of a new group");
    assert_eq!(never.len(), parts as usize);
    assert!(never.iter().all(|(_, p)| p.is_none()), "{never:?}");

    let member = ctx.queue.join(&group).await.expect("join");
    let (got, _) = read(&ctx, member.as_ref(), sent.len()).await;
    let committed = member.committed(&all_parts).await.expect("committed");
    assert!(committed.iter().all(|(_, p)| p.is_none()), "{committed:?}");

    // Commit half of each partition.
    let mut half: BTreeMap<u32, i64> = BTreeMap::new();
    for r in &got {
        if seq_of(r) < sent.len() / 2 {
            let e = half.entry(r.partition).or_insert(0);
            *e = (*e).max(r.offset + 1);
        }
    }
    let half: Vec<(u32, i64)> = half.into_iter().collect();
    member.commit(&half).await.expect("commit");
    let ends = next_positions(&got);
    let mut lag = member.lag().await.expect("lag");
    lag.sort_unstable();
    let want_lag: Vec<(u32, i64)> = ends
        .iter()
        .map(|&(p, end)| {
            let c = half.iter().find(|(q, _)| *q == p).map_or(0, |x| x.1);
            (p, end - c)
        })
        .collect();
    assert_eq!(lag, want_lag, "lag after committing half");
    let mut committed = member.committed(&all_parts).await.expect("committed");
    committed.sort_unstable();
    let mut seen = ctx
        .queue
        .group_positions(&group)
        .await
        .expect("group positions");
    seen.sort_unstable();
    let want: Vec<(u32, Option<i64>)> = all_parts
        .iter()
        .map(|&p| (p, half.iter().find(|(q, _)| *q == p).map(|x| x.1)))
        .collect();
    assert_eq!(committed, want, "committed");
    assert_eq!(seen, want, "group positions agree, read without joining");

    member.commit(&ends).await.expect("commit all");
    let lag = member.lag().await.expect("lag");
    assert!(
        lag.iter().all(|(_, l)| *l == 0),
        "lag after committing all: {lag:?}"
    );
}

/// A group seeded at positions while it has no member starts there when a member joins (the
/// reroute group is seeded at a down cluster's positions).
pub(crate) async fn seeding(ctx: Ctx) {
    let sent = enqueue_rounds(&ctx, 0, 5).await;
    let reader = ctx.queue.join(&ctx.group("reader")).await.expect("join");
    let (got, _) = read(&ctx, reader.as_ref(), sent.len()).await;
    drop(reader);
    // Seed every partition at its third record.
    let mut by_partition: BTreeMap<u32, Vec<&Record>> = BTreeMap::new();
    for r in &got {
        by_partition.entry(r.partition).or_default().push(r);
    }
    let seed: Vec<(u32, i64)> = by_partition
        .iter()
        .map(|(&p, rs)| (p, rs[2].offset))
        .collect();
    let expect: Vec<usize> = {
        let mut v: Vec<usize> = by_partition
            .values()
            .flat_map(|rs| rs[2..].iter().map(|r| seq_of(r)))
            .collect();
        v.sort_unstable();
        v
    };
    let group = ctx.group("seeded");
    ctx.queue.seed_group(&group, &seed).await.expect("seed");
    let mut seen = ctx.queue.group_positions(&group).await.expect("positions");
    seen.sort_unstable();
    assert_eq!(
        seen,
        seed.iter().map(|&(p, o)| (p, Some(o))).collect::<Vec<_>>(),
        "the seeded positions are the group's"
    );
    let member = ctx.queue.join(&group).await.expect("join the seeded group");
    let (from_seed, _) = read(&ctx, member.as_ref(), expect.len()).await;
    assert_eq!(
        sorted_seqs(&from_seed),
        expect,
        "reading starts at the seeded positions"
    );
}

/// `flush` and `check_health` answer Ok on a live queue, before and after records.
pub(crate) async fn flush_and_health(ctx: Ctx) {
    let producer = ctx.queue.producer();
    producer
        .check_health(Duration::from_secs(10))
        .await
        .expect("healthy");
    producer
        .flush(Duration::from_secs(10))
        .await
        .expect("flush, nothing pending");
    enqueue_rounds(&ctx, 0, 2).await;
    producer
        .flush(Duration::from_secs(10))
        .await
        .expect("flush after records");
    producer
        .check_health(Duration::from_secs(10))
        .await
        .expect("still healthy");
}

/// Dead letters are stored, listed oldest first with increasing ids and every field kept,
/// purged below an id, and replayed by writing their lines again.
pub(crate) async fn dead_letters(ctx: Ctx) {
    let sink = ctx.queue.dead_letters();
    let letter = |i: u16| DeadLetter {
        cluster: ctx.ns.clone(),
        db: format!("db{i}"),
        rp: "autogen".into(),
        status: 400 + i,
        reason: format!("partial write: field type conflict {i}"),
        reason_class: "field_type_conflict",
        sources: vec![(u32::from(i) % ctx.partitions(), i64::from(i) * 10)],
        lines: Bytes::from(format!(
            "conformance,ns={} seq={}i 1700000000000000000\n",
            ctx.ns,
            500 + i
        )),
    };
    for i in 0..3 {
        sink.dead_letter(letter(i)).await.expect("dead-letter");
    }
    let mine = |all: Vec<fluxroute::queue::StoredDeadLetter>| -> Vec<_> {
        all.into_iter().filter(|l| l.cluster == ctx.ns).collect()
    };
    let listed = mine(sink.list(0, 1000).await.expect("list"));
    assert_eq!(listed.len(), 3, "{listed:?}");
    for (i, l) in listed.iter().enumerate() {
        let want = letter(i as u16);
        assert_eq!(
            (
                &l.db,
                &l.rp,
                l.status,
                &l.reason,
                l.reason_class.as_str(),
                &l.sources,
                &l.lines
            ),
            (
                &want.db,
                &want.rp,
                want.status,
                &want.reason,
                want.reason_class,
                &want.sources,
                &want.lines
            )
        );
    }
    assert!(listed.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    let from_second = mine(
        sink.list(listed[1].id, 1000)
            .await
            .expect("list from an id"),
    );
    assert_eq!(from_second.len(), 2);
    assert_eq!(from_second[0].id, listed[1].id);

    sink.purge(listed[1].id).await.expect("purge");
    let left = mine(sink.list(0, 1000).await.expect("list after purge"));
    assert_eq!(
        left.iter().map(|l| l.id).collect::<Vec<_>>(),
        [listed[1].id, listed[2].id],
        "purge removes every id below the bound"
    );

    // Replay: the stored lines written again reach a reader unchanged.
    let replayed: Vec<OutgoingRecord> = left
        .iter()
        .map(|l| OutgoingRecord {
            partition: 0,
            meta: RecordMeta::write(ctx.ns.clone(), l.rp.clone()),
            payload: l.lines.clone(),
        })
        .collect();
    ctx.enqueue(replayed).await;
    let member = ctx.queue.join(&ctx.group("replay")).await.expect("join");
    let (got, _) = read(&ctx, member.as_ref(), 2).await;
    assert_eq!(sorted_seqs(&got), [501, 502]);
}

/// A published state is loaded back by another store instance (a restarted router); a follower
/// applies what another instance publishes (Kafka; the file store serves one instance, whose
/// own changes are applied as they are made, so its `follow` only waits for cancellation).
pub(crate) async fn control_store(ctx: Ctx, backend: ControlBackend) {
    let cluster = ctx.ns.clone();
    let one = backend.open().await;
    let state = ClusterControl {
        paused: true,
        reroute: RerouteMode::On,
        replay: Some(ReplayRequest {
            id: 7,
            since_ms: 1_700_000_000_000,
        }),
    };
    one.publish(&cluster, &state).await.expect("publish");
    let two = backend.open().await;
    let deadline = tokio::time::Instant::now() + ctx.deadline;
    loop {
        let loaded = two.load().await.expect("load");
        if loaded.get(&cluster) == Some(&state) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "another instance never loaded the published state: {loaded:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let control = Arc::new(Control::new(
        [cluster.clone()],
        &two.load().await.expect("load"),
        Arc::clone(&two),
    ));
    assert_eq!(control.get(&cluster), Some(state.clone()));
    let cancel = tokio_util::sync::CancellationToken::new();
    let follower = tokio::spawn({
        let (two, control, cancel) = (Arc::clone(&two), Arc::clone(&control), cancel.clone());
        async move { two.follow(control, cancel).await }
    });
    let next = ClusterControl {
        paused: false,
        reroute: RerouteMode::Off,
        replay: None,
    };
    one.publish(&cluster, &next).await.expect("publish again");
    match backend {
        ControlBackend::Kafka(_) => {
            let mut rx = control.subscribe(&cluster).expect("known cluster");
            tokio::time::timeout(ctx.deadline, rx.wait_for(|s| *s == next))
                .await
                .expect("the follower applied the other instance's state in time")
                .expect("control alive");
        }
        ControlBackend::File(_) => {
            assert_eq!(two.load().await.expect("load").get(&cluster), Some(&next));
        }
    }
    cancel.cancel();
    tokio::time::timeout(ctx.deadline, follower)
        .await
        .expect("follow returns once cancelled")
        .expect("follower task");
}

/// A group that committed a position in the middle of what the producer sent in one call (one
/// batch on Kafka) resumes exactly there: the records after the position in that batch are not
/// skipped.
pub(crate) async fn resume_mid_batch(ctx: Ctx) {
    let records: Vec<OutgoingRecord> = (0..10).map(|seq| ctx.write(0, seq)).collect();
    ctx.enqueue(records).await;
    let group = ctx.group("mid");
    let first = ctx.queue.join(&group).await.expect("join");
    let (got, _) = read(&ctx, first.as_ref(), 10).await;
    let fifth = got.iter().find(|r| seq_of(r) == 5).expect("record 5");
    first
        .commit(&[(0, fifth.offset)])
        .await
        .expect("commit mid-batch");
    drop(first);
    let second = ctx.queue.join(&group).await.expect("rejoin");
    let (again, _) = read(&ctx, second.as_ref(), 5).await;
    assert_eq!(
        again.iter().map(seq_of).collect::<Vec<_>>(),
        [5, 6, 7, 8, 9],
        "resumed at the committed position inside the batch"
    );
}

/// Several producers (routers) write into the same partitions at once while one member reads at
/// the tail: the member reads every record, once, each partition in increasing offsets. A broker
/// that shows a later batch while an earlier one is still being stored would skip one here.
pub(crate) async fn concurrent_producers(ctx: Ctx, producers: Vec<Arc<dyn Queue>>) {
    const ROUNDS: usize = 150;
    let parts = ctx.partitions() as usize;
    let member = ctx.queue.join(&ctx.group("tail")).await.expect("join");
    let mut got: Vec<Record> = super::events_once_assigned(&ctx, member.as_ref(), Duration::ZERO)
        .await
        .into_iter()
        .filter_map(|ev| match ev {
            Event::Record(r) if r.meta.db == ctx.ns => Some(r),
            _ => None,
        })
        .collect();
    // Producer i writes seqs i*ROUNDS*parts.., one record per partition per call.
    let writers: Vec<_> = producers
        .iter()
        .enumerate()
        .map(|(i, queue)| {
            let rounds: Vec<Vec<OutgoingRecord>> = (0..ROUNDS)
                .map(|round| {
                    (0..parts)
                        .map(|p| ctx.write(p as u32, (i * ROUNDS + round) * parts + p))
                        .collect()
                })
                .collect();
            let queue = Arc::clone(queue);
            tokio::spawn(async move {
                for records in rounds {
                    queue.producer().enqueue(records).await.expect("enqueue");
                }
            })
        })
        .collect();
    let want = producers.len() * ROUNDS * parts;
    let deadline = tokio::time::Instant::now() + ctx.deadline;
    while got.len() < want && tokio::time::Instant::now() < deadline {
        for ev in member
            .poll(256, Duration::from_millis(200))
            .await
            .expect("poll")
        {
            if let Event::Record(r) = ev {
                if r.meta.db == ctx.ns {
                    got.push(r);
                }
            }
        }
    }
    for w in writers {
        w.await.expect("producer task");
    }
    let seqs = sorted_seqs(&got);
    let missing: Vec<usize> = (0..want)
        .filter(|s| seqs.binary_search(s).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {want} records never read within {:?} (read {}), e.g. seqs {:?}",
        missing.len(),
        ctx.deadline,
        got.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(
        seqs,
        (0..want).collect::<Vec<_>>(),
        "every record read once"
    );
    let mut last: BTreeMap<u32, i64> = BTreeMap::new();
    for r in &got {
        let prev = last.insert(r.partition, r.offset);
        assert!(
            prev.is_none_or(|o| o < r.offset),
            "partition {} read offset {} after {prev:?}",
            r.partition,
            r.offset
        );
    }
}
