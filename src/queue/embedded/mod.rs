//! The embedded backend: a durable local log on [fjall](https://docs.rs/fjall), for a single
//! router. Same semantics as the Kafka backend: partitions with offsets from 0, consumer groups
//! with durable committed positions, retention. It owns the store directory and one writer
//! thread; it knows nothing of HTTP or InfluxDB.
//!
//! # Storage layout
//!
//! One fjall database in [`EmbeddedSettings::dir`] with three keyspaces (LSM trees sharing one
//! write-ahead journal, so a batch that touches several is atomic):
//!
//! - `records`, with key-value separation (payloads go to blob files, uncompressed; the tree
//!   holds keys and pointers). Key (24 bytes, big-endian, so byte order is log order):
//!   `partition u32 | offset u64 | append time µs u64 | value length u32`. Value:
//!   `format u8 | kind u8 | db len u16 | db | rp len u16 | rp | payload`. Time and length ride in
//!   the key so retention walks a partition's head without reading payloads.
//! - `meta`: `layout` (1), `partitions` (fixed at creation), `P|partition` -> next offset and
//!   stored bytes (written in the same batch as the records they count, so they survive a
//!   partition becoming empty and offsets are never reused), `G|group` (known groups),
//!   `C|len|group|partition` -> committed next offset.
//! - `dead_letters` (key-value separated): `sequence u64` -> `header length u32 | JSON header
//!   (cluster, db, rp, status, reason, class, sources, time) | lines`; kept until purged, outside
//!   the budget.
//!
//! # Writes, group commit and fsync policy
//!
//! Every change goes through one writer thread fed by a bounded channel (callers wait for a
//! permit when it is full). The writer takes everything waiting (up to 512 requests or 64 MiB),
//! writes it as one atomic fjall batch, syncs once, publishes the new end offsets to consumers,
//! then answers every request of the batch: concurrent enqueues share one sync.
//!
//! - [`FsyncPolicy::Always`]: the batch is `fdatasync`ed before any enqueue of it returns `Ok`.
//!   Consumers only see records once synced, so no consumer can commit past a record a crash
//!   could still lose (which would let a later record reuse its offset).
//! - [`FsyncPolicy::Interval`]: the batch is written to the OS (fjall journal flushed from its
//!   user-space buffer) before `Ok`, and synced by the writer at most `d` later. A process crash
//!   (kill -9) loses nothing acknowledged; an OS crash or power loss loses what was acknowledged
//!   in the last `d` plus one sync's duration. Commits, joins and [`Producer::flush`] always sync
//!   (which also syncs every earlier write: one journal).
//!
//! # Crash safety
//!
//! fjall's journal is append-only with checksummed, atomic batches; on open it replays the
//! journal and drops a torn tail. A record is acknowledged only after the batch holding it (and
//! its partition's counters) is synced, so after a kill -9 at any moment the store reopens with
//! every acknowledged record, and with offsets continuing after the last durable one. Committed
//! positions are synced before `commit` returns. Deletions are not synced: one lost in a crash is
//! simply redone. fjall holds a lock file, so a second process cannot open the same directory.
//!
//! Append times ([`Record::timestamp_ms`](super::Record::timestamp_ms)) come from the wall
//! clock but are kept unique and increasing across the store (a clock stepping back does not
//! reorder them), which gives oldest-first eviction an exact order.
//!
//! # Consumer groups
//!
//! One process, so one member owns all partitions: a member's first [`ConsumerGroup::poll`]
//! returns [`Event::Assigned`] with every partition, reading from the committed positions (the
//! earliest retained record when none is committed or when it was dropped). A member's read
//! position is in memory; records after the committed position are delivered again to the next
//! member. **A second member joining the same group takes over**: the older member's next poll
//! returns [`Event::Revoked`] with every partition, then nothing; its commits fail with
//! [`Error::Unavailable`]. Newest wins, so a drain restarted while the old member is stuck
//! proceeds deterministically. A group becomes *known* (durably) when it first joins, and stays
//! known: a group that is never used again holds retention back until it is removed (no API for
//! that yet), so a new group joining later starts at the earliest record still retained.
//! [`Queue::seed_group`] sets a group's positions without a member (refused while one is
//! alive) and makes it known, so a reroute group seeded at a down cluster's positions holds
//! the records it has still to read.
//!
//! # Retention and disk budget
//!
//! [`RetentionPolicy::KeepUntilDelivered`] (default) deletes a record only once every known
//! group has committed past it (a known group that never committed holds everything). Under
//! [`RetentionPolicy::Bounded`] delivered records go too, records older than `max_age` are
//! dropped even when undelivered, and an append that would exceed `max_bytes` first drops the
//! oldest records (in append order across partitions); dropped undelivered records are counted
//! ([`EmbeddedQueue::dropped_records_total`]) and logged. `max_bytes` budgets the stored bytes
//! (keys plus uncompressed values); under `KeepUntilDelivered`, and under `Bounded` for one
//! enqueue larger than the budget, an enqueue that does not fit is refused whole with
//! [`Error::Full`] (the ingest answers 503) and succeeds again once commits free space. Nothing
//! is ever lost silently. Retention runs after commits, after writes and every second, deleting
//! at most 4096 records per pass between write batches. The files on disk can differ from the
//! budget: the journal (up to 256 MiB) and not yet collected blob files add to it; see
//! [`EmbeddedQueue::disk_bytes`]. Neither the journal nor the blobs are compressed: fjall's lz4
//! (on by default in both) cost 39 % of the ingest's CPU per line in the embedded bench, for a
//! buffer whose records normally live seconds.

