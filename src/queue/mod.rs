//! The durable queue between ingest and the per-cluster drains.
//!
//! This module owns the queue's vocabulary — [`OutgoingRecord`], [`Record`], [`RecordMeta`],
//! [`Event`] — and the two capabilities every backend provides: a [`Producer`] that returns only
//! once records are durable, and a [`ConsumerGroup`] that reads records with its own committed
//! position. It does not know about HTTP, line protocol validation or InfluxDB clusters.
//!
//! Invariants every backend keeps:
//! - [`Producer::enqueue`] returns `Ok` only once every record it was given is durable (Kafka:
//!   acknowledged by all in-sync replicas of an idempotent producer; embedded: synced per the
//!   configured fsync policy). On `Err` any subset may have become durable: callers answer the
//!   client with an error and the client retries, which is harmless because the ingest fixed every
//!   line's timestamp (at-least-once, idempotent replays).
//! - Records of one partition are read in the order they were enqueued.
//! - A consumer group resumes from its committed position; records after it are delivered again.
//! - Groups are independent: each has its own committed position per partition.
//!
//! Record format (version [`FORMAT_VERSION`]): the payload of a [`RecordKind::Write`] record is
//! normalized line protocol — valid lines, each with a nanosecond timestamp, each ending in `\n`
//! — either plain or, as the ingest writes them, gzip-compressed behind a frame with their count
//! ([`payload`]).
//! A [`RecordKind::Ddl`] record's payload is a schema change (JSON of
//! [`crate::query::statement::Ddl`]) acting on its `db`; a [`RecordKind::CreateDatabase`] record
//! (written by earlier versions) carries no payload; its `db` names the database. The
//! kind, db, rp and format version travel in record headers (see [`kafka`]).

pub mod embedded;
pub mod kafka;
pub mod payload;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

/// Milliseconds since the Unix epoch, as record timestamps count them.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Version of the record format written by this build; readers refuse versions they don't know.
pub const FORMAT_VERSION: u8 = 1;

/// What a record asks the drains to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// Write the payload's lines into `db`/`rp`.
    Write,
    /// Create database `db` (DDL travels through the log so every cluster applies it in order).
    /// Written by earlier versions; read as the schema change `CREATE DATABASE "<db>"`.
    CreateDatabase,
    /// A schema change acting on `db`: the payload is a [`crate::query::statement::Ddl`]
    /// (JSON), applied by every cluster a route sends `db` to, in log order.
    Ddl,
}

impl RecordKind {
    /// The header value naming this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Write => "write",
            RecordKind::CreateDatabase => "create-database",
            RecordKind::Ddl => "ddl",
        }
    }

    /// Parses a header value written by [`RecordKind::as_str`].
    pub fn parse(s: &str) -> Option<RecordKind> {
        match s {
            "write" => Some(RecordKind::Write),
            "create-database" => Some(RecordKind::CreateDatabase),
            "ddl" => Some(RecordKind::Ddl),
            _ => None,
        }
    }
}

/// The routing facts of a record, carried beside its payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecordMeta {
    /// What the record is.
    pub kind: RecordKind,
    /// Target database.
    pub db: String,
    /// Target retention policy; empty means the database's default.
    pub rp: String,
}

impl RecordMeta {
    /// Meta of a write record.
    pub fn write(db: impl Into<String>, rp: impl Into<String>) -> RecordMeta {
        RecordMeta {
            kind: RecordKind::Write,
            db: db.into(),
            rp: rp.into(),
        }
    }

    /// Meta of a schema change acting on `db`.
    pub fn ddl(db: impl Into<String>) -> RecordMeta {
        RecordMeta {
            kind: RecordKind::Ddl,
            db: db.into(),
            rp: String::new(),
        }
    }

    /// Meta of a `CREATE DATABASE` record.
    pub fn create_database(db: impl Into<String>) -> RecordMeta {
        RecordMeta {
            kind: RecordKind::CreateDatabase,
            db: db.into(),
            rp: String::new(),
        }
    }
}

/// Where [`Producer::enqueue`] put each record: (partition, offset), in the order given.
pub type Appended = Vec<(u32, i64)>;

/// A record handed to a [`Producer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingRecord {
    /// Partition to append to; less than [`Producer::partitions`].
    pub partition: u32,
    /// Kind, db and rp.
    pub meta: RecordMeta,
    /// Normalized line protocol (empty for DDL records).
    pub payload: Bytes,
}

/// A record read back by a [`ConsumerGroup`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Partition it was read from.
    pub partition: u32,
    /// Its offset in the partition.
    pub offset: i64,
    /// When it was appended, in milliseconds since the Unix epoch (0 when unknown).
    pub timestamp_ms: i64,
    /// Kind, db and rp.
    pub meta: RecordMeta,
    /// Normalized line protocol (empty for DDL records).
    pub payload: Bytes,
}

