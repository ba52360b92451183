//! Backend-generic queue conformance cases: each takes a [`Ctx`] (an `Arc<dyn Queue>` and a
//! namespace) and checks one promise of the `queue` module against any backend.
//!
//! Cases tolerate a shared topic: every record a case writes carries the case's namespace as its
//! `db`, groups are named after it, and records of other namespaces are read past and ignored.
//! Waiting is always bounded by [`Ctx::deadline`], never a fixed sleep.

#![allow(dead_code)] // each runner uses the cases it needs

pub(crate) mod contract;

pub(crate) use contract::{
    dead_letters, flush_and_health, lag_and_positions, pause_resume, resume_mid_batch, seeding,
    seek_past_the_end, seek_to_time,
};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fluxroute::queue::{
    ConsumerGroup, Event, OutgoingRecord, Queue, Record, RecordKind, RecordMeta,
};

/// What a case runs against.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    /// The queue under test.
    pub(crate) queue: Arc<dyn Queue>,
    /// Unique per case run: the `db` of every record written and the prefix of group names.
    pub(crate) ns: String,
    /// How long any wait may take (Kafka rebalances need seconds).
    pub(crate) deadline: Duration,
}

impl Ctx {
    /// A context with a namespace made of `case` and a per-process suffix.
    pub(crate) fn new(queue: Arc<dyn Queue>, case: &str) -> Ctx {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ctx {
            queue,
            ns: format!("{case}_{}_{}", std::process::id(), nanos % 1_000_000_000),
            deadline: Duration::from_secs(30),
        }
    }

    fn group(&self, name: &str) -> String {
        format!("{}-{name}", self.ns)
    }

    fn partitions(&self) -> u32 {
        self.queue.producer().partitions()
    }

    fn write(&self, partition: u32, seq: usize) -> OutgoingRecord {
        OutgoingRecord {
            partition,
            meta: RecordMeta::write(self.ns.clone(), "autogen"),
            payload: Bytes::from(format!(
                "conformance,ns={} seq={seq}i {}\n",
                self.ns,
                1_700_000_000_000_000_000u64 + seq as u64
            )),
        }
    }

    /// Enqueues `records`; returns where each went (partition, offset).
    async fn enqueue(&self, records: Vec<OutgoingRecord>) -> Vec<(u32, i64)> {
        let n = records.len();
        let appended = self
            .queue
            .producer()
            .enqueue(records)
            .await
            .expect("enqueue");
        assert_eq!(appended.len(), n, "one place per record");
        appended
    }
}

/// Reads until `want` records of this namespace arrived; returns them and every event seen.
async fn read(ctx: &Ctx, member: &dyn ConsumerGroup, want: usize) -> (Vec<Record>, Vec<Event>) {
    let deadline = tokio::time::Instant::now() + ctx.deadline;
    let mut mine = Vec::new();
    let mut events = Vec::new();
    while mine.len() < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: got {} of {want} records within {:?}",
            ctx.ns,
            mine.len(),
            ctx.deadline
        );
        for ev in member
            .poll(64, Duration::from_millis(500))
            .await
            .expect("poll")
        {
            if let Event::Record(r) = &ev {
                if r.meta.db == ctx.ns {
                    mine.push(r.clone());
                }
            }
            if !matches!(ev, Event::Record(_)) {
                events.push(ev);
            }
        }
    }
    (mine, events)
}

fn seq_of(r: &Record) -> usize {
    let s = std::str::from_utf8(&r.payload).expect("utf-8 payload");
    let start = s.find(" seq=").expect("seq field") + 5;
    let end = start + s[start..].find('i').expect("seq end");
    s[start..end].parse().expect("seq number")
}

/// Positions `(partition, next offset)` after `records`.
fn next_positions(records: &[Record]) -> Vec<(u32, i64)> {
    let mut m = BTreeMap::new();
    for r in records {
        m.insert(r.partition, r.offset + 1);
    }
    m.into_iter().collect()
}

