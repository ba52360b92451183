//! The fjall database behind the embedded queue: opening, recovery of the in-memory state, and
//! the reads (records from an offset, key facts from a head). Writes happen in [`super::writer`].

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions};

use super::super::{Error, Event};
use super::codec::{self, KeyFacts};

/// Records keyspace name.
const RECORDS: &str = "records";
/// Dead letters keyspace name (`sequence u64` -> encoded dead letter).
const DEAD_LETTERS: &str = "dead_letters";
/// Meta keyspace name (partition count, counters, groups, committed positions).
const META: &str = "meta";
/// Block cache shared by both keyspaces.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// Memtable size of the records keyspace; a full memtable is flushed to disk in the background.
const MEMTABLE_BYTES: u64 = 32 * 1024 * 1024;
/// Journal size after which fjall flushes memtables so old journals can go; it also bounds the
/// replay work on open after a crash.
const JOURNAL_BYTES: u64 = 256 * 1024 * 1024;

/// Handles on the database and its two keyspaces.
#[derive(Clone)]
pub(super) struct Store {
    pub(super) db: Database,
    pub(super) records: Keyspace,
    pub(super) meta: Keyspace,
    pub(super) dead_letters: Keyspace,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Per-partition state rebuilt on open and kept by the writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PartitionState {
    /// First retained offset (== `next` when empty).
    pub(super) head: i64,
    /// Next offset to assign.
    pub(super) next: i64,
    /// Bytes stored (keys plus values).
    pub(super) bytes: u64,
    /// Append time (µs) of the head record.
    pub(super) head_ts: Option<i64>,
}

/// What [`Store::open`] recovers.
#[derive(Debug)]
pub(super) struct Recovered {
    pub(super) partitions: u32,
    pub(super) parts: Vec<PartitionState>,
    /// Known groups with their committed positions (index = partition).
    pub(super) groups: BTreeMap<String, Vec<Option<i64>>>,
    /// Sequence number of the next dead letter.
    pub(super) next_dead_letter: u64,
    /// Latest append time (µs) of any retained record.
    pub(super) last_append_us: i64,
}

pub(super) fn storage_error(context: impl Into<String>, e: fjall::Error) -> Error {
    Error::unavailable(context, e)
}

impl Store {
    /// Opens (or creates) the database in `dir` and recovers the queue state. A new store gets
    /// `partitions`; an existing one keeps its own count (with a warning when they differ).
    pub(super) fn open(dir: &Path, partitions: u32) -> Result<(Store, Recovered), Error> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Setup(format!("creating queue dir {}: {e}", dir.display())))?;
        let db = Database::builder(dir)
            .cache_size(CACHE_BYTES)
            .max_journaling_size(JOURNAL_BYTES)
            // Uncompressed, like the blobs below: lz4 here ran in the writer thread, on every
            // append's path to its acknowledgement.
            .journal_compression(CompressionType::None)
            .open()
            .map_err(|e| Error::Setup(format!("opening queue store {}: {e}", dir.display())))?;
        let records = db
            .keyspace(RECORDS, || {
                KeyspaceCreateOptions::default()
                    .max_memtable_size(MEMTABLE_BYTES)
                    .with_kv_separation(Some(
                        // Uncompressed: lz4 in the store's flushes cost 44 % of the ingest's CPU
                        // (perf, embedded bench); records live until delivered, so the disk
                        // they take is short-lived.
                        KvSeparationOptions::default().compression(CompressionType::None),
                    ))
            })
            .map_err(|e| Error::Setup(format!("opening records keyspace: {e}")))?;
        let meta = db
            .keyspace(META, KeyspaceCreateOptions::default)
            .map_err(|e| Error::Setup(format!("opening meta keyspace: {e}")))?;
        let dead_letters = db
            .keyspace(DEAD_LETTERS, || {
                KeyspaceCreateOptions::default()
                    .with_kv_separation(Some(KvSeparationOptions::default()))
            })
            .map_err(|e| Error::Setup(format!("opening dead letters keyspace: {e}")))?;
        let store = Store {
            db,
            records,
            meta,
            dead_letters,
        };
        let recovered = store.recover(partitions)?;
        Ok((store, recovered))
    }

    fn recover(&self, wanted: u32) -> Result<Recovered, Error> {
        let setup = |what: &str, e: fjall::Error| Error::Setup(format!("{what}: {e}"));
        if let Some(v) = self
            .meta
            .get(codec::META_LAYOUT)
            .map_err(|e| setup("reading layout", e))?
        {
            if v.first() != Some(&codec::LAYOUT_VERSION) {
                return Err(Error::Setup(format!(
                    "queue store layout {:?} is not supported by this build (expects {})",
                    v.first(),
                    codec::LAYOUT_VERSION
                )));
            }
        }
        let partitions = match self
            .meta
            .get(codec::META_PARTITIONS)
            .map_err(|e| setup("reading partition count", e))?
        {
            Some(v) => {
                let stored = v
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_be_bytes)
                    .ok_or_else(|| Error::Setup("corrupt partition count".into()))?;
                if stored != wanted {
                    tracing::warn!(
                        configured = wanted,
                        actual = stored,
                        "queue store exists with a different partition count; using the store's"
                    );
                }
                stored
            }
            None => {
                if wanted == 0 {
                    return Err(Error::Setup("partitions must be at least 1".into()));
                }
                let mut b = self.db.batch();
                b.insert(&self.meta, codec::META_LAYOUT, [codec::LAYOUT_VERSION]);
                b.insert(&self.meta, codec::META_PARTITIONS, wanted.to_be_bytes());
                b.durability(Some(fjall::PersistMode::SyncAll))
                    .commit()
                    .map_err(|e| setup("initializing queue store", e))?;
                wanted
            }
        };

        let mut parts = Vec::with_capacity(partitions as usize);
        let mut last_append_us = 0;
        for p in 0..partitions {
            let (mut next, bytes) = match self
                .meta
                .get(codec::partition_key(p))
                .map_err(|e| setup("reading partition counters", e))?
            {
                Some(v) => codec::decode_counters(&v)
                    .ok_or_else(|| Error::Setup(format!("corrupt counters of partition {p}")))?,
                None => (0, 0),
            };
            let first = self.first_facts(p, 0)?;
            // Counters and records are written in one atomic batch; this only guards against a
            // store written by a buggy build.
            if let Some(last) = self.last_facts(p)? {
                next = next.max(last.offset + 1);
                last_append_us = last_append_us.max(last.append_us);
            }
            parts.push(PartitionState {
                head: first.map_or(next, |f| f.offset),
                next,
                bytes,
                head_ts: first.map(|f| f.append_us),
            });
        }

        let mut groups: BTreeMap<String, Vec<Option<i64>>> = BTreeMap::new();
        for kv in self.meta.prefix([codec::META_GROUP_PREFIX]) {
            let k = kv.key().map_err(|e| setup("reading groups", e))?;
            let name = String::from_utf8_lossy(&k[1..]).into_owned();
            groups.insert(name, vec![None; partitions as usize]);
        }
        for kv in self.meta.prefix([codec::META_COMMIT_PREFIX]) {
            let (k, v) = kv
                .into_inner()
                .map_err(|e| setup("reading committed positions", e))?;
            let Some((group, p)) = codec::decode_commit_key(&k) else {
                continue;
            };
            let Some(pos) = v.get(..8).and_then(|b| b.try_into().ok()) else {
                continue;
            };
            let slots = groups
                .entry(group)
                .or_insert_with(|| vec![None; partitions as usize]);
            if let Some(slot) = slots.get_mut(p as usize) {
                *slot = Some(i64::from_be_bytes(pos));
            }
        }
        let next_dead_letter = match self.dead_letters.last_key_value() {
            None => 0,
            Some(g) => {
                let k = g.key().map_err(|e| setup("reading dead letters", e))?;
                k.get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, |b| u64::from_be_bytes(b) + 1)
            }
        };
        Ok(Recovered {
            partitions,
            parts,
            groups,
            next_dead_letter,
            last_append_us,
        })
    }

    /// Key facts of `partition` from `offset` on, in offset order, without reading payloads.
    pub(super) fn facts_from(
        &self,
        partition: u32,
        offset: i64,
    ) -> impl Iterator<Item = Result<KeyFacts, Error>> + use<> {
        let end = partition_end(partition);
        self.records
            .range(codec::offset_bound(partition, offset).to_vec()..end)
            .map(move |g| {
                let k = g
                    .key()
                    .map_err(|e| storage_error(format!("reading partition {partition}"), e))?;
                codec::decode_key(&k).ok_or_else(|| Error::BadRecord {
                    partition,
                    offset: -1,
                    reason: format!("malformed key of {} bytes", k.len()),
                })
            })
    }

    /// The first record of `partition` at or after `offset`.
    pub(super) fn first_facts(
        &self,
        partition: u32,
        offset: i64,
    ) -> Result<Option<KeyFacts>, Error> {
        self.facts_from(partition, offset).next().transpose()
    }

    fn last_facts(&self, partition: u32) -> Result<Option<KeyFacts>, Error> {
        let Some(g) = self
            .records
            .range(codec::offset_bound(partition, 0).to_vec()..partition_end(partition))
            .next_back()
        else {
            return Ok(None);
        };
        let k = g
            .key()
            .map_err(|e| storage_error(format!("reading partition {partition}"), e))?;
        Ok(codec::decode_key(&k))
    }

    /// Reads records of `partition` in `[from, until)`, at most `max` of them and at most
    /// `max_bytes` (but always at least one), as [`Event::Record`] or, for a value this build
    /// cannot decode, [`Event::Undecodable`]. Returns the events and the offset after the last.
    pub(super) fn read(
        &self,
        partition: u32,
        from: i64,
        until: i64,
        max: usize,
        max_bytes: u64,
    ) -> Result<(Vec<Event>, i64), Error> {
        let mut after = from;
        let mut out = Vec::new();
        let mut bytes = 0u64;
        let range = codec::offset_bound(partition, from).to_vec()
            ..codec::offset_bound(partition, until).to_vec();
        for g in self.records.range(range) {
            if out.len() >= max || (bytes >= max_bytes && !out.is_empty()) {
                break;
            }
            let (k, v) = g
                .into_inner()
                .map_err(|e| storage_error(format!("reading partition {partition}"), e))?;
            let facts = codec::decode_key(&k).ok_or_else(|| Error::BadRecord {
                partition,
                offset: from,
                reason: format!("malformed key of {} bytes", k.len()),
            })?;
            bytes += facts.stored_bytes;
            after = facts.offset + 1;
            let value = Bytes::from(v);
            out.push(match codec::decode_record(facts, value.clone()) {
                Ok(r) => Event::Record(r),
                Err(e) => Event::Undecodable {
                    partition,
                    offset: facts.offset,
                    reason: e.to_string(),
                    payload: value,
                },
            });
        }
        Ok((out, after))
    }
}

impl Store {
    /// Reads up to `max` dead letters from sequence number `from` on.
    pub(super) fn read_dead_letters(
        &self,
        from: u64,
        max: usize,
    ) -> Result<Vec<(u64, codec::DeadLetterHeader, Bytes)>, Error> {
        let mut out = Vec::new();
        for g in self.dead_letters.range(from.to_be_bytes()..).take(max) {
            let (k, v) = g
                .into_inner()
                .map_err(|e| storage_error("reading dead letters", e))?;
            let seq = k
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_be_bytes);
            let v = Bytes::from(v);
            let (h, lines) = codec::decode_dead_letter(&v).ok_or_else(|| Error::BadRecord {
                partition: u32::MAX,
                offset: i64::try_from(seq).unwrap_or(-1),
                reason: "undecodable dead letter".into(),
            })?;
            out.push((seq, h, lines));
        }
        Ok(out)
    }
}

/// The exclusive upper bound of every key of `partition`.
fn partition_end(partition: u32) -> Vec<u8> {
    match partition.checked_add(1) {
        Some(n) => n.to_be_bytes().to_vec(),
        None => vec![0xff; codec::RECORD_KEY_LEN + 1],
    }
}
