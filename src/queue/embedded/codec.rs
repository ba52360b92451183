//! Byte layout of the embedded queue's keys and values (pure: no I/O).
//!
//! Record keys are 24 bytes, big-endian so that byte order is (partition, offset) order:
//! `partition u32 | offset u64 | append time µs u64 | value length u32`. The time and length
//! ride in the key so retention can walk a partition's head without reading any payload (the
//! payloads live in the engine's blob files).
//!
//! Record values: `format u8 | kind u8 | db length u16 LE | db | rp length u16 LE | rp | payload`.

use bytes::Bytes;

use super::super::{DeadLetter, Error, Record, RecordKind, RecordMeta, FORMAT_VERSION};

/// Length of a record key.
pub(super) const RECORD_KEY_LEN: usize = 24;

/// Meta key holding the partition count fixed at creation.
pub(super) const META_PARTITIONS: &[u8] = b"partitions";
/// Meta key holding the storage layout version.
pub(super) const META_LAYOUT: &[u8] = b"layout";
/// Layout version written by this build.
pub(super) const LAYOUT_VERSION: u8 = 1;
/// Prefix of per-partition counters: `P | partition u32` -> `next u64 | bytes u64`.
const META_PART_PREFIX: u8 = b'P';
/// Prefix of known groups: `G | name` -> empty.
pub(super) const META_GROUP_PREFIX: u8 = b'G';
/// Prefix of committed positions: `C | name length u16 | name | partition u32` -> `i64`.
pub(super) const META_COMMIT_PREFIX: u8 = b'C';

const KIND_WRITE: u8 = 0;
const KIND_CREATE_DATABASE: u8 = 1;
const KIND_DDL: u8 = 2;

/// The fixed-size facts of a stored record, decoded from its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct KeyFacts {
    pub(super) partition: u32,
    pub(super) offset: i64,
    /// Append time in microseconds since the Unix epoch, strictly increasing across the store.
    pub(super) append_us: i64,
    /// Bytes the record takes in the budget: key plus value.
    pub(super) stored_bytes: u64,
}

/// The key of a record.
pub(super) fn record_key(
    partition: u32,
    offset: i64,
    append_us: i64,
    value_len: u32,
) -> [u8; RECORD_KEY_LEN] {
    let mut k = [0u8; RECORD_KEY_LEN];
    k[..4].copy_from_slice(&partition.to_be_bytes());
    k[4..12].copy_from_slice(&offset_bits(offset).to_be_bytes());
    k[12..20].copy_from_slice(&append_us.max(0).to_be_bytes());
    k[20..].copy_from_slice(&value_len.to_be_bytes());
    k
}

/// The smallest key of `partition` at or after `offset` (a range bound).
pub(super) fn offset_bound(partition: u32, offset: i64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&partition.to_be_bytes());
    k[4..].copy_from_slice(&offset_bits(offset).to_be_bytes());
    k
}

fn offset_bits(offset: i64) -> u64 {
    u64::try_from(offset).unwrap_or(0)
}

/// Decodes a record key; `None` when it is not one.
pub(super) fn decode_key(key: &[u8]) -> Option<KeyFacts> {
    if key.len() != RECORD_KEY_LEN {
        return None;
    }
    let partition = u32::from_be_bytes(key[..4].try_into().ok()?);
    let offset = i64::try_from(u64::from_be_bytes(key[4..12].try_into().ok()?)).ok()?;
    let append_us = i64::from_be_bytes(key[12..20].try_into().ok()?);
    let value_len = u32::from_be_bytes(key[20..].try_into().ok()?);
    Some(KeyFacts {
        partition,
        offset,
        append_us,
        stored_bytes: RECORD_KEY_LEN as u64 + u64::from(value_len),
    })
}

/// Encodes a record value, or says why it cannot be stored.
pub(super) fn encode_value(meta: &RecordMeta, payload: &[u8]) -> Result<Vec<u8>, String> {
    let db = meta.db.as_bytes();
    let rp = meta.rp.as_bytes();
    let db_len = u16::try_from(db.len()).map_err(|_| "db name longer than 65535 bytes")?;
    let rp_len = u16::try_from(rp.len()).map_err(|_| "rp name longer than 65535 bytes")?;
    let mut v = Vec::with_capacity(6 + db.len() + rp.len() + payload.len());
    v.push(FORMAT_VERSION);
    v.push(match meta.kind {
        RecordKind::Write => KIND_WRITE,
        RecordKind::CreateDatabase => KIND_CREATE_DATABASE,
        RecordKind::Ddl => KIND_DDL,
    });
    v.extend_from_slice(&db_len.to_le_bytes());
    v.extend_from_slice(db);
    v.extend_from_slice(&rp_len.to_le_bytes());
    v.extend_from_slice(rp);
    v.extend_from_slice(payload);
    if u32::try_from(v.len()).is_err() {
        return Err("record larger than 4 GiB".into());
    }
    Ok(v)
}