/// Records of one partition come back in enqueue order with increasing offsets; the member
/// first gets `Assigned` with every partition.
pub(crate) async fn per_partition_order(ctx: Ctx) {
    let parts = ctx.partitions();
    let per_partition = 15;
    let mut seq = 0;
    // Where the producer said each seq went.
    let mut placed: BTreeMap<usize, (u32, i64)> = BTreeMap::new();
    for _call in 0..per_partition {
        // Each call carries one record for every partition, interleaved.
        let first = seq + 1;
        let batch = (0..parts)
            .map(|p| {
                seq += 1;
                ctx.write(p, seq)
            })
            .collect();
        for (i, at) in ctx.enqueue(batch).await.into_iter().enumerate() {
            placed.insert(first + i, at);
        }
    }
    let member = ctx.queue.join(&ctx.group("order")).await.expect("join");
    let (records, events) = read(&ctx, member.as_ref(), per_partition * parts as usize).await;
    let mut assigned: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::Assigned(p) => Some(p.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assigned.sort_unstable();
    assigned.dedup();
    assert_eq!(
        assigned,
        (0..parts).collect::<Vec<_>>(),
        "one member owns all partitions"
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let mut last: BTreeMap<u32, (i64, usize)> = BTreeMap::new();
    for r in &records {
        assert!(r.partition < parts);
        assert_eq!(r.meta.kind, RecordKind::Write);
        assert_eq!(r.meta.rp, "autogen");
        assert!(
            (now_ms - 600_000..=now_ms + 60_000).contains(&r.timestamp_ms),
            "append time {} is not recent",
            r.timestamp_ms
        );
        let s = seq_of(r);
        assert_eq!(
            placed.get(&s),
            Some(&(r.partition, r.offset)),
            "read where the producer said it was appended"
        );
        assert_eq!(
            (s - 1) % parts as usize,
            r.partition as usize,
            "partition kept"
        );
        if let Some(&(off, prev)) = last.get(&r.partition) {
            assert!(r.offset > off, "offsets increase within a partition");
            assert!(s > prev, "enqueue order kept within a partition");
        }
        last.insert(r.partition, (r.offset, s));
    }
}

/// After a member commits in the middle and is dropped, a new member resumes exactly at the
/// committed positions, and `committed` reports them.
pub(crate) async fn resume_from_committed(ctx: Ctx) {
    let parts = ctx.partitions().min(2);
    let records: Vec<_> = (0..10).map(|i| ctx.write(i % parts, i as usize)).collect();
    ctx.enqueue(records).await;
    let group = ctx.group("resume");
    let first = ctx.queue.join(&group).await.expect("join");
    let (got, _) = read(&ctx, first.as_ref(), 10).await;
    let (done, rest) = got.split_at(4);
    let positions = next_positions(done);
    first.commit(&positions).await.expect("commit");
    let committed = first
        .committed(&positions.iter().map(|p| p.0).collect::<Vec<_>>())
        .await
        .expect("committed");
    assert_eq!(
        committed,
        positions
            .iter()
            .map(|&(p, o)| (p, Some(o)))
            .collect::<Vec<_>>()
    );
    drop(first);

    let second = ctx.queue.join(&group).await.expect("rejoin");
    let (again, _) = read(&ctx, second.as_ref(), rest.len()).await;
    let key = |r: &Record| (r.partition, r.offset);
    let mut want: Vec<_> = rest.iter().map(key).collect();
    let mut have: Vec<_> = again.iter().map(key).collect();
    want.sort_unstable();
    have.sort_unstable();
    assert_eq!(have, want, "resumes at the committed positions");
}

/// Records read but never committed are delivered again, identical, to the next member.
pub(crate) async fn redelivery_of_uncommitted(ctx: Ctx) {
    let parts = ctx.partitions();
    let records: Vec<_> = (0..6).map(|i| ctx.write(i % parts, i as usize)).collect();
    ctx.enqueue(records).await;
    let group = ctx.group("redeliver");
    let first = ctx.queue.join(&group).await.expect("join");
    let (got, _) = read(&ctx, first.as_ref(), 6).await;
    drop(first);
    let second = ctx.queue.join(&group).await.expect("rejoin");
    let (again, _) = read(&ctx, second.as_ref(), 6).await;
    let mut a = got.clone();
    let mut b = again.clone();
    a.sort_by_key(|r| (r.partition, r.offset));
    b.sort_by_key(|r| (r.partition, r.offset));
    assert_eq!(a, b, "same records, same offsets, same payloads");
    let committed = second
        .committed(&(0..parts).collect::<Vec<_>>())
        .await
        .expect("committed");
    assert!(committed.iter().all(|(_, c)| c.is_none()), "{committed:?}");
}

/// Two groups keep their own positions.
pub(crate) async fn independent_groups(ctx: Ctx) {
    let records: Vec<_> = (0..5).map(|i| ctx.write(0, i)).collect();
    ctx.enqueue(records).await;
    let (g1, g2) = (ctx.group("one"), ctx.group("two"));

    // Both groups join before either commits: the embedded backend deletes what every known
    // group has committed past, so a group joining later starts at the earliest retained record.
    let m1 = ctx.queue.join(&g1).await.expect("join g1");
    let m2 = ctx.queue.join(&g2).await.expect("join g2");
    let (got1, _) = read(&ctx, m1.as_ref(), 5).await;
    m1.commit(&next_positions(&got1)).await.expect("commit g1");
    let (got2, _) = read(&ctx, m2.as_ref(), 5).await;
    assert_eq!(
        got1, got2,
        "a new group reads from the start, whatever g1 committed"
    );
    m2.commit(&next_positions(&got2[..2]))
        .await
        .expect("commit g2");
    drop((m1, m2));

    // A sentinel after the five: g1 must see it first, g2 must see records 2..5 first.
    ctx.enqueue(vec![ctx.write(0, 99)]).await;
    let m1 = ctx.queue.join(&g1).await.expect("rejoin g1");
    let (after1, _) = read(&ctx, m1.as_ref(), 1).await;
    assert_eq!(
        seq_of(&after1[0]),
        99,
        "g1 resumes after everything it committed"
    );
    let m2 = ctx.queue.join(&g2).await.expect("rejoin g2");
    let (after2, _) = read(&ctx, m2.as_ref(), 4).await;
    assert_eq!(
        after2.iter().map(seq_of).collect::<Vec<_>>(),
        [2, 3, 4, 99],
        "g2 resumes at its own position; read {:?}",
        after2
            .iter()
            .map(|r| (r.partition, r.offset))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        after2.iter().map(seq_of).collect::<Vec<_>>(),
        [2, 3, 4, 99],
        "g2 resumes at its own position"
    );
}

/// `CREATE DATABASE` records (empty payload) travel on every partition, in order with writes.
pub(crate) async fn ddl_records(ctx: Ctx) {
    let parts = ctx.partitions();
    let ddl = (0..parts)
        .map(|p| OutgoingRecord {
            partition: p,
            meta: RecordMeta::create_database(ctx.ns.clone()),
            payload: Bytes::new(),
        })
        .collect();
    ctx.enqueue(ddl).await;
    ctx.enqueue((0..parts).map(|p| ctx.write(p, p as usize)).collect())
        .await;
    let member = ctx.queue.join(&ctx.group("ddl")).await.expect("join");
    let (got, _) = read(&ctx, member.as_ref(), 2 * parts as usize).await;
    for p in 0..parts {
        let mine: Vec<_> = got.iter().filter(|r| r.partition == p).collect();
        assert_eq!(mine.len(), 2, "partition {p}");
        assert_eq!(mine[0].meta, RecordMeta::create_database(ctx.ns.clone()));
        assert!(mine[0].payload.is_empty());
        assert_eq!(mine[1].meta.kind, RecordKind::Write);
    }
}

/// Records close to `max_record_bytes` come back byte for byte.
pub(crate) async fn large_records(ctx: Ctx) {
    let parts = ctx.partitions();
    let size = (900 * 1024).min(ctx.queue.producer().max_record_bytes());
    let payload = |i: usize| {
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ i as u64;
        let mut v = Vec::with_capacity(size);
        while v.len() < size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.truncate(size);
        Bytes::from(v)
    };
    let sent: Vec<OutgoingRecord> = (0..3)
        .map(|i| OutgoingRecord {
            partition: i as u32 % parts,
            meta: RecordMeta::write(ctx.ns.clone(), ""),
            payload: payload(i),
        })
        .collect();
    ctx.enqueue(sent[..2].to_vec()).await;
    ctx.enqueue(sent[2..].to_vec()).await;
    let member = ctx.queue.join(&ctx.group("large")).await.expect("join");
    let (got, _) = read(&ctx, member.as_ref(), 3).await;
    for s in &sent {
        assert!(
            got.iter()
                .any(|r| r.partition == s.partition && r.payload == s.payload),
            "a {size}-byte record came back intact"
        );
    }
}

/// Polls for `window` (absence has no event to wait for, so it takes a window) and returns
/// every event, records of every namespace included.
async fn events_within(member: &dyn ConsumerGroup, window: Duration) -> Vec<Event> {
    let until = tokio::time::Instant::now() + window;
    let mut events = Vec::new();
    while tokio::time::Instant::now() < until {
        events.extend(
            member
                .poll(64, Duration::from_millis(200))
                .await
                .expect("poll"),
        );
    }
    events
}

/// Polls until the member owns every partition (bounded by the deadline), then for `window`
/// more; returns every event.
pub(crate) async fn events_once_assigned(
    ctx: &Ctx,
    member: &dyn ConsumerGroup,
    window: Duration,
) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + ctx.deadline;
    let mut events = Vec::new();
    let mut owned = std::collections::BTreeSet::new();
    while owned.len() < ctx.partitions() as usize {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: not assigned every partition within {:?}; events: {events:?}",
            ctx.ns,
            ctx.deadline
        );
        for ev in member
            .poll(64, Duration::from_millis(200))
            .await
            .expect("poll")
        {
            match &ev {
                Event::Assigned(p) => owned.extend(p.iter().copied()),
                Event::Revoked(p) => p.iter().for_each(|p| {
                    owned.remove(p);
                }),
                _ => {}
            }
            events.push(ev);
        }
    }
    events.extend(events_within(member, window).await);
    events
}

