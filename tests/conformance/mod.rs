//! Backend-generic queue conformance cases: each takes a [`Ctx`] (an `Arc<dyn Queue>` and a
//! namespace) and checks one promise of the `queue` module against any backend.
//!
//! Cases tolerate a shared topic: every record a case writes carries the case's namespace as its
//! `db`, groups are named after it, and records of other namespaces are read past and ignored.
//! Waiting is always bounded by [`Ctx::deadline`], never a fixed sleep.

#![allow(dead_code)] // each runner uses the cases it needs

pub(crate) mod contract;

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

    async fn enqueue(&self, records: Vec<OutgoingRecord>) {
        self.queue
            .producer()
            .enqueue(records)
            .await
            .expect("enqueue");
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
    for _call in 0..per_partition {
        // Each call carries one record for every partition, interleaved.
        let batch = (0..parts)
            .map(|p| {
                seq += 1;
                ctx.write(p, seq)
            })
            .collect();
        ctx.enqueue(batch).await;
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

/// Every case, in order.
pub(crate) async fn all(queue: Arc<dyn Queue>) {
    per_partition_order(Ctx::new(Arc::clone(&queue), "order")).await;
    resume_from_committed(Ctx::new(Arc::clone(&queue), "resume")).await;
    redelivery_of_uncommitted(Ctx::new(Arc::clone(&queue), "redeliver")).await;
    independent_groups(Ctx::new(Arc::clone(&queue), "groups")).await;
    ddl_records(Ctx::new(Arc::clone(&queue), "ddl")).await;
    large_records(Ctx::new(Arc::clone(&queue), "large")).await;
}
