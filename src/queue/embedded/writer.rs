//! The writer thread: the only code that changes the store. It takes requests from a bounded
//! channel, applies everything waiting in one atomic fjall batch with one sync (group commit),
//! publishes the new state, then answers every request of the batch. Retention and the periodic
//! sync of [`FsyncPolicy::Interval`] run between batches.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::queue::Appended;
use fjall::PersistMode;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use super::super::{DeadLetter, Error, OutgoingRecord};
use super::codec::{self, KeyFacts};
use super::retention::{self, OldestFirst};
use super::store::{storage_error, PartitionState};
mod staged;
use self::staged::Staged;

use super::{FsyncPolicy, GroupState, RetentionPolicy, RetentionSettings, Shared};

/// Most requests applied in one batch (one sync).
const MAX_BATCH_REQUESTS: usize = 512;
/// Most payload bytes applied in one batch; more waits for the next one.
const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;
/// Most records one retention batch deletes; more are deleted in later batches, between writes.
const RETENTION_CHUNK: usize = 4096;
/// How often retention looks at record ages even when nothing else happens.
const RETENTION_TICK: Duration = Duration::from_secs(1);
/// Sync used when a request must be durable: `fdatasync` of the journal (its length is data on
/// Linux file systems, so an appended journal is fully covered).
const SYNC: PersistMode = PersistMode::SyncData;