/// A short description of the non-rebalance events in `events` (empty when there are none).
fn reads_among(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Assigned(_) | Event::Revoked(_) => None,
            Event::Record(r) => Some(format!(
                "record {}/{} of {}",
                r.partition, r.offset, r.meta.db
            )),
            Event::Undecodable {
                partition, offset, ..
            } => Some(format!("undecodable {partition}/{offset}")),
        })
        .collect()
}

/// `seek_to_time` before the member owns anything: the positions it returns are where reading
/// goes on (the drain commits them and treats the replay as done), so a backend either
/// refuses (the drain retries), returns nothing (nothing assigned yet), or honours what it
/// returned once assigned. Both backends refuse: librdkafka's offsets-for-times rejects the
/// empty assignment ("Invalid argument"), and the embedded log refuses before its first poll
/// (whose assignment would set the positions to the committed ones again).
pub(crate) async fn seek_before_assignment(ctx: Ctx) {
    let first = contract::enqueue_rounds(&ctx, 0, 2).await;
    let probe = ctx.queue.join(&ctx.group("probe")).await.expect("join");
    let (a, _) = read(&ctx, probe.as_ref(), first.len()).await;
    drop(probe);
    let last_a = a.iter().map(|r| r.timestamp_ms).max().expect("records");
    let deadline = tokio::time::Instant::now() + ctx.deadline;
    while fluxroute::queue::now_ms() <= last_a + 1 {
        assert!(tokio::time::Instant::now() < deadline, "clock stuck");
        tokio::task::yield_now().await;
    }
    let second = contract::enqueue_rounds(&ctx, 1000, 1).await;
    let member = ctx
        .queue
        .join(&ctx.group("early-seek"))
        .await
        .expect("join");
    // A time between the two sets: the first record of the second set on every partition.
    let everything: Vec<usize> = first.iter().chain(&second).copied().collect();
    let (moved, want) = match member.seek_to_time(last_a + 1).await {
        // Refused (nothing to look up yet): the caller retries once assigned; reading starts
        // at the committed positions (none: the earliest record).
        Err(e) => (format!("Err({e})"), everything),
        // Nothing was assigned, so nothing moved.
        Ok(moved) if moved.is_empty() => ("Ok([])".to_owned(), everything),
        Ok(mut moved) => {
            moved.sort_unstable();
            (format!("Ok({moved:?})"), second.clone())
        }
    };
    let (got, _) = read(&ctx, member.as_ref(), want.len()).await;
    let mut want_sorted = want.clone();
    want_sorted.sort_unstable();
    assert_eq!(
        contract::sorted_seqs(&got),
        want_sorted,
        "seek_to_time before the first poll answered {moved}; reading must go on from what \
         it answered"
    );
}