mod codec;
mod member;
mod retention;
mod store;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch, Semaphore};

use super::{
    Appended, ConsumerGroup, DeadLetter, DeadLetterSink, Error, Event, OutgoingRecord, Producer,
    Queue, StoredDeadLetter,
};
use store::{PartitionState, Store};
use writer::{Envelope, Request, Writer};

pub use member::EmbeddedMember;
use member::MemberState;

/// Requests waiting for the writer at most; more callers wait for a permit.
const MAX_PENDING_REQUESTS: usize = 1024;
/// Payload bytes one poll returns at most (at least one record): a drain batches what it reads,
/// so this bounds its memory per poll (measured: 64 MiB let a draining router reach 380 MB RSS).
const MAX_POLL_BYTES: u64 = 8 * 1024 * 1024;

/// When an acknowledged record is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Synced before `enqueue` returns (group commit shares one sync between concurrent calls).
    Always,
    /// Written to the OS before `enqueue` returns, synced at most this long after.
    Interval(Duration),
}

/// What retention may delete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RetentionPolicy {
    /// Delete only what every known group has committed past; refuse appends over the budget.
    #[default]
    KeepUntilDelivered,
    /// Also drop undelivered records over `max_bytes` or older than `max_age`, counted.
    Bounded,
}

/// Retention settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionSettings {
    /// What may be deleted.
    pub policy: RetentionPolicy,
    /// Budget of stored bytes (keys plus uncompressed values); `None`: unbounded.
    pub max_bytes: Option<u64>,
    /// Under [`RetentionPolicy::Bounded`], the age after which records are dropped.
    pub max_age: Option<Duration>,
}

/// Settings of the embedded queue.
#[derive(Clone, Debug)]
pub struct EmbeddedSettings {
    /// Directory of the store (created when missing).
    pub dir: PathBuf,
    /// When acknowledged records are on disk.
    pub fsync: FsyncPolicy,
    /// Partition count of a new store; an existing store keeps its own (with a warning).
    pub partitions: u32,
    /// Payload cap per record (the ingest splits below it).
    pub max_record_bytes: usize,
    /// What retention may delete, and the disk budget.
    pub retention: RetentionSettings,
}