/// A request to the writer.
#[derive(Debug)]
pub(super) enum Request {
    /// Append records; answered once they are durable per the fsync policy.
    Append {
        records: Vec<OutgoingRecord>,
        reply: oneshot::Sender<Result<Appended, Error>>,
    },
    /// Register a member of `group` (the group becomes known); answered with its generation.
    Join {
        group: String,
        reply: oneshot::Sender<Result<u64, Error>>,
    },
    /// Store positions of `group`, if `generation` is still the group's current member.
    Commit {
        group: String,
        generation: u64,
        positions: Vec<(u32, i64)>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Set `group`'s positions without a member (the group becomes known).
    Seed {
        group: String,
        positions: Vec<(u32, i64)>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Store a dead letter; answered once durable per the fsync policy.
    DeadLetter {
        letter: Box<DeadLetter>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Delete every dead letter with a sequence number below `before`.
    PurgeDeadLetters {
        before: u64,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Sync everything written so far.
    Sync {
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Sync and stop.
    Shutdown,
}

/// A request with the permit that bounds how many are in flight.
#[derive(Debug)]
pub(super) struct Envelope {
    pub(super) request: Request,
    pub(super) permit: Option<OwnedSemaphorePermit>,
}

enum Reply {
    Unit(oneshot::Sender<Result<(), Error>>),
    Join(oneshot::Sender<Result<u64, Error>>, u64),
    Append(oneshot::Sender<Result<Appended, Error>>, Appended),
}

impl Reply {
    fn send(self, failure: Option<&Error>) {
        let failed = |e: &Error| Error::Unavailable {
            context: "writing to the queue store".into(),
            source: e.to_string().into(),
        };
        // A receiver that went away (cancelled caller) does not matter.
        match (self, failure) {
            (Reply::Unit(tx), None) => drop(tx.send(Ok(()))),
            (Reply::Unit(tx), Some(e)) => drop(tx.send(Err(failed(e)))),
            (Reply::Join(tx, generation), None) => drop(tx.send(Ok(generation))),
            (Reply::Join(tx, _), Some(e)) => drop(tx.send(Err(failed(e)))),
            (Reply::Append(tx, at), None) => drop(tx.send(Ok(at))),
            (Reply::Append(tx, _), Some(e)) => drop(tx.send(Err(failed(e)))),
        }
    }
}

/// The writer's state; it owns the authoritative copy and publishes it to [`Shared`].
#[derive(Debug)]
pub(super) struct Writer {
    shared: Arc<Shared>,
    rx: Receiver<Envelope>,
    fsync: FsyncPolicy,
    retention: RetentionSettings,
    max_record_bytes: usize,
    parts: Vec<PartitionState>,
    groups: BTreeMap<String, GroupState>,
    /// Since when writes acknowledged under `Interval` wait for their sync.
    dirty_since: Option<Instant>,
    last_retention: Instant,
    /// Retention stopped at a chunk boundary and has more to delete.
    retention_pending: bool,
    next_dead_letter: u64,
    /// Append time given to the last record (µs); the next one gets a later one.
    last_append_us: i64,
}

pub(super) fn unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl Writer {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        shared: Arc<Shared>,
        rx: Receiver<Envelope>,
        fsync: FsyncPolicy,
        retention: RetentionSettings,
        max_record_bytes: usize,
        parts: Vec<PartitionState>,
        groups: BTreeMap<String, GroupState>,
        next_dead_letter: u64,
        last_append_us: i64,
    ) -> Writer {
        Writer {
            shared,
            rx,
            fsync,
            retention,
            max_record_bytes,
            parts,
            groups,
            dirty_since: None,
            last_retention: Instant::now(),
            retention_pending: true,
            next_dead_letter,
            last_append_us,
        }
    }

    /// Serves requests until [`Request::Shutdown`], then syncs.
    pub(super) fn run(mut self) {
        loop {
            let first = match self.rx.recv_timeout(self.idle_wait()) {
                Ok(env) => Some(env),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut shutdown = false;
            if let Some(first) = first {
                let mut batch = vec![first];
                let mut bytes = batch_bytes(&batch[0]);
                while batch.len() < MAX_BATCH_REQUESTS && bytes < MAX_BATCH_BYTES {
                    match self.rx.try_recv() {
                        Ok(env) => {
                            bytes += batch_bytes(&env);
                            batch.push(env);
                        }
                        Err(_) => break,
                    }
                }
                shutdown = self.apply(batch);
            }
            self.sync_if_due();
            if self.retention_pending
                || self.last_retention.elapsed() >= RETENTION_TICK
                || self.needs_retention()
            {
                self.retain();
            }
            if shutdown {
                break;
            }
        }
        if let Err(e) = self.shared.store.db.persist(PersistMode::SyncAll) {
            tracing::error!(error = %e, "final sync of the queue store failed");
        }
    }

    fn idle_wait(&self) -> Duration {
        if self.retention_pending {
            return Duration::ZERO;
        }
        let mut wait = RETENTION_TICK.saturating_sub(self.last_retention.elapsed());
        if let (FsyncPolicy::Interval(every), Some(since)) = (self.fsync, self.dirty_since) {
            wait = wait.min(every.saturating_sub(since.elapsed()));
        }
        wait
    }

    fn sync_if_due(&mut self) {
        let (FsyncPolicy::Interval(every), Some(since)) = (self.fsync, self.dirty_since) else {
            return;
        };
        if since.elapsed() < every {
            return;
        }
        match self.shared.store.db.persist(SYNC) {
            Ok(()) => {
                self.dirty_since = None;
                self.shared
                    .syncs
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // fjall poisons itself on a failed sync: every later write fails and is answered 503.
            Err(e) => tracing::error!(error = %e, "periodic sync of the queue store failed"),
        }
    }

    /// Applies a batch of requests in one atomic write and answers them. Returns whether a
    /// shutdown was requested.
    fn apply(&mut self, batch: Vec<Envelope>) -> bool {
        let now_us = unix_us();
        let mut staged = Staged {
            store: self.shared.store.clone(),
            wb: self.shared.store.db.batch(),
            parts: self.parts.clone(),
            groups: self.groups.clone(),
            touched: vec![false; self.parts.len()],
            must_sync: matches!(self.fsync, FsyncPolicy::Always),
            wrote: false,
            replies: Vec::with_capacity(batch.len()),
            evictor: None,
            dropped: (0, 0),
            next_dead_letter: self.next_dead_letter,
            last_us: self.last_append_us,
            now_us,
        };
        let mut shutdown = false;
        for env in batch {
            match env.request {
                Request::Append { records, reply } => {
                    self.stage_append(&mut staged, &records, reply)
                }
                Request::Join { group, reply } => staged.join(group, reply),
                Request::Commit {
                    group,
                    generation,
                    positions,
                    reply,
                } => staged.commit(&group, generation, &positions, reply),
                Request::Seed {
                    group,
                    positions,
                    reply,
                } => staged.seed(group, &positions, reply),
                Request::DeadLetter { letter, reply } => staged.dead_letter(&letter, reply),
                Request::PurgeDeadLetters { before, reply } => staged.purge(before, reply),
                Request::Sync { reply } => {
                    staged.must_sync = true;
                    staged.replies.push(Reply::Unit(reply));
                }
                Request::Shutdown => shutdown = true,
            }
            drop(env.permit);
        }
        self.commit_staged(staged);
        shutdown
    }

    /// Appends records (making room first under a byte budget).
    fn stage_append(
        &self,
        st: &mut Staged,
        records: &[OutgoingRecord],
        reply: oneshot::Sender<Result<Appended, Error>>,
    ) {
        let encoded = match self.encode(records) {
            Ok(v) => v,
            Err(e) => {
                drop(reply.send(Err(e)));
                return;
            }
        };
        let need: u64 = encoded
            .iter()
            .map(|(_, v)| codec::RECORD_KEY_LEN as u64 + v.len() as u64)
            .sum();
        if let Err(e) = self.make_room(
            need,
            &mut st.parts,
            &mut st.touched,
            &mut st.wb,
            &mut st.evictor,
            &mut st.dropped,
        ) {
            drop(reply.send(Err(e)));
            return;
        }
        let mut at = Vec::with_capacity(encoded.len());
        for (p, value) in encoded {
            let part = &mut st.parts[p as usize];
            at.push((p, part.next));
            let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
            // Unique, increasing append times give every record a place in one global order
            // (oldest-first eviction), even within a microsecond.
            st.last_us = st.now_us.max(st.last_us + 1);
            let key = codec::record_key(p, part.next, st.last_us, len);
            st.wb.insert(&st.store.records, key, value);
            if part.head == part.next {
                part.head_ts = Some(st.last_us);
            }
            part.next += 1;
            part.bytes += codec::RECORD_KEY_LEN as u64 + u64::from(len);
            st.touched[p as usize] = true;
        }
        st.wrote = true;
        st.replies.push(Reply::Append(reply, at));
    }

    /// Writes the staged batch (with the touched partitions' counters) in one atomic write,
    /// synced when a request needs it; publishes the new state and answers every request.
    fn commit_staged(&mut self, mut st: Staged) {
        drop(st.evictor.take());
        for (p, part) in st.parts.iter().enumerate() {
            if st.touched[p] {
                let p = u32::try_from(p).unwrap_or(u32::MAX);
                st.wb.insert(
                    &st.store.meta,
                    codec::partition_key(p),
                    codec::encode_counters(part.next, part.bytes),
                );
            }
        }
        let result = if st.wrote || st.must_sync {
            let mode = if st.must_sync {
                SYNC
            } else {
                PersistMode::Buffer
            };
            st.wb
                .durability(Some(mode))
                .commit()
                .map_err(|e| storage_error("committing a batch", e))
        } else {
            Ok(())
        };
        match result {
            Ok(()) => {
                if st.must_sync {
                    self.dirty_since = None;
                    self.shared
                        .syncs
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                } else if st.wrote {
                    self.dirty_since.get_or_insert_with(Instant::now);
                }
                self.parts = st.parts;
                self.groups = st.groups;
                self.next_dead_letter = st.next_dead_letter;
                self.last_append_us = st.last_us;
                self.shared
                    .dead_letters
                    .store(st.next_dead_letter, std::sync::atomic::Ordering::Relaxed);
                self.count_dropped(st.dropped);
                self.publish();
                for r in st.replies {
                    r.send(None);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "queue store write failed");
                for r in st.replies {
                    r.send(Some(&e));
                }
            }
        }
    }

    fn encode(&self, records: &[OutgoingRecord]) -> Result<Vec<(u32, Vec<u8>)>, Error> {
        records
            .iter()
            .map(|r| {
                if r.partition as usize >= self.parts.len() {
                    return Err(Error::Setup(format!(
                        "partition {} does not exist (the queue has {})",
                        r.partition,
                        self.parts.len()
                    )));
                }
                if r.payload.len() > self.max_record_bytes {
                    return Err(Error::Setup(format!(
                        "record of {} bytes exceeds max_record_bytes {}",
                        r.payload.len(),
                        self.max_record_bytes
                    )));
                }
                codec::encode_value(&r.meta, &r.payload)
                    .map(|v| (r.partition, v))
                    .map_err(|reason| Error::Setup(format!("record cannot be stored: {reason}")))
            })
            .collect()
    }

    /// Keeps the disk budget for `need` more bytes: under `Bounded` by dropping the oldest
    /// records, under `KeepUntilDelivered` by refusing with [`Error::Full`].
    fn make_room(
        &self,
        need: u64,
        parts: &mut [PartitionState],
        touched: &mut [bool],
        wb: &mut fjall::OwnedWriteBatch,
        evictor: &mut Option<Evictor>,
        dropped: &mut (u64, u64),
    ) -> Result<(), Error> {
        let Some(max) = self.retention.max_bytes else {
            return Ok(());
        };
        let stored: u64 = parts.iter().map(|p| p.bytes).sum();
        if stored + need <= max {
            return Ok(());
        }
        let full = || {
            Error::Full(format!(
                "queue disk budget exhausted: {stored} of {max} bytes stored, {need} more needed; \
                 space is freed when consumer groups commit"
            ))
        };
        if self.retention.policy == RetentionPolicy::KeepUntilDelivered || need > max {
            return Err(full());
        }
        let store = &self.shared.store;
        let ev = evictor.get_or_insert_with(|| {
            // Only records stored before this batch: the ones staged in it are not visible yet.
            let heads: Vec<_> = (0..parts.len())
                .map(|p| {
                    let p = u32::try_from(p).unwrap_or(u32::MAX);
                    Box::new(store.facts_from(p, parts[p as usize].head)) as FactsIter
                })
                .collect();
            OldestFirst::new(heads)
        });
        let mut freed = 0u64;
        let mut stored = stored;
        while stored + need > max {
            let Some(f) = ev.pop_oldest()? else {
                return Err(full());
            };
            let st = &mut parts[f.partition as usize];
            if f.offset < st.head {
                continue;
            }
            wb.remove(
                &store.records,
                codec::record_key(f.partition, f.offset, f.append_us, value_len(&f)),
            );
            st.head = f.offset + 1;
            st.head_ts = None;
            st.bytes = st.bytes.saturating_sub(f.stored_bytes);
            touched[f.partition as usize] = true;
            stored = stored.saturating_sub(f.stored_bytes);
            freed += f.stored_bytes;
            // Records every group has committed past are not a loss.
            if self
                .slowest_position(f.partition as usize)
                .is_none_or(|s| f.offset >= s)
            {
                dropped.0 += 1;
                dropped.1 += f.stored_bytes;
            }
        }
        tracing::warn!(
            freed_bytes = freed,
            "queue disk budget reached: dropped the oldest records (retention policy bounded)"
        );
        Ok(())
    }

    fn count_dropped(&self, (records, bytes): (u64, u64)) {
        use std::sync::atomic::Ordering::Relaxed;
        if records > 0 {
            self.shared.dropped_records.fetch_add(records, Relaxed);
            self.shared.dropped_bytes.fetch_add(bytes, Relaxed);
        }
    }

    /// Publishes the writer's state to readers and wakes waiting consumers.
    fn publish(&mut self) {
        // Heads whose time is unknown after an eviction are looked up again (one key read).
        for (p, st) in self.parts.iter_mut().enumerate() {
            if st.head_ts.is_none() && st.head < st.next {
                let p = u32::try_from(p).unwrap_or(u32::MAX);
                match self.shared.store.first_facts(p, st.head) {
                    Ok(Some(f)) => st.head_ts = Some(f.append_us),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, partition = p, "reading head record"),
                }
            }
        }
        {
            let mut state = self.shared.lock_state();
            state.parts.clone_from(&self.parts);
            state.groups.clone_from(&self.groups);
        }
        self.shared.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Whether retention has something to delete, judged from memory alone.
    fn needs_retention(&self) -> bool {
        let cutoff = self.age_cutoff();
        self.parts.iter().enumerate().any(|(p, st)| {
            let delivered = self.delivered_until(p, st);
            delivered > st.head || matches!((cutoff, st.head_ts), (Some(c), Some(ts)) if ts < c)
        })
    }

    fn age_cutoff(&self) -> Option<i64> {
        match (self.retention.policy, self.retention.max_age) {
            (RetentionPolicy::Bounded, Some(age)) => {
                Some(unix_us() - i64::try_from(age.as_micros()).unwrap_or(i64::MAX))
            }
            _ => None,
        }
    }

    /// The slowest known group's committed position on partition `p` (`None`: no group).
    fn slowest_position(&self, p: usize) -> Option<i64> {
        self.groups
            .values()
            .map(|g| g.committed.get(p).copied().flatten().unwrap_or(0))
            .min()
    }

    fn delivered_until(&self, p: usize, st: &PartitionState) -> i64 {
        retention::keep_from(
            self.groups
                .values()
                .map(|g| g.committed.get(p).copied().flatten()),
            st.head,
            st.next,
        )
    }

    /// Deletes what every known group has committed past and, under `Bounded`, what is older
    /// than `max_age`; at most [`RETENTION_CHUNK`] records per call.
    fn retain(&mut self) {
        self.last_retention = Instant::now();
        self.retention_pending = false;
        let cutoff = self.age_cutoff();
        let store = self.shared.store.clone();
        let mut wb = store.db.batch();
        let mut parts = self.parts.clone();
        let mut budget = RETENTION_CHUNK;
        let mut dropped = (0u64, 0u64);
        let mut touched = false;
        for (p, st) in parts.iter_mut().enumerate() {
            let delivered = self.delivered_until(p, st);
            let aged = matches!((cutoff, st.head_ts), (Some(c), Some(ts)) if ts < c);
            if delivered <= st.head && !aged {
                continue;
            }
            let pid = u32::try_from(p).unwrap_or(u32::MAX);
            let mut deleted_any = false;
            for f in store.facts_from(pid, st.head) {
                let f = match f {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::warn!(error = %e, partition = pid, "retention scan failed");
                        break;
                    }
                };
                let by_age = cutoff.is_some_and(|c| f.append_us < c);
                if f.offset >= delivered && !by_age {
                    st.head_ts = Some(f.append_us);
                    break;
                }
                if budget == 0 {
                    self.retention_pending = true;
                    break;
                }
                budget -= 1;
                wb.remove(
                    &store.records,
                    codec::record_key(pid, f.offset, f.append_us, value_len(&f)),
                );
                if f.offset >= delivered {
                    dropped.0 += 1;
                    dropped.1 += f.stored_bytes;
                }
                st.head = f.offset + 1;
                st.head_ts = None;
                st.bytes = st.bytes.saturating_sub(f.stored_bytes);
                deleted_any = true;
            }
            if deleted_any {
                touched = true;
                wb.insert(
                    &store.meta,
                    codec::partition_key(pid),
                    codec::encode_counters(st.next, st.bytes),
                );
            }
        }
        if !touched {
            return;
        }
        // Not synced: a deletion lost in a crash is redone by the next pass.
        match wb
            .durability(Some(PersistMode::Buffer))
            .commit()
            .map_err(|e| storage_error("deleting retained records", e))
        {
            Ok(()) => {
                if dropped.0 > 0 {
                    tracing::warn!(
                        records = dropped.0,
                        bytes = dropped.1,
                        "dropped undelivered records older than max_age (retention policy bounded)"
                    );
                }
                self.parts = parts;
                self.count_dropped(dropped);
                self.publish();
            }
            Err(e) => tracing::error!(error = %e, "retention pass failed"),
        }
    }
}

type FactsIter = Box<dyn Iterator<Item = Result<KeyFacts, Error>>>;
type Evictor = OldestFirst<FactsIter>;

fn value_len(f: &KeyFacts) -> u32 {
    u32::try_from(f.stored_bytes - codec::RECORD_KEY_LEN as u64).unwrap_or(u32::MAX)
}

fn batch_bytes(env: &Envelope) -> usize {
    match &env.request {
        Request::Append { records, .. } => records.iter().map(|r| r.payload.len()).sum(),
        _ => 0,
    }
}

/// Checks a commit against the group's current member and stages its positions.
fn stage_commit(
    group: &str,
    generation: u64,
    positions: &[(u32, i64)],
    groups: &mut BTreeMap<String, GroupState>,
    partitions: usize,
) -> Result<(), Error> {
    let g = groups.get_mut(group).ok_or_else(|| Error::Unavailable {
        context: format!("committing offsets of group {group}"),
        source: "the group has no member".into(),
    })?;
    if g.generation != generation {
        return Err(Error::Unavailable {
            context: format!("committing offsets of group {group}"),
            source: "partitions revoked: a newer member of the group joined".into(),
        });
    }
    for &(p, next) in positions {
        if p as usize >= partitions || next < 0 {
            return Err(Error::Setup(format!(
                "cannot commit offset {next} of partition {p} (the queue has {partitions})"
            )));
        }
    }
    for &(p, next) in positions {
        g.committed[p as usize] = Some(next);
    }
    Ok(())
}