/// A member paused before its first poll gets its partitions paused as they are assigned:
/// its polls return the assignment and no record; once resumed it reads every record once.
pub(crate) async fn paused_from_the_start(ctx: Ctx) {
    let sent = contract::enqueue_rounds(&ctx, 0, 3).await;
    let member = ctx
        .queue
        .join(&ctx.group("paused-early"))
        .await
        .expect("join");
    member
        .set_paused(true)
        .await
        .expect("pause before the first poll");
    let events = events_once_assigned(&ctx, member.as_ref(), Duration::from_secs(2)).await;
    let reads = reads_among(&events);
    assert!(
        reads.is_empty(),
        "a member paused before its assignment returned {} records: {reads:?}",
        reads.len()
    );
    member.set_paused(false).await.expect("resume");
    let (got, _) = read(&ctx, member.as_ref(), sent.len()).await;
    assert_eq!(
        contract::sorted_seqs(&got),
        sent,
        "every record once after the resume"
    );
    let extra = events_within(member.as_ref(), Duration::from_millis(500)).await;
    let extra: Vec<_> = extra
        .iter()
        .filter(|e| matches!(e, Event::Record(r) if r.meta.db == ctx.ns))
        .collect();
    assert!(extra.is_empty(), "read twice: {extra:?}");
}