/// What [`ConsumerGroup::poll`] yields, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// These partitions are now this member's; reading starts at the committed positions.
    Assigned(Vec<u32>),
    /// These partitions are no longer this member's: finish or drop their in-flight work; a
    /// commit for them may now fail, and uncommitted records will be read by the new owner.
    Revoked(Vec<u32>),
    /// The next record of an assigned partition.
    Record(Record),
    /// The next record of an assigned partition could not be decoded (unknown format version,
    /// missing header): the reader dead-letters or skips it, and it counts as read.
    Undecodable {
        /// Its partition.
        partition: u32,
        /// Its offset.
        offset: i64,
        /// What is wrong with it.
        reason: String,
        /// Its raw payload.
        payload: Bytes,
    },
}

/// A batch a cluster refused for good, kept with everything needed to understand and replay it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// Cluster that refused it.
    pub cluster: String,
    /// Database written to (after renames).
    pub db: String,
    /// Retention policy.
    pub rp: String,
    /// HTTP status of the refusal (0 when there was none, e.g. an undecodable record).
    pub status: u16,
    /// The cluster's error text.
    pub reason: String,
    /// Bounded reason class for metrics and filters (`parse`, `field_type_conflict`, …).
    pub reason_class: &'static str,
    /// Where the lines came from: (partition, offset) of each source record.
    pub sources: Vec<(u32, i64)>,
    /// The refused lines (normalized line protocol).
    pub lines: Bytes,
}

/// A dead letter as stored, with its id (its position in the dead-letter store).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StoredDeadLetter {
    /// Position in the store: ids increase; purging removes every id below a bound.
    pub id: u64,
    /// When it was stored (ms since the epoch; 0 when unknown).
    pub appended_ms: i64,
    /// Cluster that refused it.
    pub cluster: String,
    /// Database written to.
    pub db: String,
    /// Retention policy.
    pub rp: String,
    /// HTTP status of the refusal.
    pub status: u16,
    /// The cluster's error text.
    pub reason: String,
    /// Bounded reason class.
    pub reason_class: String,
    /// Source records (partition, offset).
    pub sources: Vec<(u32, i64)>,
    /// The refused lines.
    #[serde(serialize_with = "ser_lines")]
    pub lines: Bytes,
}

fn ser_lines<S: serde::Serializer>(lines: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(lines))
}

/// Where refused batches go (`<topic>-dead-letters` on Kafka), and where operators find them.
#[async_trait]
pub trait DeadLetterSink: Send + Sync + fmt::Debug {
    /// Stores a dead letter durably.
    ///
    /// # Errors
    /// As [`Producer::enqueue`].
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), Error>;

    /// Up to `max` stored letters with `id >= from`, oldest first (purged ones excluded).
    ///
    /// # Errors
    /// When the store cannot be read.
    async fn list(&self, from: u64, max: usize) -> Result<Vec<StoredDeadLetter>, Error>;

    /// Removes every letter with `id < before`.
    ///
    /// # Errors
    /// When the store refuses.
    async fn purge(&self, before: u64) -> Result<(), Error>;
}