/// State shared by the queue handle, producers, members and the writer thread.
#[derive(Debug)]
struct Shared {
    store: Store,
    partitions: u32,
    max_record_bytes: usize,
    state: Mutex<State>,
    /// Bumped whenever records become visible, groups change or the queue closes.
    wake: watch::Sender<u64>,
    tx: SyncSender<Envelope>,
    permits: Arc<Semaphore>,
    closed: AtomicBool,
    dropped_records: AtomicU64,
    dropped_bytes: AtomicU64,
    /// Dead letters stored (sequence number of the next one).
    dead_letters: AtomicU64,
    /// Syncs of the journal (one per group commit under `Always`).
    syncs: AtomicU64,
    /// The generation of each group's live member (removed when that member is dropped).
    live: Mutex<HashMap<String, u64>>,
}

/// What readers see; written by the writer after each durable batch.
#[derive(Debug)]
struct State {
    parts: Vec<PartitionState>,
    groups: BTreeMap<String, GroupState>,
}

/// A known group.
#[derive(Clone, Debug)]
struct GroupState {
    /// Committed next offset per partition.
    committed: Vec<Option<i64>>,
    /// Joins so far in this process; the member holding the latest one owns the partitions.
    generation: u64,
}

fn closed_error() -> Error {
    Error::Unavailable {
        context: "using the embedded queue".into(),
        source: "the queue is closed".into(),
    }
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        // The state is replaced whole by the writer: a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a request to the writer, waiting for room.
    async fn submit(&self, request: Request) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| closed_error())?;
        match self.tx.try_send(Envelope {
            request,
            permit: Some(permit),
        }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Error::Full("queue writer is saturated".into())),
            Err(TrySendError::Disconnected(_)) => Err(closed_error()),
        }
    }

    async fn call<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Request,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.submit(request(tx)).await?;
        rx.await.map_err(|_| closed_error())?
    }
}