/// While paused mid-stream only rebalance events come back (no record of any namespace, no
/// undecodable record); after resuming, reading goes on right after the last record returned,
/// records prefetched before the pause included, each once, in partition order.
pub(crate) async fn pause_only_rebalance_events(ctx: Ctx) {
    // More records than one poll returns (64).
    let sent = contract::enqueue_rounds(&ctx, 0, 20).await;
    let member = ctx.queue.join(&ctx.group("pause-ev")).await.expect("join");
    // One poll's worth, fewer than were sent: the rest may be prefetched in the consumer.
    let (mut got, _) = read(&ctx, member.as_ref(), 1).await;
    assert!(got.len() < sent.len(), "read only part before the pause");
    member.set_paused(true).await.expect("pause");
    let more = contract::enqueue_rounds(&ctx, 1000, 1).await;
    let while_paused = events_within(member.as_ref(), Duration::from_secs(2)).await;
    let reads = reads_among(&while_paused);
    assert!(reads.is_empty(), "while paused: {reads:?}");
    // Pausing twice is harmless; so is resuming twice.
    member.set_paused(true).await.expect("pause again");
    member.set_paused(false).await.expect("resume");
    member.set_paused(false).await.expect("resume again");
    let want: Vec<usize> = {
        let mut v: Vec<usize> = sent.iter().chain(&more).copied().collect();
        v.sort_unstable();
        v
    };
    let (rest, _) = read(&ctx, member.as_ref(), want.len() - got.len()).await;
    got.extend(rest);
    assert_eq!(
        contract::sorted_seqs(&got),
        want,
        "every record exactly once across the pause"
    );
    let mut last: BTreeMap<u32, i64> = BTreeMap::new();
    for r in &got {
        if let Some(prev) = last.insert(r.partition, r.offset) {
            assert!(r.offset > prev, "partition {} in order", r.partition);
        }
    }
}