/// Decodes a stored record; `value` is shared, not copied, into the payload.
pub(super) fn decode_record(facts: KeyFacts, value: Bytes) -> Result<Record, Error> {
    let bad = |reason: String| Error::BadRecord {
        partition: facts.partition,
        offset: facts.offset,
        reason,
    };
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<std::ops::Range<usize>, Error> {
        let end = at
            .checked_add(n)
            .filter(|&e| e <= value.len())
            .ok_or_else(|| bad(format!("truncated value of {} bytes", value.len())))?;
        let r = *at..end;
        *at = end;
        Ok(r)
    };
    let head = take(&mut at, 2)?;
    let (format, kind) = (value[head.start], value[head.start + 1]);
    if format != FORMAT_VERSION {
        return Err(bad(format!("unknown record format {format}")));
    }
    let kind = match kind {
        KIND_WRITE => RecordKind::Write,
        KIND_CREATE_DATABASE => RecordKind::CreateDatabase,
        KIND_DDL => RecordKind::Ddl,
        other => return Err(bad(format!("unknown record kind {other}"))),
    };
    let string = |at: &mut usize| -> Result<String, Error> {
        let len = take(at, 2)?;
        let n = u16::from_le_bytes([value[len.start], value[len.start + 1]]);
        let s = take(at, usize::from(n))?;
        String::from_utf8(value[s].to_vec()).map_err(|_| bad("db or rp is not UTF-8".into()))
    };
    let db = string(&mut at)?;
    let rp = string(&mut at)?;
    Ok(Record {
        partition: facts.partition,
        offset: facts.offset,
        timestamp_ms: facts.append_us / 1000,
        meta: RecordMeta { kind, db, rp },
        payload: value.slice(at..),
    })
}

/// The header of a stored dead letter (its lines follow it).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct DeadLetterHeader {
    pub(super) format: u8,
    pub(super) appended_ms: i64,
    pub(super) cluster: String,
    pub(super) db: String,
    pub(super) rp: String,
    pub(super) status: u16,
    pub(super) reason: String,
    pub(super) reason_class: String,
    pub(super) sources: Vec<(u32, i64)>,
}

/// Encodes a dead letter: `header length u32 LE | JSON header | lines`.
pub(super) fn encode_dead_letter(letter: &DeadLetter, appended_ms: i64) -> Vec<u8> {
    let header = DeadLetterHeader {
        format: FORMAT_VERSION,
        appended_ms,
        cluster: letter.cluster.clone(),
        db: letter.db.clone(),
        rp: letter.rp.clone(),
        status: letter.status,
        reason: letter.reason.clone(),
        reason_class: letter.reason_class.to_owned(),
        sources: letter.sources.clone(),
    };
    // Serializing plain strings and numbers cannot fail.
    let json = serde_json::to_vec(&header).unwrap_or_default();
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    let mut v = Vec::with_capacity(4 + json.len() + letter.lines.len());
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&json);
    v.extend_from_slice(&letter.lines);
    v
}

/// Decodes a stored dead letter into its header and lines.
pub(super) fn decode_dead_letter(v: &Bytes) -> Option<(DeadLetterHeader, Bytes)> {
    let len = usize::try_from(u32::from_le_bytes(v.get(..4)?.try_into().ok()?)).ok()?;
    let header = serde_json::from_slice(v.get(4..4 + len)?).ok()?;
    Some((header, v.slice(4 + len..)))
}

/// Meta key of a partition's counters.
pub(super) fn partition_key(partition: u32) -> [u8; 5] {
    let mut k = [META_PART_PREFIX; 5];
    k[1..].copy_from_slice(&partition.to_be_bytes());
    k
}

/// Encodes a partition's counters: the next offset to assign and the bytes it stores.
pub(super) fn encode_counters(next: i64, bytes: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&next.to_be_bytes());
    v[8..].copy_from_slice(&bytes.to_be_bytes());
    v
}

/// Decodes a partition's counters.
pub(super) fn decode_counters(v: &[u8]) -> Option<(i64, u64)> {
    let next = i64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let bytes = u64::from_be_bytes(v.get(8..16)?.try_into().ok()?);
    Some((next, bytes))
}

/// Meta key marking `group` as known.
pub(super) fn group_key(group: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + group.len());
    k.push(META_GROUP_PREFIX);
    k.extend_from_slice(group.as_bytes());
    k
}