/// The embedded durable queue. Owns the store and its writer thread, which stop on
/// [`EmbeddedQueue::close`] or drop.
#[derive(Debug)]
pub struct EmbeddedQueue {
    shared: Arc<Shared>,
    producer: Arc<EmbeddedProducer>,
    dead_letters: Arc<EmbeddedDeadLetters>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl EmbeddedQueue {
    /// Opens (or creates) the store in `settings.dir`, recovers offsets, groups and committed
    /// positions, and starts the writer thread.
    ///
    /// # Errors
    /// [`Error::Setup`] when the directory or store cannot be opened (including another process
    /// holding it), or was written by an incompatible build.
    pub fn open(settings: EmbeddedSettings) -> Result<EmbeddedQueue, Error> {
        if settings.retention.policy == RetentionPolicy::KeepUntilDelivered
            && settings.retention.max_age.is_some()
        {
            tracing::warn!("queue retention max_age is ignored under keep-until-delivered");
        }
        let (store, recovered) = Store::open(&settings.dir, settings.partitions)?;
        let groups: BTreeMap<String, GroupState> = recovered
            .groups
            .into_iter()
            .map(|(name, committed)| {
                (
                    name,
                    GroupState {
                        committed,
                        generation: 0,
                    },
                )
            })
            .collect();
        let (tx, rx) = sync_channel(MAX_PENDING_REQUESTS + 1);
        let shared = Arc::new(Shared {
            store,
            partitions: recovered.partitions,
            max_record_bytes: settings.max_record_bytes,
            state: Mutex::new(State {
                parts: recovered.parts.clone(),
                groups: groups.clone(),
            }),
            wake: watch::Sender::new(0),
            tx,
            permits: Arc::new(Semaphore::new(MAX_PENDING_REQUESTS)),
            closed: AtomicBool::new(false),
            dropped_records: AtomicU64::new(0),
            dropped_bytes: AtomicU64::new(0),
            dead_letters: AtomicU64::new(recovered.next_dead_letter),
            syncs: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
        });
        let writer = Writer::new(
            Arc::clone(&shared),
            rx,
            settings.fsync,
            settings.retention,
            settings.max_record_bytes,
            recovered.parts,
            groups,
            recovered.next_dead_letter,
            recovered.last_append_us,
        );
        let handle = std::thread::Builder::new()
            .name("fluxroute-queue-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| Error::Setup(format!("starting the queue writer thread: {e}")))?;
        Ok(EmbeddedQueue {
            producer: Arc::new(EmbeddedProducer {
                shared: Arc::clone(&shared),
            }),
            dead_letters: Arc::new(EmbeddedDeadLetters {
                shared: Arc::clone(&shared),
            }),
            shared,
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Stops the writer after it has synced everything; later calls fail with
    /// [`Error::Unavailable`]. Blocks for at most one batch and one sync. Idempotent; also done
    /// on drop.
    pub fn close(&self) {
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(handle) = handle else {
            return;
        };
        self.shared.closed.store(true, Ordering::Release);
        self.shared.permits.close();
        // The channel has one slot more than there are permits, kept for this message.
        let _ = self.shared.tx.send(Envelope {
            request: Request::Shutdown,
            permit: None,
        });
        if handle.join().is_err() {
            tracing::error!("the queue writer thread panicked");
        }
        self.shared.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Number of partitions (the store's, fixed at creation).
    pub fn partitions(&self) -> u32 {
        self.shared.partitions
    }

    /// Bytes the store's files take on disk now (journal, trees, blob files).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the files cannot be measured.
    pub fn disk_bytes(&self) -> Result<u64, Error> {
        self.shared
            .store
            .db
            .disk_space()
            .map_err(|e| Error::unavailable("measuring the queue store", e))
    }

    /// Bytes counted against the budget: keys plus uncompressed values of retained records.
    pub fn stored_bytes(&self) -> u64 {
        self.shared.lock_state().parts.iter().map(|p| p.bytes).sum()
    }

    /// Records retained in all partitions.
    pub fn retained_records(&self) -> u64 {
        self.shared
            .lock_state()
            .parts
            .iter()
            .map(|p| u64::try_from(p.next - p.head).unwrap_or(0))
            .sum()
    }

    /// Age of the oldest retained record, `None` when the queue is empty.
    pub fn oldest_record_age(&self) -> Option<Duration> {
        let oldest = self
            .shared
            .lock_state()
            .parts
            .iter()
            .filter(|p| p.head < p.next)
            .filter_map(|p| p.head_ts)
            .min()?;
        let age = writer::unix_us().saturating_sub(oldest);
        Some(Duration::from_micros(u64::try_from(age).unwrap_or(0)))
    }

    /// Undelivered records dropped by [`RetentionPolicy::Bounded`] since open.
    pub fn dropped_records_total(&self) -> u64 {
        self.shared.dropped_records.load(Ordering::Relaxed)
    }

    /// Bytes of the records counted by [`EmbeddedQueue::dropped_records_total`].
    pub fn dropped_bytes_total(&self) -> u64 {
        self.shared.dropped_bytes.load(Ordering::Relaxed)
    }

    /// Journal syncs since open: under `Always`, enqueues per sync shows how well group commit
    /// batches concurrent writers.
    pub fn syncs_total(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// Dead letters stored since the store was created.
    pub fn dead_letters_total(&self) -> u64 {
        self.shared.dead_letters.load(Ordering::Relaxed)
    }

    /// The first retained offset and the next offset to assign, per partition.
    pub fn offsets(&self) -> Vec<(u32, i64, i64)> {
        self.shared
            .lock_state()
            .parts
            .iter()
            .enumerate()
            .map(|(p, s)| (u32::try_from(p).unwrap_or(u32::MAX), s.head, s.next))
            .collect()
    }
}

impl Drop for EmbeddedQueue {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    fn producer(&self) -> Arc<dyn Producer> {
        Arc::clone(&self.producer) as Arc<dyn Producer>
    }

    fn dead_letters(&self) -> Arc<dyn DeadLetterSink> {
        Arc::clone(&self.dead_letters) as Arc<dyn DeadLetterSink>
    }

    async fn join(&self, group: &str) -> Result<Box<dyn ConsumerGroup>, Error> {
        let name = group.to_owned();
        let generation = self
            .shared
            .call(|reply| Request::Join { group: name, reply })
            .await?;
        self.shared
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(group.to_owned(), generation);
        Ok(Box::new(EmbeddedMember {
            shared: Arc::clone(&self.shared),
            group: group.to_owned(),
            generation,
            member: tokio::sync::Mutex::new(MemberState::default()),
            paused: AtomicBool::new(false),
        }))
    }

    async fn group_positions(&self, group: &str) -> Result<Vec<(u32, Option<i64>)>, Error> {
        let st = self.shared.lock_state();
        let committed = st.groups.get(group).map(|g| &g.committed);
        Ok((0..self.shared.partitions)
            .map(|p| {
                (
                    p,
                    committed.and_then(|c| c.get(p as usize).copied().flatten()),
                )
            })
            .collect())
    }

    /// Sets `group`'s committed positions (synced) and makes the group known, so retention
    /// keeps what it has not read.
    ///
    /// # Errors
    /// [`Error::Unavailable`] while a member of `group` is alive, [`Error::Setup`] for a
    /// partition out of range or a negative offset.
    async fn seed_group(&self, group: &str, positions: &[(u32, i64)]) -> Result<(), Error> {
        if self
            .shared
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(group)
        {
            return Err(Error::Unavailable {
                context: format!("seeding group {group}"),
                source: "the group has a live member".into(),
            });
        }
        let (group, positions) = (group.to_owned(), positions.to_vec());
        self.shared
            .call(|reply| Request::Seed {
                group,
                positions,
                reply,
            })
            .await
    }
}

/// Dead letters of an [`EmbeddedQueue`], kept in the store's `dead_letters` keyspace (sequence
/// number -> JSON header and lines) until an operator purges them; they do not count against
/// the disk budget.
#[derive(Debug)]
pub struct EmbeddedDeadLetters {
    shared: Arc<Shared>,
}

#[async_trait]
impl DeadLetterSink for EmbeddedDeadLetters {
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), Error> {
        let letter = Box::new(letter);
        self.shared
            .call(|reply| Request::DeadLetter { letter, reply })
            .await
    }

    async fn list(&self, from: u64, max: usize) -> Result<Vec<StoredDeadLetter>, Error> {
        let store = self.shared.store.clone();
        let read = tokio::task::spawn_blocking(move || store.read_dead_letters(from, max))
            .await
            .map_err(|e| Error::Unavailable {
                context: "reading dead letters".into(),
                source: e.to_string().into(),
            })??;
        Ok(read
            .into_iter()
            .map(|(id, h, lines)| StoredDeadLetter {
                id,
                appended_ms: h.appended_ms,
                cluster: h.cluster,
                db: h.db,
                rp: h.rp,
                status: h.status,
                reason: h.reason,
                reason_class: h.reason_class,
                sources: h.sources,
                lines,
            })
            .collect())
    }

    async fn purge(&self, before: u64) -> Result<(), Error> {
        self.shared
            .call(|reply| Request::PurgeDeadLetters { before, reply })
            .await
    }
}

/// The producer of an [`EmbeddedQueue`].
#[derive(Debug)]
pub struct EmbeddedProducer {
    shared: Arc<Shared>,
}

#[async_trait]
impl Producer for EmbeddedProducer {
    fn partitions(&self) -> u32 {
        self.shared.partitions
    }

    fn max_record_bytes(&self) -> usize {
        self.shared.max_record_bytes
    }

    /// Appends `records` in one atomic batch (all or none are stored) and returns once they
    /// are durable per the [`FsyncPolicy`].
    ///
    /// # Errors
    /// [`Error::Full`] when the disk budget is exhausted, [`Error::Setup`] for a partition out
    /// of range or a payload over `max_record_bytes` (caller bugs), [`Error::Unavailable`] when
    /// the store fails or the queue is closed.
    async fn enqueue(&self, records: Vec<OutgoingRecord>) -> Result<Appended, Error> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.shared
            .call(|reply| Request::Append { records, reply })
            .await
    }

    async fn check_health(&self, _timeout: Duration) -> Result<(), Error> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        Ok(())
    }

    /// Syncs everything appended so far (under `Always` it already is).
    async fn flush(&self, timeout: Duration) -> Result<(), Error> {
        tokio::time::timeout(timeout, self.shared.call(|reply| Request::Sync { reply }))
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }
}

#[cfg(test)]
mod tests;