/// `list(from, max)` pages: at most `max` letters, the lowest ids at or above `from`, oldest
/// first; nothing from past the last id or with `max` 0; `appended_ms` is the store time;
/// `purge` of an id not above anything stored removes nothing.
pub(crate) async fn dead_letter_paging(ctx: Ctx) {
    let sink = ctx.queue.dead_letters();
    let before = fluxroute::queue::now_ms();
    for i in 0..5u16 {
        sink.dead_letter(fluxroute::queue::DeadLetter {
            cluster: ctx.ns.clone(),
            db: ctx.ns.clone(),
            rp: String::new(),
            status: 0,
            reason: format!("undecodable record {i}"),
            reason_class: "undecodable",
            sources: Vec::new(),
            lines: Bytes::from(format!("line {i}\n")),
        })
        .await
        .expect("dead-letter");
    }
    let after = fluxroute::queue::now_ms();
    let everything = sink.list(0, 10_000).await.expect("list");
    let mine: Vec<_> = everything.iter().filter(|l| l.cluster == ctx.ns).collect();
    assert_eq!(mine.len(), 5, "{mine:?}");
    assert!(
        everything.windows(2).all(|w| w[0].id < w[1].id),
        "ids increase"
    );
    for (i, l) in mine.iter().enumerate() {
        assert_eq!(l.lines, Bytes::from(format!("line {i}\n")), "oldest first");
        assert!(l.sources.is_empty() && l.rp.is_empty() && l.status == 0);
        assert!(
            (before - 1000..=after + 1000).contains(&l.appended_ms),
            "appended_ms {} is the store time ({before}..{after})",
            l.appended_ms
        );
    }
    let first = mine[0].id;
    let page = sink.list(first, 2).await.expect("list a page");
    let want: Vec<u64> = everything
        .iter()
        .map(|l| l.id)
        .filter(|&id| id >= first)
        .take(2)
        .collect();
    assert_eq!(
        page.iter().map(|l| l.id).collect::<Vec<_>>(),
        want,
        "a page of 2"
    );
    let next = sink.list(page[1].id + 1, 2).await.expect("the next page");
    assert_eq!(next.len(), 2, "{next:?}");
    assert!(next[0].id > page[1].id);
    let last = mine[4].id;
    assert!(
        sink.list(last + 1_000_000, 10)
            .await
            .expect("list past the end")
            .is_empty(),
        "nothing past the last id"
    );
    assert!(
        sink.list(first, 0).await.expect("list none").is_empty(),
        "max 0"
    );
    sink.purge(first).await.expect("purge nothing of mine");
    let kept = sink.list(first, 10_000).await.expect("list");
    assert_eq!(
        kept.iter().filter(|l| l.cluster == ctx.ns).count(),
        5,
        "purge(before) keeps ids at and above the bound"
    );
    sink.purge(last + 1).await.expect("purge all of mine");
    assert!(
        sink.list(0, 10_000)
            .await
            .expect("list")
            .iter()
            .all(|l| l.id > last),
        "purge(last + 1) removes every letter up to the last"
    );
}