/// Meta key of `group`'s committed position on `partition`.
pub(super) fn commit_key(group: &str, partition: u32) -> Result<Vec<u8>, String> {
    let len = u16::try_from(group.len()).map_err(|_| "group name longer than 65535 bytes")?;
    let mut k = Vec::with_capacity(7 + group.len());
    k.push(META_COMMIT_PREFIX);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(group.as_bytes());
    k.extend_from_slice(&partition.to_be_bytes());
    Ok(k)
}

/// Decodes a commit key into (group, partition).
pub(super) fn decode_commit_key(k: &[u8]) -> Option<(String, u32)> {
    if k.first() != Some(&META_COMMIT_PREFIX) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes(k.get(1..3)?.try_into().ok()?));
    let name = k.get(3..3 + len)?;
    let partition = u32::from_be_bytes(k.get(3 + len..)?.try_into().ok()?);
    Some((String::from_utf8(name.to_vec()).ok()?, partition))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_partition_then_offset() {
        let a = record_key(0, 9, 500, 10);
        let b = record_key(0, 10, 1, 10);
        let c = record_key(1, 0, 0, 0);
        assert!(a < b && b < c);
        assert!(offset_bound(0, 10)[..] <= b[..] && offset_bound(0, 10)[..] > a[..]);
        assert!(offset_bound(1, 0)[..] > b[..]);
    }

    #[test]
    fn key_round_trips() {
        let k = record_key(7, 1 << 40, 1_700_000_000_000, 123);
        assert_eq!(
            decode_key(&k),
            Some(KeyFacts {
                partition: 7,
                offset: 1 << 40,
                append_us: 1_700_000_000_000,
                stored_bytes: 24 + 123,
            })
        );
        assert_eq!(decode_key(&k[..23]), None);
    }

    #[test]
    fn value_round_trips() {
        let meta = RecordMeta::write("telegraf", "autogen");
        let v = encode_value(&meta, b"cpu v=1 1\n").unwrap();
        let facts = decode_key(&record_key(3, 4, 5_000, v.len() as u32)).unwrap();
        let r = decode_record(facts, Bytes::from(v)).unwrap();
        assert_eq!(r.meta, meta);
        assert_eq!((r.partition, r.offset, r.timestamp_ms), (3, 4, 5));
        assert_eq!(&r.payload[..], b"cpu v=1 1\n");

        let ddl = RecordMeta::create_database("db");
        let v = encode_value(&ddl, b"").unwrap();
        let r = decode_record(facts, Bytes::from(v)).unwrap();
        assert_eq!(r.meta, ddl);
        assert!(r.payload.is_empty());

        let ddl = RecordMeta::ddl("db");
        let v = encode_value(&ddl, b"{}").unwrap();
        let r = decode_record(facts, Bytes::from(v)).unwrap();
        assert_eq!((r.meta, &r.payload[..]), (ddl, &b"{}"[..]));
    }

    #[test]
    fn bad_values_are_bad_records() {
        let facts = decode_key(&record_key(1, 2, 0, 0)).unwrap();
        for v in [
            &b""[..],
            &[9, 0, 0, 0, 0, 0][..],
            &[1, 7, 0, 0, 0, 0][..],
            &[1, 0, 5, 0][..],
        ] {
            let e = decode_record(facts, Bytes::copy_from_slice(v)).unwrap_err();
            assert!(matches!(
                e,
                Error::BadRecord {
                    partition: 1,
                    offset: 2,
                    ..
                }
            ));
        }
    }

    #[test]
    fn dead_letter_round_trips() {
        let letter = DeadLetter {
            cluster: "eu1".into(),
            db: "db".into(),
            rp: String::new(),
            status: 400,
            reason: "partial write".into(),
            reason_class: "parse",
            sources: vec![(1, 2), (3, 4)],
            lines: Bytes::from_static(b"cpu v=1 1\n"),
        };
        let v = Bytes::from(encode_dead_letter(&letter, 77));
        let (h, lines) = decode_dead_letter(&v).unwrap();
        assert_eq!(
            (h.cluster.as_str(), h.status, h.appended_ms),
            ("eu1", 400, 77)
        );
        assert_eq!(h.sources, letter.sources);
        assert_eq!(lines, letter.lines);
    }

    #[test]
    fn meta_keys_round_trip() {
        let k = commit_key("eu1", 5).unwrap();
        assert_eq!(decode_commit_key(&k), Some(("eu1".into(), 5)));
        assert_eq!(decode_commit_key(&group_key("x")), None);
        assert_eq!(
            decode_counters(&encode_counters(42, 4096)),
            Some((42, 4096))
        );
    }
}