/// Queue failures, with what the caller needs to decide: retry, or whose fault it is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The queue cannot take more records now (producer buffer full).
    #[error("queue is full: {0}")]
    Full(String),
    /// The queue did not acknowledge in time (broker unreachable or slow).
    #[error("queue did not acknowledge within {0:?}")]
    Timeout(Duration),
    /// The queue is unreachable or refused the operation.
    #[error("queue unavailable: {context}: {source}")]
    Unavailable {
        /// What was being done.
        context: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A record could not be decoded (unknown format version, missing header).
    #[error("bad record at partition {partition} offset {offset}: {reason}")]
    BadRecord {
        /// Partition of the record.
        partition: u32,
        /// Offset of the record.
        offset: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// The queue could not be set up (bad properties, topic creation refused).
    #[error("queue setup failed: {0}")]
    Setup(String),
}

impl Error {
    /// Whether the same operation may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Full(_) | Error::Timeout(_) | Error::Unavailable { .. } => true,
            Error::BadRecord { .. } | Error::Setup(_) => false,
        }
    }

    pub(crate) fn unavailable(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Unavailable {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

/// Appends records durably.
#[async_trait]
pub trait Producer: Send + Sync + fmt::Debug {
    /// Number of partitions; [`OutgoingRecord::partition`] must be below it.
    fn partitions(&self) -> u32;

    /// Largest payload one record may carry; callers split below it.
    fn max_record_bytes(&self) -> usize;

    /// Appends `records` and returns once every one of them is durable, with the partition and
    /// offset of each, in the order given (an empty list for no records).
    ///
    /// # Errors
    /// [`Error::Full`] when the producer cannot buffer them, [`Error::Timeout`] or
    /// [`Error::Unavailable`] when the queue does not acknowledge. On error some records may still
    /// become durable; none is acknowledged to the client.
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping the future leaves the records' fate unknown (they may still be
    /// appended), which is the same as an error.
    async fn enqueue(&self, records: Vec<OutgoingRecord>) -> Result<Appended, Error>;

    /// Checks that the queue is reachable, within `timeout`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] or [`Error::Timeout`] when it is not.
    async fn check_health(&self, timeout: Duration) -> Result<(), Error>;

    /// Waits until every record handed to the producer is acknowledged or failed.
    ///
    /// # Errors
    /// [`Error::Timeout`] when records are still pending after `timeout`.
    async fn flush(&self, timeout: Duration) -> Result<(), Error>;
}

/// A queue: one producer, and consumer groups joined by name.
#[async_trait]
pub trait Queue: Send + Sync + fmt::Debug {
    /// The queue's producer (shared by every writer).
    fn producer(&self) -> std::sync::Arc<dyn Producer>;

    /// Where drains put batches a cluster refused for good.
    fn dead_letters(&self) -> std::sync::Arc<dyn DeadLetterSink>;

    /// Joins consumer group `group` as a new member. A group that never committed starts at the
    /// earliest record.
    ///
    /// # Errors
    /// [`Error::Setup`] or [`Error::Unavailable`] when the member cannot be created.
    async fn join(&self, group: &str) -> Result<Box<dyn ConsumerGroup>, Error>;

    /// The committed positions of `group` on every partition (`None` where it never
    /// committed), read without joining it.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when they cannot be read.
    async fn group_positions(&self, group: &str) -> Result<Vec<(u32, Option<i64>)>, Error>;

    /// Sets the committed positions of `group`, which must have no live member (used to seed a
    /// reroute group at a down cluster's positions).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the commit is refused.
    async fn seed_group(&self, group: &str, positions: &[(u32, i64)]) -> Result<(), Error>;
}

/// One member of a consumer group: reads records, commits positions.
#[async_trait]
pub trait ConsumerGroup: Send + Sync + fmt::Debug {
    /// The group's name.
    fn group(&self) -> &str;

    /// Returns up to `max` events, waiting at most `timeout` for the first one; an empty vector
    /// means nothing arrived in time.
    ///
    /// # Errors
    /// [`Error::Unavailable`] on queue failures, [`Error::BadRecord`] for undecodable records
    /// (the caller dead-letters or skips them by committing past them).
    ///
    /// # Cancel safety
    /// Cancel safe: an event is removed from the consumer only when it is returned.
    async fn poll(&self, max: usize, timeout: Duration) -> Result<Vec<Event>, Error>;

    /// Commits positions: for each `(partition, next_offset)`, the group's position becomes
    /// `next_offset` (the offset of the next record to read, as in Kafka). Durable on return.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the commit is refused (e.g. the partition was revoked).
    async fn commit(&self, positions: &[(u32, i64)]) -> Result<(), Error>;

    /// Pauses (or resumes) reading: while paused, [`ConsumerGroup::poll`] returns only
    /// rebalance events, the member stays in its group, and reading resumes after the last
    /// record returned. Partitions assigned while paused start paused.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the consumer refuses.
    async fn set_paused(&self, paused: bool) -> Result<(), Error>;

    /// Records not yet committed by the group, per assigned partition: `(partition, end offset
    /// − committed position)`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when offsets cannot be read.
    async fn lag(&self) -> Result<Vec<(u32, i64)>, Error>;

    /// Moves this member's read position on every assigned partition to the first record
    /// appended at or after `since_ms` (the end when there is none) and returns the new
    /// positions; the caller commits them once the records before were dealt with. Used to
    /// replay a cluster from a point in time.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when offsets cannot be looked up or the seek is refused.
    async fn seek_to_time(&self, since_ms: i64) -> Result<Vec<(u32, i64)>, Error>;

    /// Moves this member's read position on each given (assigned) partition to the offset, as
    /// `(partition, next offset to read)`; reading goes on from there. An offset before the
    /// oldest retained record reads from that record.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the seek is refused (e.g. the partition is not assigned).
    async fn seek(&self, positions: &[(u32, i64)]) -> Result<(), Error>;

    /// The group's committed positions for `partitions` (`None` when never committed).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when they cannot be read.
    async fn committed(&self, partitions: &[u32]) -> Result<Vec<(u32, Option<i64>)>, Error>;
}