/// Changes made through [`Control`] are applied at once and reach another store instance; an
/// unknown cluster publishes nothing; `follow` runs until cancelled and then returns. (The file
/// store's `follow` only waits for cancellation by design — one instance, whose own changes
/// are applied as they are made — so the follower is checked to be alive, not to apply.)
pub(crate) async fn control_updates(ctx: Ctx, backend: contract::ControlBackend) {
    use fluxroute::control::{Control, ControlError, RerouteMode};
    let cluster = ctx.ns.clone();
    let one = backend.open().await;
    let control = Arc::new(Control::new(
        [cluster.clone()],
        &one.load().await.expect("load"),
        Arc::clone(&one),
    ));
    assert_eq!(
        control.get(&cluster),
        Some(Default::default()),
        "default state"
    );
    let cancel = tokio_util::sync::CancellationToken::new();
    let follower = tokio::spawn({
        let (one, control, cancel) = (Arc::clone(&one), Arc::clone(&control), cancel.clone());
        async move { one.follow(control, cancel).await }
    });
    let mut rx = control.subscribe(&cluster).expect("known cluster");
    let state = control
        .update(&cluster, |c| {
            c.paused = true;
            c.reroute = RerouteMode::Off;
        })
        .await
        .expect("update");
    assert!(state.paused && state.reroute == RerouteMode::Off);
    assert!(rx.has_changed().expect("control alive"), "applied at once");
    assert_eq!(*rx.borrow_and_update(), state);
    let err = control
        .update("no-such-cluster", |c| c.paused = true)
        .await
        .expect_err("unknown cluster");
    assert!(matches!(err, ControlError::UnknownCluster(_)), "{err:?}");

    let two = backend.open().await;
    let deadline = tokio::time::Instant::now() + ctx.deadline;
    loop {
        let loaded = two.load().await.expect("load");
        if loaded.get(&cluster) == Some(&state) {
            assert!(
                !loaded.contains_key("no-such-cluster"),
                "a refused update published nothing"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "another instance never loaded the update: {loaded:?}"
        );
        tokio::task::yield_now().await;
    }
    // The follower reading back this instance's own state changes nothing.
    assert_eq!(control.get(&cluster), Some(state));
    assert!(!follower.is_finished(), "follow runs until cancelled");
    cancel.cancel();
    tokio::time::timeout(ctx.deadline, follower)
        .await
        .expect("follow returns once cancelled")
        .expect("follower task");
}

/// Every case, in order.
pub(crate) async fn all(queue: Arc<dyn Queue>) {
    per_partition_order(Ctx::new(Arc::clone(&queue), "order")).await;
    resume_from_committed(Ctx::new(Arc::clone(&queue), "resume")).await;
    redelivery_of_uncommitted(Ctx::new(Arc::clone(&queue), "redeliver")).await;
    independent_groups(Ctx::new(Arc::clone(&queue), "groups")).await;
    ddl_records(Ctx::new(Arc::clone(&queue), "ddl")).await;
    large_records(Ctx::new(Arc::clone(&queue), "large")).await;
    // The rest of the contract. Cases run one after another, so a case's records are the last
    // of each partition while it runs, and partition ends are its own. `seek_before_assignment`
    // needs a member that never polled, so it runs on its own queue only.
    contract::seek_to_time(Ctx::new(Arc::clone(&queue), "seek")).await;
    contract::seek_past_the_end(Ctx::new(Arc::clone(&queue), "seek_end")).await;
    contract::pause_resume(Ctx::new(Arc::clone(&queue), "pause")).await;
    pause_only_rebalance_events(Ctx::new(Arc::clone(&queue), "pause_events")).await;
    paused_from_the_start(Ctx::new(Arc::clone(&queue), "paused_early")).await;
    contract::lag_and_positions(Ctx::new(Arc::clone(&queue), "lag")).await;
    contract::seeding(Ctx::new(Arc::clone(&queue), "seeding")).await;
    contract::flush_and_health(Ctx::new(Arc::clone(&queue), "flush")).await;
    contract::dead_letters(Ctx::new(Arc::clone(&queue), "dead_letters")).await;
    dead_letter_paging(Ctx::new(Arc::clone(&queue), "dead_letter_paging")).await;
    let producers = vec![Arc::clone(&queue), Arc::clone(&queue), Arc::clone(&queue)];
    contract::concurrent_producers(Ctx::new(Arc::clone(&queue), "producers"), producers).await;
}
